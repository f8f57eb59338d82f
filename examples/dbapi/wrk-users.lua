-- wrk-users.lua: GET /users/{id} for a random id in 1..USERS (wrk's
-- environment, default 10000) over keep-alive connections; done() prints
--   RESULT <requests> <req/s> <p50 µs> <p99 µs> <non-2xx/3xx> <socket errors>
-- for bench.sh.
local users = tonumber(os.getenv("USERS") or "10000")

function setup(thread)
  thread:set("seed", math.random(1, 1e9))
end

function init(args)
  math.randomseed(seed or os.time())
end

function request()
  return wrk.format("GET", "/users/" .. math.random(1, users))
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %.1f %d %d %d %d\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
