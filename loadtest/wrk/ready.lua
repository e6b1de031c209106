-- GET /ready (answered 204, empty body): the cost of the HTTP layer alone.
local lt = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
lt.name("ready")
wrk.method = "GET"
wrk.path = "/ready"
