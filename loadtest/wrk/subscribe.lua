-- POST /api/subscribe: every request creates a new subscriber, so the
-- broker's memory grows with the run (about one entry per request).
-- Env: WRK_SUBJECT (default load.subscribe).
local lt = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
lt.name("subscribe")
lt.static_post("/api/subscribe", '{"subject":' .. lt.json_string(lt.env("WRK_SUBJECT", "load.subscribe")) .. '}')
