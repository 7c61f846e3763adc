-- Shared by the wrk scripts: a keys file per thread, thread ids, and one parseable result line.
-- Loaded with dofile(); the scripts take `-- KEYS_FILE TAG` after wrk's own arguments.

local bench = {}

local threads = 0

-- Runs in wrk's main Lua state, once per thread before it starts: gives each thread an id.
function setup(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end

-- Reads the keys (one a line) into this thread's state and seeds its random numbers.
function bench.load(args)
  local path = args[1]
  if path == nil then error("usage: wrk ... -s script.lua URL -- KEYS_FILE TAG") end
  local keys = {}
  for line in io.lines(path) do
    if #line > 0 then keys[#keys + 1] = line end
  end
  if #keys == 0 then error("no keys in " .. path) end
  math.randomseed(os.time() * 7919 + (thread_id or 0) * 104729)
  return keys, (args[2] or "run") .. "-" .. tostring(thread_id or 0)
end

local percents = { 1, 5, 10, 20, 25, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95, 97, 98, 99, 99.5, 99.9, 99.99 }

-- Runs in the main state after the run: one `WRKJSON {...}` line that bench/src/latency.rs reads.
function done(summary, latency, requests)
  local points = {}
  for _, p in ipairs(percents) do
    points[#points + 1] = string.format("[%g,%d]", p, latency:percentile(p))
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"min_us":%d,"max_us":%d,"percentiles":[%s]}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency.min, latency.max, table.concat(points, ",")))
end

return bench
