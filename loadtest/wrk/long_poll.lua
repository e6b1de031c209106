-- POST /api/fetch with wait_ms (long-poll) for one existing subscriber, to
-- run beside a publisher: each connection's fetch waits until a message
-- arrives (or WRK_WAIT_MS passes), then the next goes out. The latency is
-- how long a fetch waited; with publishers running it is the delivery delay.
--   id=$(curl -s -d '{"subject":"load.test"}' http://127.0.0.1:8082/api/subscribe |
--        sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
--   WRK_SUBSCRIBER_ID=$id wrk -t1 -c8 -d10s --timeout 10s -s loadtest/wrk/long_poll.lua URL &
--   wrk -t1 -c4 -d10s -s loadtest/wrk/publish.lua URL
-- The connections share the subscriber, so each message goes to exactly one
-- of their fetches. wrk's --timeout must be longer than WRK_WAIT_MS.
-- Env: WRK_SUBSCRIBER_ID (required), WRK_SUBJECT (default load.test),
-- WRK_WAIT_MS (default 5000), WRK_MAX_MESSAGES (default 100).
local lt = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
lt.name("long_poll")
local id = lt.require_env("WRK_SUBSCRIBER_ID", "long_poll.lua")
local body = lt.fetch_body(lt.env("WRK_SUBJECT", "load.test"), id)
lt.static_post("/api/fetch", body:sub(1, -2) ..
  string.format(',"wait_ms":%d,"max_messages":%d}', lt.env_number("WRK_WAIT_MS", 5000),
    lt.env_number("WRK_MAX_MESSAGES", 100)))
