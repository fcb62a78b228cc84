#!/usr/bin/env python3
"""A tiny legacy-era streamable-HTTP MCP server (stdlib only) that records every request's headers.

Usage: recording_http_server.py --port N --log FILE

Binds 127.0.0.1 only. Each HTTP request appends one JSON line to FILE:
    {"method": "POST", "path": "/mcp", "headers": {lower-case name: value}, "body": <JSON or null>}
(the file is flushed per line, so a test can read it while the server runs).

MCP (JSON responses only, no SSE): POST /mcp answers `initialize` (minting an Mcp-Session-Id),
`ping`, `tools/list` and `tools/call`; notifications and responses get 202. GET /mcp answers
405 (no server-to-client stream), DELETE /mcp 200. Tools:
    echo {message}      -> text "Echo: <message>"
    show_headers {}     -> the request headers as structuredContent (and as text)
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOOLS = [
    {
        "name": "echo",
        "description": "Echo a message",
        "inputSchema": {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]},
    },
    {
        "name": "show_headers",
        "description": "Return the HTTP headers of this request",
        "inputSchema": {"type": "object", "properties": {}},
    },
]
MAX_BODY = 1024 * 1024


class Handler(BaseHTTPRequestHandler):
    server_version = "recording-mcp/1"
    log_lock = threading.Lock()
    log_path = ""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass  # keep stderr quiet; the JSONL log is the record

    def _record(self, body: object) -> dict[str, str]:
        headers = {k.lower(): v for k, v in self.headers.items()}
        line = json.dumps({"method": self.command, "path": self.path, "headers": headers, "body": body})
        with self.log_lock, open(self.log_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
        return headers

    def _send(self, status: int, payload: object | None = None, extra: dict[str, str] | None = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._record(None)
        self._send(405, {"error": "no server-to-client stream"})

    def do_DELETE(self) -> None:  # noqa: N802
        self._record(None)
        self._send(200)

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send(413, {"error": "too large"})
            return
        raw = self.rfile.read(length)
        try:
            msg = json.loads(raw)
        except ValueError:
            self._record(raw.decode("utf-8", "replace"))
            self._send(400, {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}})
            return
        headers = self._record(msg)
        if self.path.split("?")[0] != "/mcp":
            self._send(404, {"error": "not found"})
            return
        if not isinstance(msg, dict) or "method" not in msg or "id" not in msg:
            self._send(202)  # notification or response
            return
        method, mid, params = msg["method"], msg["id"], msg.get("params") or {}
        extra: dict[str, str] = {}
        if method == "initialize":
            extra["Mcp-Session-Id"] = secrets.token_hex(16)
            result = {
                "protocolVersion": params.get("protocolVersion", "2025-11-25"),
                "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": {"name": "recording-http", "version": "1.0.0"},
            }
        elif method == "ping":
            result = {}
        elif method == "tools/list":
            result = {"tools": TOOLS}
        elif method == "tools/call":
            name, args = params.get("name"), params.get("arguments") or {}
            if name == "echo":
                result = {"content": [{"type": "text", "text": f"Echo: {args.get('message', '')}"}]}
            elif name == "show_headers":
                result = {
                    "content": [{"type": "text", "text": json.dumps(headers, sort_keys=True)}],
                    "structuredContent": headers,
                }
            else:
                result = {"content": [{"type": "text", "text": f"unknown tool {name}"}], "isError": True}
        else:
            self._send(200, {"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": "Method not found"}})
            return
        self._send(200, {"jsonrpc": "2.0", "id": mid, "result": result}, extra)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", required=True)
    opts = parser.parse_args()
    Handler.log_path = opts.log
    httpd = ThreadingHTTPServer(("127.0.0.1", opts.port), Handler)
    httpd.daemon_threads = True
    print(f"recording MCP server on http://127.0.0.1:{opts.port}/mcp", file=sys.stderr, flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
