#!/usr/bin/env node
// Exercise an arbitrary stdio MCP server with the official TypeScript SDK
// (@modelcontextprotocol/sdk 1.32.2: StdioClientTransport + Client).
//
// Usage:
//   node ts_client.mjs [--timeout S] [--normalize-datetimes] [--with-callbacks]
//                      [--call TOOL JSON_ARGS]... -- CMD ARGS...
//   node ts_client.mjs [options] [--call TOOL JSON_ARGS]... --url URL [--sse] [--header 'Name: value']...
//
// With --url the StreamableHTTPClientTransport is used (the --header values go on every
// request, e.g. `Authorization: Bearer ...`); the session is terminated (DELETE) at the end.
// With --sse as well, the legacy HTTP+SSE SSEClientTransport.
//
// Connects (the SDK always uses the legacy `initialize` handshake, offering
// protocolVersion 2025-11-25), lists the tools, calls each requested tool in
// order and prints ONE canonical JSON document on stdout (sorted keys, compact,
// volatile values normalised as in py_client.py, UUIDs in strings -> "<uuid>"),
// with the same shape as py_client.py:
//
//   {"client": "ts", "mode": "legacy", "protocolVersion": ..., "serverInfo": {...},
//    "tools": [{"name", "inputSchema"}...],            (sorted by name)
//    "calls": [{"tool", "args", "isError", "content", "structuredContent", "meta"}
//              | {"tool", "args", "error": {"code", "message"}}
//              | {"tool", "args", "exception": {"type", "message"}}]}
//
// --with-callbacks declares sampling/elicitation/roots and answers them with the
// same fixed values as py_client.py.
//
// A tool result with isError=true is reported as-is; a JSON-RPC error (McpError)
// becomes {"error": {"code", "message"}}. If the connection fails the document is
// {"client": "ts", "connectError": {...}} and the exit status is 2.

import process from "node:process";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  McpError,
} from "@modelcontextprotocol/sdk/types.js";

const VOLATILE_KEYS = new Set(["steward/decisionId", "timestamp", "requestId", "progressToken"]);
const VOLATILE = "<volatile>";
const DATETIME_RE = /\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?/g;
const UUID_RE = /\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b/g;
const WEEKDAY_RE = /\b(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\b/g;

function usage(msg) {
  process.stderr.write(
    (msg ? msg + "\n" : "") +
      "usage: ts_client.mjs [--timeout S] [--normalize-datetimes] [--with-callbacks] [--call TOOL JSON_ARGS]...\n" +
      "                     (-- CMD ARGS... | --url URL [--header 'Name: value']...)\n",
  );
  process.exit(64);
}

function parseArgs(argv) {
  const split = argv.indexOf("--");
  const own = split < 0 ? argv : argv.slice(0, split);
  const cmd = split < 0 ? [] : argv.slice(split + 1);
  const opts = { timeout: 30, normalizeDatetimes: false, withCallbacks: false, calls: [], url: null, headers: {}, sse: false };
  for (let i = 0; i < own.length; i++) {
    const a = own[i];
    if (a === "--call") {
      if (own[i + 2] === undefined) usage("--call needs TOOL JSON_ARGS");
      opts.calls.push([own[i + 1], JSON.parse(own[i + 2])]);
      i += 2;
    } else if (a === "--timeout") {
      opts.timeout = Number(own[++i]);
    } else if (a === "--with-callbacks") {
      opts.withCallbacks = true;
    } else if (a === "--normalize-datetimes") {
      opts.normalizeDatetimes = true;
    } else if (a === "--url") {
      opts.url = own[++i];
      if (!opts.url) usage("--url needs a URL");
    } else if (a === "--sse") {
      opts.sse = true;
    } else if (a === "--header") {
      const h = own[++i] ?? "";
      const colon = h.indexOf(":");
      if (colon <= 0) usage(`--header wants 'Name: value', got ${JSON.stringify(h)}`);
      opts.headers[h.slice(0, colon).trim()] = h.slice(colon + 1).trim();
    } else if (a === "--mode") {
      const m = own[++i];
      if (m !== "legacy") usage("the TypeScript SDK 1.x only supports --mode legacy");
    } else {
      usage(`unknown option ${a}`);
    }
  }
  if (opts.url && cmd.length) usage("give either --url or -- CMD, not both");
  if (!opts.url && cmd.length === 0) usage("missing server command after -- (or --url)");
  if (!opts.url && Object.keys(opts.headers).length) usage("--header needs --url");
  if (!opts.url && opts.sse) usage("--sse needs --url");
  return { opts, cmd };
}

function normalise(value, datetimes) {
  if (Array.isArray(value)) return value.map((v) => normalise(v, datetimes));
  if (value !== null && typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = VOLATILE_KEYS.has(k) ? VOLATILE : normalise(v, datetimes);
    return out;
  }
  if (typeof value === "string") {
    value = value.replace(UUID_RE, "<uuid>"); // e.g. the decision id in a steward deny message
    if (datetimes) value = value.replace(DATETIME_RE, "<datetime>").replace(WEEKDAY_RE, "<weekday>");
  }
  return value;
}

// Deterministic JSON: keys sorted recursively, compact separators (same as py_client.py).
function canonical(value) {
  if (Array.isArray(value)) return "[" + value.map(canonical).join(",") + "]";
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort();
    return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonical(value[k])).join(",") + "}";
  }
  return JSON.stringify(value === undefined ? null : value);
}

function describeError(err) {
  if (err instanceof McpError) {
    // McpError prefixes the wire message with "MCP error <code>: "; report the wire message.
    const prefix = `MCP error ${err.code}: `;
    const message = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
    return { error: { code: err.code, message } };
  }
  return { exception: { type: err?.constructor?.name ?? typeof err, message: String(err?.message ?? err) } };
}

function emit(doc, opts, rc) {
  process.stdout.write(canonical(normalise(doc, opts.normalizeDatetimes)) + "\n", () => process.exit(rc));
}

async function main() {
  const { opts, cmd } = parseArgs(process.argv.slice(2));
  const doc = { client: "ts", mode: "legacy", calls: [] };
  const watchdog = setTimeout(() => {
    doc.connectError = doc.tools ? undefined : { exception: { type: "Timeout", message: `no answer within ${opts.timeout}s` } };
    doc.timeout = true;
    emit(doc, opts, 3);
  }, opts.timeout * 1000);

  let transport;
  if (opts.url && opts.sse) {
    transport = new SSEClientTransport(new URL(opts.url), { requestInit: { headers: opts.headers } });
  } else if (opts.url) {
    transport = new StreamableHTTPClientTransport(new URL(opts.url), { requestInit: { headers: opts.headers } });
  } else {
    const env = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
    transport = new StdioClientTransport({ command: cmd[0], args: cmd.slice(1), env, stderr: "inherit" });
  }
  let negotiated = null;
  // Client.connect() calls transport.setProtocolVersion(result.protocolVersion) when present;
  // the HTTP transport needs it for its MCP-Protocol-Version header, so keep the original.
  const original = transport.setProtocolVersion?.bind(transport);
  transport.setProtocolVersion = (v) => {
    negotiated = v;
    if (original) original(v);
  };
  const capabilities = opts.withCallbacks ? { sampling: {}, elicitation: {}, roots: { listChanged: true } } : {};
  const client = new Client({ name: "steward-e2e-ts", version: "0.0.0" }, { capabilities });
  if (opts.withCallbacks) {
    // Deterministic answers, identical to py_client.py --with-callbacks.
    client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
      const first = req.params.messages?.[0]?.content;
      const text = first && first.type === "text" ? first.text : "";
      return {
        role: "assistant",
        content: { type: "text", text: `steward-e2e sampled: ${text}` },
        model: "steward-e2e-model",
        stopReason: "endTurn",
      };
    });
    client.setRequestHandler(ElicitRequestSchema, async () => ({ action: "accept", content: { name: "Steward E2E" } }));
    client.setRequestHandler(ListRootsRequestSchema, async () => ({
      roots: [{ uri: "file:///tmp/steward-e2e-root", name: "steward-e2e-root" }],
    }));
  }
  const reqOpts = { timeout: opts.timeout * 1000 };
  let rc = 0;
  try {
    await client.connect(transport, reqOpts);
  } catch (err) {
    doc.connectError = describeError(err);
    clearTimeout(watchdog);
    try {
      await client.close();
    } catch {}
    emit(doc, opts, 2);
    return;
  }
  doc.protocolVersion = negotiated;
  const info = client.getServerVersion();
  doc.serverInfo = info ? { name: info.name, version: info.version } : null;
  try {
    const listed = await client.listTools(undefined, reqOpts);
    doc.tools = listed.tools
      .map((t) => ({ name: t.name, inputSchema: t.inputSchema }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } catch (err) {
    doc.tools = describeError(err);
  }
  for (const [name, args] of opts.calls) {
    const entry = { tool: name, args };
    try {
      const result = await client.callTool({ name, arguments: args }, undefined, reqOpts);
      entry.isError = Boolean(result.isError);
      entry.content = result.content ?? [];
      entry.structuredContent = result.structuredContent ?? null;
      entry.meta = result._meta ?? null;
    } catch (err) {
      Object.assign(entry, describeError(err));
    }
    doc.calls.push(entry);
  }
  try {
    if (opts.url && !opts.sse) await transport.terminateSession();
    await client.close();
  } catch (err) {
    doc.shutdownError = describeError(err);
  }
  clearTimeout(watchdog);
  emit(doc, opts, rc);
}

main().catch((err) => {
  process.stderr.write(`ts_client: fatal: ${err?.stack ?? err}\n`);
  process.exit(1);
});
