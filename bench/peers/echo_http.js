// The "direct" baseline of the peer comparison: a bare Node HTTP server answering MCP JSON-RPC
// (initialize with a session id, tools/call echo) with no framework. Usage: node echo_http.js PORT
'use strict';
const http = require('http');
const port = Number(process.argv[2] || 8790);
let sessions = 0;
http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let msg;
    try { msg = JSON.parse(Buffer.concat(chunks).toString()); } catch { res.writeHead(400).end(); return; }
    if (msg.id === undefined) { res.writeHead(202).end(); return; }
    const headers = { 'content-type': 'application/json' };
    let result;
    if (msg.method === 'initialize') {
      headers['mcp-session-id'] = `s${++sessions}`;
      result = { protocolVersion: msg.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'echo', version: '1' } };
    } else if (msg.method === 'tools/call') {
      result = { content: [{ type: 'text', text: (msg.params.arguments || {}).text || '' }] };
    } else {
      result = {};
    }
    res.writeHead(200, headers).end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }));
  });
}).listen(port, '127.0.0.1');
