#!/usr/bin/env node
// server-everything's streamable HTTP mode (`dist/index.js streamableHttp`), bound to 127.0.0.1.
//
// Usage: PORT=NNNN node servers/everything_http.mjs
//
// The upstream module calls `app.listen(PORT)`, which binds every interface; the e2e tests must
// bind loopback only, so net.Server#listen is patched to add host 127.0.0.1 when none is given
// before the module is imported. Endpoint: http://127.0.0.1:$PORT/mcp
import net from "node:net";
import { fileURLToPath, pathToFileURL } from "node:url";
import path from "node:path";

const originalListen = net.Server.prototype.listen;
net.Server.prototype.listen = function patchedListen(...args) {
  if ((typeof args[0] === "number" || typeof args[0] === "string") && typeof args[1] !== "string") {
    args.splice(1, 0, "127.0.0.1");
  }
  return originalListen.apply(this, args);
};

if (!process.env.PORT) {
  process.stderr.write("everything_http.mjs: set PORT\n");
  process.exit(64);
}
const here = path.dirname(fileURLToPath(import.meta.url));
const entry = path.join(here, "..", "node_modules", "@modelcontextprotocol", "server-everything", "dist", "transports", "streamableHttp.js");
await import(pathToFileURL(entry).href);
