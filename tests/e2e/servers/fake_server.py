#!/usr/bin/env python3
"""A tiny legacy-era (2025-11-25) stdio MCP server, standard library only.

Used by the harness self-tests to check that the SDK clients keep `_meta` on
tool results and report isError results and JSON-RPC errors as expected.

Tools:
    meta-echo {"message": str}  -> text "meta-echo: <message>", result `_meta`
                                   {"steward/decisionId": "dec-<n>", "example.com/k": "v"}
    fail      {}                -> isError result, text "fake failure"
    rpc-error {}                -> JSON-RPC error -32001 "fake rpc error"
Unknown tool -> JSON-RPC error -32602. `server/discover` -> -32601.
"""

from __future__ import annotations

import json
import sys

TOOLS = [
    {
        "name": "meta-echo",
        "inputSchema": {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]},
    },
    {"name": "fail", "inputSchema": {"type": "object", "properties": {}}},
    {"name": "rpc-error", "inputSchema": {"type": "object", "properties": {}}},
]


def reply(msg_id: object, result: object = None, error: object = None) -> None:
    out: dict[str, object] = {"jsonrpc": "2.0", "id": msg_id}
    if error is not None:
        out["error"] = error
    else:
        out["result"] = result
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


def main() -> int:
    calls = 0
    for line in sys.stdin:
        try:
            msg = json.loads(line)
        except ValueError:
            reply(None, error={"code": -32700, "message": "Parse error"})
            continue
        if not isinstance(msg, dict) or "method" not in msg or "id" not in msg:
            continue  # notifications and responses need no answer
        method, msg_id, params = msg["method"], msg["id"], msg.get("params") or {}
        if method == "initialize":
            reply(
                msg_id,
                {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "steward-e2e-fake", "version": "1.0.0"},
                },
            )
        elif method == "ping":
            reply(msg_id, {})
        elif method == "tools/list":
            reply(msg_id, {"tools": TOOLS})
        elif method == "tools/call":
            name = params.get("name")
            args = params.get("arguments") or {}
            if name == "meta-echo":
                calls += 1
                reply(
                    msg_id,
                    {
                        "content": [{"type": "text", "text": f"meta-echo: {args.get('message', '')}"}],
                        "_meta": {"steward/decisionId": f"dec-{calls}", "example.com/k": "v"},
                    },
                )
            elif name == "fail":
                reply(msg_id, {"content": [{"type": "text", "text": "fake failure"}], "isError": True})
            elif name == "rpc-error":
                reply(msg_id, error={"code": -32001, "message": "fake rpc error"})
            else:
                reply(msg_id, error={"code": -32602, "message": f"Unknown tool: {name}"})
        else:
            reply(msg_id, error={"code": -32601, "message": "Method not found"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
