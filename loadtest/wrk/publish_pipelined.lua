-- POST /api/publish, HTTP/1.1-pipelined: each connection writes WRK_DEPTH
-- requests at once (default 16) and waits for all their answers before the
-- next batch. wrk counts every answer as one request, and its latency is from
-- the batch's write to that answer.
-- Env: WRK_DEPTH, WRK_SUBJECT (default load.test), WRK_PAYLOAD_BYTES.
local lt = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
lt.name("publish_pipelined")

local depth = lt.env_number("WRK_DEPTH", 16)
if depth < 1 or depth ~= math.floor(depth) then error("WRK_DEPTH must be a whole number >= 1") end

local batch
-- Built once per thread; wrk calls request() for every batch, and it only
-- returns the same string.
function init(args)
  local one = lt.post("/api/publish", lt.publish_body(lt.env("WRK_SUBJECT", "load.test")))
  batch = string.rep(one, depth)
end

function request()
  return batch
end
