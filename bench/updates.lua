-- wrk script for bench/updates.py: /nic/update with a new address every time.
-- wrk -t1 -cC -dS -s bench/updates.lua URL -- HOSTS_FILE [FIRST_OCTET]
-- HOSTS_FILE: one "name,base64(name:secret)" per line. FIRST_OCTET (10 unless given)
-- begins every address: a warm-up run with another never repeats the measured run's. Requests go round-robin over the
-- hosts, so with as many connections as hosts each host has about one update in flight.
-- Answers that do not start with "good" are counted as `bad` (never acknowledged).

local hosts = {}
local counter = 0
local first_octet = 10
bad = 0 -- global: done() reads it from each thread

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  first_octet = tonumber(args[2] or "10")
  for line in io.lines(args[1]) do
    local name, auth = line:match("([^,]+),(.+)")
    hosts[#hosts + 1] = { name, "Basic " .. auth }
  end
end

function request()
  local index = counter % #hosts
  local round = math.floor(counter / #hosts)
  counter = counter + 1
  local host = hosts[index + 1]
  -- host i's k-th address differs from its (k-1)-th (LuaJIT: no // operator)
  local ip = string.format(
    "%d.%d.%d.%d", first_octet, math.floor(index / 250) + 20 * (math.floor(round / 250) % 10),
    index % 250, round % 250 + 1
  )
  return wrk.format("GET", "/nic/update?hostname=" .. host[1] .. "&myip=" .. ip,
    { Authorization = host[2], ["User-Agent"] = "homing-bench-wrk" })
end

function response(status, headers, body)
  if status ~= 200 or body:sub(1, 4) ~= "good" then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local total_bad = 0
  for _, thread in ipairs(threads) do
    total_bad = total_bad + thread:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bad": %d, "socket_errors": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "p999_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, total_bad, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
  -- The latency distribution as 1,000 quantiles (the midpoints of 0.1% steps) into
  -- the file $WRK_HISTOGRAM names, if set, so that several wrk processes' latencies can
  -- be merged (bench/updates_nodes.py); wrk's Lua API gives percentiles, not its raw
  -- histogram. done() runs in wrk's main Lua state, which init() never saw: the path
  -- comes from the environment.
  local histogram_path = os.getenv("WRK_HISTOGRAM")
  if histogram_path then
    local out = assert(io.open(histogram_path, "w"))
    for step = 0, 999 do
      out:write(latency:percentile(step / 10 + 0.05), "\n")
    end
    out:close()
  end
end
