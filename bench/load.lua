-- wrk script for berth's benchmark driver (bench/bench.py).
-- Usage: wrk ... -s bench/load.lua URL -- METHOD PATH [HEADERFILE [BODYFILE]]
--   HEADERFILE: one "Name: value" per line (may be "-" for none)
--   BODYFILE:   request body; every "@ID@" in it is replaced per request by a unique id
--               (<thread>-<counter>), so e.g. every PutImage pushes a distinct manifest.
-- done() prints one line "BENCH_JSON {...}" with requests, duration, errors and latency
-- percentiles (microseconds) for the driver to parse.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local method, path, headers, body, templated, prebuilt

function init(args)
  method = args[1] or "GET"
  path = args[2] or "/"
  headers = {}
  if args[3] and args[3] ~= "-" then
    for line in slurp(args[3]):gmatch("[^\r\n]+") do
      local k, v = line:match("^([^:]+):%s*(.*)$")
      if k then headers[k] = v end
    end
  end
  if args[4] and args[4] ~= "-" then
    body = slurp(args[4])
  end
  templated = body ~= nil and body:find("@ID@", 1, true) ~= nil
  if not templated then
    prebuilt = wrk.format(method, path, headers, body)
  end
end

function request()
  if not templated then
    return prebuilt
  end
  counter = counter + 1
  local id = tostring(tid) .. "-" .. tostring(counter)
  local b = body:gsub("@ID@", id)
  return wrk.format(method, path, headers, b)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"status":%d,"timeout":%d,"lat_mean_us":%.1f,"lat_p50_us":%d,' ..
    '"lat_p90_us":%d,"lat_p99_us":%d,"lat_max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
