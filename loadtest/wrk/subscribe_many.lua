-- POST /api/subscribe, each request to a subject never seen before
-- (<WRK_SUBJECT>.1, .2, ...): a subject per user, say. The broker's subject
-- table grows all run long, which is what this looks at (a table that grows
-- by rehashing everything at once shows up in p99 and max).
-- Env: WRK_SUBJECT (default load.user), the prefix.
-- The body changes per request, so wrk runs Lua for each one: wrk itself
-- drives fewer requests per second than with the static scripts.
local lt = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
lt.name("subscribe_many")
local prefix = lt.env("WRK_SUBJECT", "load.user")
local count = 0

function request()
  count = count + 1
  return lt.post("/api/subscribe", '{"subject":' .. lt.json_string(prefix .. "." .. count) .. '}')
end
