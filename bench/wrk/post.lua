-- post.lua: POST /post with a 4 KiB body over keep-alive connections; the
-- server must read the whole body and answer "ok".
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(dir .. "report.lua")

wrk.method = "POST"
wrk.path = "/post"
wrk.body = string.rep("a", 4096)
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["Connection"] = "keep-alive"

done = report.done
