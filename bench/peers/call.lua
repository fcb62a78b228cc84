-- wrk script: tools/call echo on the MCP session given as the first argument after `--`.
-- Counts non-200 answers and answers without a result as errors (printed at the end).
local errors = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Accept"] = "application/json, text/event-stream"
  wrk.headers["Mcp-Session-Id"] = args[1]
  wrk.headers["MCP-Protocol-Version"] = "2025-06-18"
  wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello from wrk"}}}'
end

function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"result"', 1, true) or string.find(body, '"isError":true', 1, true) then
    errors = errors + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + (t:get("errors") or 0) end
  io.write(string.format("MCP_ERRORS %d\n", bad))
  io.write(string.format("LAT_P50_US %d\nLAT_P90_US %d\nLAT_P99_US %d\n",
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
