-- POST /api/publish over many subjects in turn (<WRK_SUBJECT>.1 to
-- .<WRK_SUBJECTS>), so that behind HAProxy the load spreads over every
-- node of a cluster (each subject lives on one node). tools/loadtest
-- haproxy subscribes each subject first (else every answer is 404).
-- Env: WRK_SUBJECT (default load.spread), the prefix; WRK_SUBJECTS
-- (default 64); WRK_PAYLOAD_BYTES.
-- The requests are built once, in init(); wrk still runs Lua for each one
-- to pick the next, so it drives fewer requests per second than with the
-- static scripts.
local lt = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
lt.name("publish_spread")

local requests = {}
local next_request = 0

function init(args)
  local prefix = lt.env("WRK_SUBJECT", "load.spread")
  for i = 1, lt.env_number("WRK_SUBJECTS", 64) do
    requests[i] = lt.post("/api/publish", lt.publish_body(prefix .. "." .. i))
  end
end

function request()
  next_request = next_request % #requests + 1
  return requests[next_request]
end
