-- PagerDuty Events API v2 triggers for wrk (bench/bench_ingest.py runs it):
--
--   wrk -t THREADS -c CONNECTIONS -d MAX_SECONDS -s bench/wrk/enqueue.lua URL/v2/enqueue \
--       -- ROUTING_KEY EVENTS DEDUP_KEYS THREADS [PREFIX]
--
-- Exactly EVENTS events in all, numbered 0..EVENTS-1 across the threads, event n on dedup key
-- "<PREFIX>-<n mod DEDUP_KEYS>" (PREFIX "bench" unless given) and each one different (its
-- number is in it), so none takes the cheaper duplicate path.
--
-- wrk runs for a duration, not a count, so each thread counts: once it has sent its share its
-- connections wait (delay), and once its last event is answered it stops and writes "done" on
-- stderr; the bench then interrupts wrk (SIGINT), which prints the figures at once instead of
-- sleeping out MAX_SECONDS. The throughput's clock runs from the first event sent to the last
-- answered (CLOCK_MONOTONIC, through LuaJIT's ffi). Where wrk asks for a request anyway it gets
-- a `GET /healthz` filler, which answers 200 (no event does) and is not counted: the first
-- request of each thread (wrk calls request() once on its own to check the script, and never
-- sends that one) and, rarely, one at the end.
--
-- The last line printed is JSON: events answered, by status; wrk's socket errors; the seconds
-- the events took; latency percentiles in microseconds (fillers included: a handful).

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]])
local CLOCK_MONOTONIC = 1

local function now_us()
  local t = ffi.new("bench_timespec")
  ffi.C.clock_gettime(CLOCK_MONOTONIC, t)
  return tonumber(t.tv_sec) * 1000000 + tonumber(t.tv_nsec) / 1000
end

local threads = {}
local next_number = 0

function setup(thread)
  thread:set("number", next_number)
  next_number = next_number + 1
  table.insert(threads, thread)
end

function init(args)
  routing_key = args[1]
  total = tonumber(args[2])
  keys = tonumber(args[3])
  thread_count = tonumber(args[4])
  prefix = args[5] or "bench"
  quota = math.floor(total / thread_count)
  if number < total % thread_count then
    quota = quota + 1
  end
  sent = 0
  answered = 0
  accepted = 0
  statuses = ""
  first_us = 0
  last_us = 0
  headers = { ["Content-Type"] = "application/json" }
  filler = wrk.format("GET", "/healthz")
  primed = false
end

function delay()
  if sent >= quota then
    return 600000 -- idle: the thread stops once its last event is answered
  end
  return 0
end

function request()
  if not primed or sent >= quota then
    primed = true
    return filler
  end
  if sent == 0 then
    first_us = now_us()
  end
  local n = number + sent * thread_count
  sent = sent + 1
  local key = n % keys
  local body = string.format(
    '{"routing_key":"%s","event_action":"trigger","dedup_key":"%s-%d",'
      .. '"payload":{"summary":"Bench event %d: disk filling up on host-%d",'
      .. '"source":"host-%d.bench","severity":"critical","component":"disk",'
      .. '"group":"bench","class":"disk","custom_details":{"event":%d,"free_percent":%d}}}',
    routing_key, prefix, key, n, key, key, n, n % 7)
  return wrk.format("POST", nil, headers, body)
end

function response(status, headers, body)
  if status == 200 then
    return -- a filler
  end
  answered = answered + 1
  if status == 202 then
    accepted = accepted + 1
  else
    statuses = statuses .. "," .. status
  end
  if answered >= quota then
    last_us = now_us()
    io.stderr:write("done\n")
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local answered_all, accepted_all, others = 0, 0, {}
  local first, last = nil, 0
  for _, thread in ipairs(threads) do
    answered_all = answered_all + thread:get("answered")
    accepted_all = accepted_all + thread:get("accepted")
    for status in string.gmatch(thread:get("statuses"), "%d+") do
      others[status] = (others[status] or 0) + 1
    end
    local started, ended = thread:get("first_us"), thread:get("last_us")
    if started > 0 and (first == nil or started < first) then
      first = started
    end
    if ended == 0 then
      ended = now_us() -- a thread that never got all its answers: until now
    end
    if ended > last then
      last = ended
    end
  end
  local parts = {}
  for status, count in pairs(others) do
    table.insert(parts, string.format('"%s":%d', status, count))
  end
  local errors = summary.errors
  io.write(string.format(
    '{"events":%d,"accepted":%d,"other_statuses":{%s},"requests":%d,"seconds":%.6f,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},'
      .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    answered_all, accepted_all, table.concat(parts, ","), summary.requests,
    ((last - (first or last)) / 1000000), errors.connect, errors.read, errors.write,
    errors.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max))
end
