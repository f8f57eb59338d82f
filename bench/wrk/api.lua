-- api.lua: the api scenario's load, examples/dbapi's own wrk script
-- (GET /users/{id} for a random id in 1..USERS, wrk's environment, default
-- 10000) with the runner's reporting hook in place of the example's.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(dir .. "report.lua")
dofile(dir .. "../../examples/dbapi/wrk-users.lua")

done = report.done
