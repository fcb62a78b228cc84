#!/usr/bin/env python3
"""Read resources and get prompts from an MCP server with the official Python SDK (mcp==2.3.0).

Usage:
    py_resources.py [--list] [--read URI]... [--prompt NAME JSON_ARGS]... -- CMD ARGS...
    py_resources.py [options] --url URL [--sse] [--header 'Name: value']...

Opens a legacy session (initialize), then prints ONE JSON document on stdout:
    {"resources": [uri...], "templates": [uriTemplate...], "prompts": [name...],   (with --list)
     "reads":   [{"uri", "contents"} | {"uri", "error": {"code", "message"}}],
     "prompts_got": [{"name", "messages", "description"} | {"name", "error": {...}}]}
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import anyio

from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError


def dump(model: Any) -> Any:
    return json.loads(model.model_dump_json(by_alias=True, exclude_none=True))


async def exercise(session: ClientSession, opts: argparse.Namespace) -> dict[str, Any]:
    await session.initialize()
    doc: dict[str, Any] = {"reads": [], "prompts_got": []}
    if opts.list:
        doc["resources"] = sorted(str(r.uri) for r in (await session.list_resources()).resources)
        doc["templates"] = sorted(t.uri_template for t in (await session.list_resource_templates()).resource_templates)
        doc["prompts"] = sorted(p.name for p in (await session.list_prompts()).prompts)
    for uri in opts.read or []:
        try:
            r = await session.read_resource(uri)
            doc["reads"].append({"uri": uri, "contents": dump(r)["contents"]})
        except MCPError as e:
            doc["reads"].append({"uri": uri, "error": {"code": e.error.code, "message": e.error.message}})
    for name, args in opts.prompt or []:
        try:
            r = await session.get_prompt(name, json.loads(args))
            d = dump(r)
            doc["prompts_got"].append({"name": name, "messages": d.get("messages"), "description": d.get("description")})
        except MCPError as e:
            doc["prompts_got"].append({"name": name, "error": {"code": e.error.code, "message": e.error.message}})
    return doc


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--read", action="append")
    parser.add_argument("--prompt", nargs=2, action="append")
    parser.add_argument("--url")
    parser.add_argument("--sse", action="store_true")
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("command", nargs="*")
    opts = parser.parse_args()
    headers = dict(h.split(": ", 1) for h in opts.header)
    with anyio.fail_after(60):
        if opts.url and opts.sse:
            async with sse_client(opts.url, headers=headers) as (r, w), ClientSession(r, w) as s:
                doc = await exercise(s, opts)
        elif opts.url:
            async with (
                create_mcp_http_client(headers=headers) as http,
                streamable_http_client(opts.url, http_client=http) as (r, w),
                ClientSession(r, w) as s,
            ):
                doc = await exercise(s, opts)
        else:
            params = StdioServerParameters(command=opts.command[0], args=opts.command[1:])
            async with stdio_client(params) as (r, w), ClientSession(r, w) as s:
                doc = await exercise(s, opts)
    print(json.dumps(doc, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
