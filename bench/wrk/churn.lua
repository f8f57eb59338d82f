-- churn.lua: GET /plaintext with "Connection: close" on every request, so
-- each request pays a TCP connect, accept and close (wrk reconnects when
-- the answer says close).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(dir .. "report.lua")

wrk.method = "GET"
wrk.path = "/plaintext"
wrk.headers["Connection"] = "close"

done = report.done
