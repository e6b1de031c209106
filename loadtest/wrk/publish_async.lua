-- POST /api/publish/async: answered 200 once decoded; the store happens after.
-- Like publish.lua, the subject needs a subscriber (else the publishes are
-- dropped later and only the broker's metrics show it).
-- Env: WRK_SUBJECT (default load.test), WRK_PAYLOAD_BYTES (default 16).
local lt = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
lt.name("publish_async")
lt.static_post("/api/publish/async", lt.publish_body(lt.env("WRK_SUBJECT", "load.test")))
