-- POSTs prepared bodies in turn and prints wrk's summary as one JSON line for bench/serving.ts.
--
--   wrk -t1 -c64 -d6s -s bench/wrk/post.lua http://127.0.0.1:8080 -- <manifest>
--
-- The manifest (written by bench/serving.ts) has one directive per line:
--   path /v2/models/logreg30/infer
--   header Content-Type: application/json
--   body /abs/path/to/0.body          (raw bytes: JSON, or a JSON header then FP32 data)
-- Requests are formatted once in init(), so request() only hands back a prepared string.

local requests = {}
local count = 0
local next_index = 0

function init(args)
  local manifest = assert(io.open(args[1], "r"))
  local path, headers, files = "/", {}, {}
  for line in manifest:lines() do
    local kind, rest = line:match("^(%S+)%s+(.*)$")
    if kind == "path" then
      path = rest
    elseif kind == "header" then
      local name, value = rest:match("^([^:]+):%s*(.*)$")
      headers[name] = value
    elseif kind == "body" then
      files[#files + 1] = rest
    end
  end
  manifest:close()
  for _, file in ipairs(files) do
    local f = assert(io.open(file, "rb"))
    local body = f:read("*a")
    f:close()
    local h = {}
    for k, v in pairs(headers) do h[k] = v end
    requests[#requests + 1] = wrk.format("POST", path, h, body)
  end
  count = #requests
end

function request()
  next_index = next_index % count + 1
  return requests[next_index]
end

-- Runs in wrk's main Lua state, after every thread has stopped.
function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p99_us":%d,' ..
    '"mean_us":%.1f,"max_us":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(99),
    latency.mean, latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
