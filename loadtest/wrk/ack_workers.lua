-- An ack-mode worker pool beside its publisher: the members of one queue
-- group in ack mode each fetch with wait_ms and max_messages, ack the batch
-- through its last seq, and fetch again; the first WRK_PUBLISHERS threads
-- publish numbered messages to the same subject. One connection per wrk
-- thread (-c equal to -t), so each keeps its own subscriber id:
--   wrk -t5 -c5 -d10s --timeout 10s -s loadtest/wrk/ack_workers.lua http://127.0.0.1:8082
-- (1 publisher, 4 workers). Besides the RESULT line, one line of tallies:
--   ACK_WORKERS publishers=1 members=4 published=.. publish_errors=0 fetches=..
--     empty_fetches=.. delivered=.. redelivered=.. acks=.. acked=.. duplicates=0
-- acked is the sum of the acks' "acked" counts (an ack through N settles
-- only what its member holds up to N). After the run,
-- the broker's gophermq_messages_published_total less `acked` is what it
-- still holds (gophermq_pending_messages, in flight included), give or take
-- the answers wrk did not read before it stopped.
-- Env: WRK_SUBJECT (load.acks), WRK_GROUP (workers), WRK_PUBLISHERS (1),
-- WRK_WAIT_MS (1000), WRK_MAX_MESSAGES (100), WRK_ACK_WAIT_MS (30000),
-- WRK_MAX_ACK_PENDING (10000). wrk's --timeout must be longer than the wait.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local lt = dofile(here .. "common.lua")
lt.name("ack_workers")
local group
group = dofile(here .. "group_common.lua")(lt, {
  name = "ack_workers",
  default_subject = "load.acks",
  default_group = "workers",
  subscribe_fields = string.format(',"ack_wait_ms":%d,"max_ack_pending":%d',
    lt.env_number("WRK_ACK_WAIT_MS", 30000), lt.env_number("WRK_MAX_ACK_PENDING", 10000)),
  after_fetch = function(seqs)
    return group.member_request("/api/ack", ',"through":' .. seqs[#seqs])
  end,
})
