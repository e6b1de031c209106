-- Publish and fetch in turn, for one subscriber: the steady state of a queue
-- that is drained as fast as it is filled (each fetch returns what the
-- publishes since the last fetch stored, usually a message or two).
-- The alternation is per wrk thread, over all its connections.
-- Env: WRK_SUBSCRIBER_ID (required), WRK_SUBJECT (default load.test),
--      WRK_PAYLOAD_BYTES.
local lt = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
lt.name("mix")
local id = lt.require_env("WRK_SUBSCRIBER_ID", "mix.lua")

local publish, fetch
local turn = 0

function init(args)
  local subject = lt.env("WRK_SUBJECT", "load.test")
  publish = lt.post("/api/publish", lt.publish_body(subject))
  fetch = lt.post("/api/fetch", lt.fetch_body(subject, id))
end

function request()
  turn = turn + 1
  if turn % 2 == 1 then return publish end
  return fetch
end
