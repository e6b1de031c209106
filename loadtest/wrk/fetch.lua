-- POST /api/fetch for one existing subscriber. wrk's Lua cannot make an
-- HTTP call before the run, so the caller subscribes first and passes the id:
--   id=$(curl -s -d '{"subject":"load.test"}' http://127.0.0.1:8082/api/subscribe |
--        sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
--   WRK_SUBSCRIBER_ID=$id WRK_SUBJECT=load.test wrk ... -s loadtest/wrk/fetch.lua URL
-- With no publisher running, every answer is {"data":[],...}: this measures
-- the fetch path itself (lookup, drain, encode), not the size of the queue.
-- Env: WRK_SUBSCRIBER_ID (required), WRK_SUBJECT (default load.test).
local lt = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
lt.name("fetch")
local id = lt.require_env("WRK_SUBSCRIBER_ID", "fetch.lua")
lt.static_post("/api/fetch", lt.fetch_body(lt.env("WRK_SUBJECT", "load.test"), id))
