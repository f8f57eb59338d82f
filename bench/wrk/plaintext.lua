-- plaintext.lua: GET /plaintext over keep-alive connections, one request
-- in flight per connection, with TechEmpower's plaintext headers.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(dir .. "report.lua")

wrk.method = "GET"
wrk.path = "/plaintext"
wrk.headers["Accept"] = "text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7"
wrk.headers["Connection"] = "keep-alive"

done = report.done
