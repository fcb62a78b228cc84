#!/usr/bin/env python3
"""Exercise an arbitrary stdio MCP server with the official Python SDK (mcp==2.3.0).

Usage:
    py_client.py [--mode auto|legacy|discover|2026-07-28] [--timeout S]
                 [--normalize-datetimes] [--with-callbacks]
                 [--call TOOL JSON_ARGS]... -- CMD ARGS...
    py_client.py [options] [--call TOOL JSON_ARGS]... --url URL [--sse] [--header 'Name: value']...

Connects with `stdio_client` (or, with --url, `streamable_http_client` over an
httpx2 client carrying the --header values; with --sse the legacy HTTP+SSE `sse_client`)
+ `ClientSession`, lists the tools, calls each
requested tool in order and prints ONE canonical JSON document on stdout
(sorted keys, volatile values normalised: `_meta` keys steward/decisionId,
timestamp, requestId, progressToken -> "<volatile>", UUIDs in strings -> "<uuid>"):

    {"client": "py", "mode": ..., "protocolVersion": ..., "serverInfo": {...},
     "tools": [{"name", "inputSchema"}...],            (sorted by name)
     "calls": [{"tool", "args", "isError", "content", "structuredContent", "meta"}
               | {"tool", "args", "error": {"code", "message"}}
               | {"tool", "args", "exception": {"type", "message"}}]}

Modes (how the session is opened):
    auto        what the SDK's high-level `mcp.Client` does by default: send
                `server/discover` (2026-07-28 `_meta` envelope) and fall back to
                the legacy `initialize` handshake if the server rejects it.
    legacy      `ClientSession.initialize()` only (protocolVersion 2025-11-25).
    discover    `ClientSession.discover()` only, no fallback (modern servers only).
    2026-07-28  adopt 2026-07-28 without any probe; every request carries the
                per-request `_meta` envelope.

--with-callbacks declares the sampling, elicitation and roots capabilities and
answers sampling/createMessage, elicitation/create and roots/list with fixed
values (so e.g. server-everything's trigger-sampling-request is deterministic).

A tool result with isError=true is reported as-is; a JSON-RPC error becomes
{"error": {"code", "message"}}. If the connection itself fails, the document
is {"client": "py", "connectError": {...}} and the exit status is 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from typing import Any, AsyncIterator

import anyio

from mcp import ClientSession, StdioServerParameters, stdio_client, types
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

# `_meta` keys / object keys whose values differ from run to run.
VOLATILE_KEYS = {
    "steward/decisionId",
    "timestamp",
    "requestId",
    "progressToken",
}
VOLATILE = "<volatile>"
DATETIME_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?"
)
UUID_RE = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
WEEKDAY_RE = re.compile(r"\b(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\b")


def normalise(value: Any, datetimes: bool) -> Any:
    if isinstance(value, dict):
        return {k: (VOLATILE if k in VOLATILE_KEYS else normalise(v, datetimes)) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v, datetimes) for v in value]
    if isinstance(value, str):
        value = UUID_RE.sub("<uuid>", value)  # e.g. the decision id in a steward deny message
        if datetimes:
            value = WEEKDAY_RE.sub("<weekday>", DATETIME_RE.sub("<datetime>", value))
    return value


def dump(model: Any) -> Any:
    if model is None:
        return None
    if hasattr(model, "model_dump"):
        return model.model_dump(by_alias=True, mode="json", exclude_none=True)
    return model


# Deterministic answers to server->client requests (--with-callbacks); ts_client.mjs answers identically.
E2E_ROOT = {"uri": "file:///tmp/steward-e2e-root", "name": "steward-e2e-root"}


async def sampling_callback(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    first = params.messages[0].content if params.messages else None
    text = getattr(first, "text", "") if first is not None else ""
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text=f"steward-e2e sampled: {text}"),
        model="steward-e2e-model",
        stop_reason="endTurn",
    )


async def elicitation_callback(context: Any, params: Any) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"name": "Steward E2E"})


async def list_roots_callback(context: Any) -> types.ListRootsResult:
    return types.ListRootsResult(roots=[types.Root(uri=E2E_ROOT["uri"], name=E2E_ROOT["name"])])


async def open_session(session: ClientSession, mode: str) -> None:
    if mode == "legacy":
        await session.initialize()
    elif mode == "discover":
        await session.discover()
    elif mode in MODERN_PROTOCOL_VERSIONS:
        # Same as mcp.Client(mode="2026-07-28"): adopt a synthesized DiscoverResult.
        from mcp.client.client import _synthesize_discover  # type: ignore[attr-defined]

        session.adopt(_synthesize_discover(mode))
    else:  # auto
        try:
            from mcp.client._probe import negotiate_auto  # type: ignore[attr-defined]
        except ImportError:  # pragma: no cover - SDK layout changed
            try:
                await session.discover()
            except MCPError:
                await session.initialize()
        else:
            await negotiate_auto(session)


def describe_exception(exc: BaseException) -> dict[str, Any]:
    # Unwrap anyio/asyncio exception groups to the first leaf.
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, MCPError):
        return {"error": {"code": exc.code, "message": exc.message}}
    return {"exception": {"type": type(exc).__name__, "message": str(exc)}}


@contextlib.asynccontextmanager
async def connect(opts: argparse.Namespace, cmd: list[str]) -> AsyncIterator[tuple[Any, Any]]:
    """(read, write) streams: a stdio child, or streamable HTTP with --url."""
    if opts.url is None:
        params = StdioServerParameters(command=cmd[0], args=cmd[1:], env=dict(os.environ))
        async with stdio_client(params) as streams:
            yield streams
        return
    if opts.sse:
        async with sse_client(opts.url, headers=dict(opts.header), timeout=opts.timeout) as streams:
            yield streams
        return
    async with create_mcp_http_client(headers=dict(opts.header)) as http:
        async with streamable_http_client(opts.url, http_client=http) as streams:
            yield streams


async def run(opts: argparse.Namespace, cmd: list[str]) -> tuple[dict[str, Any], int]:
    doc: dict[str, Any] = {"client": "py", "mode": opts.mode}
    calls: list[dict[str, Any]] = []
    rc = 0
    try:
        with anyio.fail_after(opts.timeout):
            async with connect(opts, cmd) as (read, write):
                callbacks: dict[str, Any] = {}
                if opts.with_callbacks:
                    callbacks = {
                        "sampling_callback": sampling_callback,
                        "elicitation_callback": elicitation_callback,
                        "list_roots_callback": list_roots_callback,
                    }
                async with ClientSession(read, write, read_timeout_seconds=opts.timeout, **callbacks) as session:
                    await open_session(session, opts.mode)
                    doc["protocolVersion"] = session.protocol_version
                    info = session.server_info
                    doc["serverInfo"] = (
                        {"name": info.name, "version": info.version} if info is not None else None
                    )
                    try:
                        listed = await session.list_tools()
                        doc["tools"] = sorted(
                            ({"name": t.name, "inputSchema": t.input_schema} for t in listed.tools),
                            key=lambda t: t["name"],
                        )
                    except Exception as exc:  # noqa: BLE001 - reported, not fatal
                        doc["tools"] = describe_exception(exc)
                    for name, args in opts.call:
                        entry: dict[str, Any] = {"tool": name, "args": args}
                        try:
                            result = await session.call_tool(name, args)
                            entry.update(
                                {
                                    "isError": bool(result.is_error),
                                    "content": [dump(c) for c in result.content],
                                    "structuredContent": result.structured_content,
                                    "meta": result.meta,
                                }
                            )
                        except Exception as exc:  # noqa: BLE001 - reported, not fatal
                            entry.update(describe_exception(exc))
                        calls.append(entry)
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        if "tools" not in doc:
            doc["connectError"] = describe_exception(exc)
            rc = 2
        else:
            doc["shutdownError"] = describe_exception(exc)
    doc["calls"] = calls
    return normalise(doc, opts.normalize_datetimes), rc


def parse_header(value: str) -> tuple[str, str]:
    name, sep, rest = value.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"--header wants 'Name: value', got {value!r}")
    return name.strip(), rest.strip()


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    usage = "usage: py_client.py [options] [--call TOOL JSON_ARGS]... (-- CMD ARGS... | --url URL [--header 'N: v']...)"
    if "--" in argv:
        split = argv.index("--")
        own, cmd = argv[:split], argv[split + 1 :]
    elif "--url" in argv:
        own, cmd = argv, []
    else:
        sys.exit(usage)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", default="auto", choices=["auto", "legacy", "discover", *MODERN_PROTOCOL_VERSIONS])
    parser.add_argument("--timeout", type=float, default=30.0, help="overall deadline in seconds")
    parser.add_argument(
        "--normalize-datetimes", action="store_true", help="replace ISO-8601 date-times / weekday names in strings with <datetime> / <weekday>"
    )
    parser.add_argument(
        "--with-callbacks",
        action="store_true",
        help="declare sampling/elicitation/roots capabilities and answer them deterministically",
    )
    parser.add_argument("--call", nargs=2, action="append", default=[], metavar=("TOOL", "JSON_ARGS"))
    parser.add_argument("--url", help="streamable HTTP endpoint instead of a stdio command")
    parser.add_argument(
        "--header", type=parse_header, action="append", default=[], metavar="'NAME: VALUE'", help="HTTP header (with --url)"
    )
    parser.add_argument("--sse", action="store_true", help="with --url: the legacy HTTP+SSE transport (GET stream + POST endpoint)")
    opts = parser.parse_args(own)
    opts.call = [(name, json.loads(args)) for name, args in opts.call]
    if opts.url is not None and cmd:
        parser.error("give either --url or -- CMD, not both")
    if opts.url is None and not cmd:
        parser.error("missing server command after -- (or --url)")
    if opts.header and opts.url is None:
        parser.error("--header needs --url")
    return opts, cmd


def main() -> int:
    opts, cmd = parse_args(sys.argv[1:])
    doc, rc = anyio.run(run, opts, cmd)
    sys.stdout.write(json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n")
    sys.stdout.flush()
    return rc


if __name__ == "__main__":
    sys.exit(main())
