#!/usr/bin/env python3
"""A stdio MCP server (standard library only) whose tools try what a sandbox must stop.

Tools (each answers a text result; failures are isError results with the OS error):
    connect   {"host": str, "port": int}   -> "connected" or "error: <errno name>: <message>"
    read      {"path": str}                -> the file's text or "error: ..."
    fork      {"count": int, "hold": float} -> "started=N refused=M": forks up to count (<= 200)
                                              children that sleep `hold` seconds (<= 10), then
                                              kills them; bounded in count and time
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import time

TOOLS = [
    {
        "name": "connect",
        "inputSchema": {
            "type": "object",
            "properties": {"host": {"type": "string"}, "port": {"type": "integer"}},
            "required": ["host", "port"],
        },
    },
    {"name": "read", "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}},
    {
        "name": "fork",
        "inputSchema": {"type": "object", "properties": {"count": {"type": "integer"}, "hold": {"type": "number"}}},
    },
]


def reply(msg_id: object, result: object = None, error: object = None) -> None:
    out: dict[str, object] = {"jsonrpc": "2.0", "id": msg_id}
    if error is not None:
        out["error"] = error
    else:
        out["result"] = result
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


def os_error(e: OSError) -> str:
    name = errno.errorcode.get(e.errno or 0, "?")
    return f"error: {name}: {e.strerror}"


def connect(host: str, port: int) -> tuple[str, bool]:
    try:
        with socket.create_connection((host, port), timeout=3):
            return "connected", False
    except OSError as e:
        return os_error(e), True


def read(path: str) -> tuple[str, bool]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(4096), False
    except OSError as e:
        return os_error(e), True


def fork(count: int, hold: float) -> tuple[str, bool]:
    count = max(0, min(int(count), 200))
    hold = max(0.0, min(float(hold), 10.0))
    pids: list[int] = []
    refused = 0
    for _ in range(count):
        try:
            pid = os.fork()
        except OSError:
            refused += 1
            continue
        if pid == 0:
            time.sleep(hold)
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except OSError:
            pass
    return f"started={len(pids)} refused={refused}", False


def main() -> int:
    for line in sys.stdin:
        try:
            msg = json.loads(line)
        except ValueError:
            reply(None, error={"code": -32700, "message": "Parse error"})
            continue
        if not isinstance(msg, dict) or "method" not in msg or "id" not in msg:
            continue
        method, msg_id, params = msg["method"], msg["id"], msg.get("params") or {}
        if method == "initialize":
            reply(
                msg_id,
                {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "steward-e2e-probe", "version": "1.0.0"},
                },
            )
        elif method == "ping":
            reply(msg_id, {})
        elif method == "tools/list":
            reply(msg_id, {"tools": TOOLS})
        elif method == "tools/call":
            name = params.get("name")
            args = params.get("arguments") or {}
            if name == "connect":
                text, is_error = connect(str(args.get("host", "")), int(args.get("port", 0)))
            elif name == "read":
                text, is_error = read(str(args.get("path", "")))
            elif name == "fork":
                text, is_error = fork(args.get("count", 10), args.get("hold", 2))
            else:
                reply(msg_id, error={"code": -32602, "message": f"Unknown tool: {name}"})
                continue
            reply(msg_id, {"content": [{"type": "text", "text": text}], "isError": is_error})
        else:
            reply(msg_id, error={"code": -32601, "message": "Method not found"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
