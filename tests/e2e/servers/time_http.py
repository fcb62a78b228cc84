#!/usr/bin/env python3
"""mcp-server-time's tools over streamable HTTP (the Python SDK's `streamable_http_app`), both eras.

Usage: time_http.py --port N      (binds 127.0.0.1; endpoint http://127.0.0.1:N/mcp)

The same MCPServer as `mcp-server-time --local-timezone Etc/UTC` (mcp_server_time.create_server),
served by uvicorn: a 2026-07-28 client (server/discover or a request with the `_meta` envelope)
gets the stateless modern era, an `initialize` gets a 2025-11-25 session.
"""

from __future__ import annotations

import argparse
import sys

import uvicorn

from mcp_server_time.server import create_server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    opts = parser.parse_args()
    app = create_server("Etc/UTC").streamable_http_app(host="127.0.0.1")
    uvicorn.run(app, host="127.0.0.1", port=opts.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
