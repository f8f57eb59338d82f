-- delay.lua: GET /delay (the server sleeps 100 ms) with many concurrent
-- keep-alive connections; what matters is p50/p99 staying near 100 ms and
-- requests/s near connections / 0.1 s.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(dir .. "report.lua")

wrk.method = "GET"
wrk.path = "/delay"
wrk.headers["Connection"] = "keep-alive"

done = report.done
