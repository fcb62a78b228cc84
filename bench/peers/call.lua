-- wrk script: tools/call echo on the MCP session given as the first argument after `--`.
-- Counts non-200 answers, answers without a result and refusals (isError) as errors, printed at
-- the end. `errors` is global: `thread:get` reads a thread's globals, never its locals.
errors = 0
local threads = {}

local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("thread_id", counter)
  table.insert(threads, thread)
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Accept"] = "application/json, text/event-stream"
  wrk.headers["Mcp-Session-Id"] = args[1]
  wrk.headers["MCP-Protocol-Version"] = "2025-06-18"
end

-- Every request its own id, as MCP requires within a session (Steward refuses an id that a
-- pending request of the session already uses): thread id times 10^9 plus a counter.
local n = 0
function request()
  n = n + 1
  local id = thread_id * 1000000000 + n
  return wrk.format(nil, nil, nil,
    '{"jsonrpc":"2.0","id":' .. id .. ',"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello from wrk"}}}')
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
