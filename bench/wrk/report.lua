-- report.lua: the reporting hook every scenario script loads.
-- wrk calls done() once, after all threads finish; it prints one line
--   WRKRESULT {json}
-- that bench/run.sh collects. Latencies are microseconds. "errors_status"
-- is wrk's count of answers with status >= 400 (its non-2xx/3xx counter);
-- the socket counters are connect/read/write/timeout errors.
local M = {}

-- wrk's coordinated-omission correction can add samples below the smallest
-- recorded latency (always when pipelining, since it assumes one request
-- per round trip). They stay in the sample count but every stats method
-- scans from the smallest recorded value, so latency:percentile(p) returns
-- 0 once p's rank falls past the visible samples (wrk issues #236, #354).
-- visible finds the visible share of the count by bisection on where
-- percentile() turns 0, so percentiles are ranked over the visible samples
-- alone: the correction's below-minimum artefacts are left out, and the
-- result lies between the fully corrected figure and wrk's own --latency
-- line (which ranks visible samples against the whole count), never 0.
local function visible(latency)
  if latency.max == 0 then
    return 0
  end
  local lo, hi = 0, 100
  for _ = 1, 40 do
    local mid = (lo + hi) / 2
    if latency:percentile(mid) ~= 0 then
      lo = mid
    else
      hi = mid
    end
  end
  return lo / 100
end

local function percentiles(latency, ps)
  local share = visible(latency)
  local out = {}
  for k, p in ipairs(ps) do
    out[k] = share == 0 and 0 or latency:percentile(p * share)
  end
  return out
end

function M.done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  local p = percentiles(latency, {50, 90, 99})
  io.write(string.format(
    'WRKRESULT {"requests":%d,"duration_us":%d,"rps":%.2f,"bytes":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,' ..
    '"errors_connect":%d,"errors_read":%d,"errors_write":%d,' ..
    '"errors_timeout":%d,"errors_status":%d}\n',
    summary.requests, summary.duration, summary.requests / secs, summary.bytes,
    p[1], p[2], p[3], latency.max, latency.mean,
    e.connect, e.read, e.write, e.timeout, e.status))
end

return M
