-- pipeline.lua: GET /plaintext pipelined, TechEmpower style: each write
-- carries `depth` requests (default 16, or the first script argument:
-- wrk ... -s pipeline.lua URL -- 16). wrk counts every answer.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(dir .. "report.lua")

wrk.method = "GET"
wrk.path = "/plaintext"
wrk.headers["Accept"] = "text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7"
wrk.headers["Connection"] = "keep-alive"

local batch

init = function(args)
  local depth = tonumber(args[1]) or 16
  local r = {}
  for i = 1, depth do
    r[i] = wrk.format()
  end
  batch = table.concat(r)
end

request = function()
  return batch
end

done = report.done
