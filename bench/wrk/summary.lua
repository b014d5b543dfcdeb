-- wrk's figures as one JSON line (the last line printed), for a plain run such as
--   wrk -t 1 -c 8 -d 5s -s bench/wrk/summary.lua URL/healthz
-- Latencies in microseconds; "non_2xx" counts answers that were not 2xx or 3xx.

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"non_2xx":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},'
      .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, errors.status,
    errors.connect, errors.read, errors.write, errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
