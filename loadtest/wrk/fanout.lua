-- POST /api/publish to a subject with many subscribers (tools/loadtest
-- subscribes 10 to load.fanout first): each publish stores one copy per
-- subscriber, none of which is fetched during the run.
-- Env: WRK_SUBJECT (default load.fanout), WRK_PAYLOAD_BYTES (default 16).
local lt = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
lt.name("fanout")
lt.static_post("/api/publish", lt.publish_body(lt.env("WRK_SUBJECT", "load.fanout")))
