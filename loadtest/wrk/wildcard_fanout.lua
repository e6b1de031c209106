-- POST /api/publish to a subject that only wildcard subscribers take
-- (api-extensions.md §10): tools/loadtest subscribes 10 patterns that match
-- it and 1,000 that do not, so each publish is matched against a trie of
-- 1,010 patterns and stores 10 copies, none of which is fetched.
-- Env: WRK_SUBJECT (default load.wild.x), WRK_PAYLOAD_BYTES (default 16).
local lt = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
lt.name("wildcard_fanout")
lt.static_post("/api/publish", lt.publish_body(lt.env("WRK_SUBJECT", "load.wild.x")))
