-- json.lua: GET /json over keep-alive connections.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(dir .. "report.lua")

wrk.method = "GET"
wrk.path = "/json"
wrk.headers["Accept"] = "application/json,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7"
wrk.headers["Connection"] = "keep-alive"

done = report.done
