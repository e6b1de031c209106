-- POST /api/publish, one request at a time per connection.
-- The subject needs a subscriber first (else every answer is 404):
--   id=$(curl -s -d '{"subject":"load.test"}' http://127.0.0.1:8082/api/subscribe)
--   wrk -t1 -c50 -d10s --latency -s loadtest/wrk/publish.lua http://127.0.0.1:8082
-- Env: WRK_SUBJECT (default load.test), WRK_PAYLOAD_BYTES (default 16).
local lt = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
lt.name("publish")
lt.static_post("/api/publish", lt.publish_body(lt.env("WRK_SUBJECT", "load.test")))
