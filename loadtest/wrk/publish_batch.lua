-- POST /api/publish/batch (api-extensions.md §9): every request publishes
-- WRK_BATCH messages of WRK_PAYLOAD_BYTES to one subject at once, all or
-- nothing. wrk counts requests; the extra line done() prints counts messages.
--   id=$(curl -s -d '{"subject":"load.test"}' http://127.0.0.1:8082/api/subscribe)
--   WRK_BATCH=100 wrk -t1 -c50 -d10s --latency -s loadtest/wrk/publish_batch.lua URL
-- A queue nobody drains fills 100 times as fast as with publish.lua: start
-- the broker with a larger --broker.max-pending (and max-pending-bytes), or
-- drain it beside the run (long_poll.lua with WRK_MAX_MESSAGES=1000), else
-- the answers turn 429.
-- Env: WRK_BATCH (or BATCH; default 10), WRK_FORM (subject, the default:
-- {"subject":S,"data":[...]}; or messages: {"messages":[{"subject":S,"data":..},..]}),
-- WRK_SUBJECT (default load.test), WRK_PAYLOAD_BYTES (default 16).
local lt = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
lt.name("publish_batch")

local batch = lt.env_number("WRK_BATCH", lt.env_number("BATCH", 10))
if batch < 1 or batch ~= math.floor(batch) then error("WRK_BATCH must be a whole number >= 1") end
local form = lt.env("WRK_FORM", "subject")
local subject = lt.json_string(lt.env("WRK_SUBJECT", "load.test"))
local payload = '"' .. string.rep("x", lt.env_number("WRK_PAYLOAD_BYTES", 16)) .. '"'

local entries = {}
for i = 1, batch do
  if form == "subject" then
    entries[i] = payload
  elseif form == "messages" then
    entries[i] = '{"subject":' .. subject .. ',"data":' .. payload .. '}'
  else
    error("WRK_FORM must be subject or messages, got '" .. form .. "'")
  end
end
if form == "subject" then
  lt.static_post("/api/publish/batch",
    '{"subject":' .. subject .. ',"data":[' .. table.concat(entries, ",") .. ']}')
else
  lt.static_post("/api/publish/batch", '{"messages":[' .. table.concat(entries, ",") .. ']}')
end

-- After the RESULT line: what the requests carried, in messages.
--   BATCH messages_per_request=N messages=M messages_per_second=R
local report = done
function done(summary, latency, requests)
  report(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local answered = summary.requests - summary.errors.status
  io.write(string.format("BATCH messages_per_request=%d messages=%d messages_per_second=%.1f\n",
    batch, answered * batch, answered * batch / seconds))
end
