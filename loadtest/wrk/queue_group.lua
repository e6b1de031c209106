-- A queue group (no acks) beside its publisher: the members of one group
-- each fetch with wait_ms and max_messages, again and again; the first
-- WRK_PUBLISHERS threads publish numbered messages to the same subject,
-- and each message goes to exactly one member. One connection per wrk
-- thread (-c equal to -t), so each keeps its own subscriber id:
--   wrk -t5 -c5 -d10s --timeout 10s -s loadtest/wrk/queue_group.lua http://127.0.0.1:8082
-- (1 publisher, 4 members). Besides the RESULT line, one line of tallies:
--   QUEUE_GROUP publishers=1 members=4 published=.. publish_errors=0 fetches=..
--     empty_fetches=.. delivered=.. redelivered=0 acks=0 acked=0 duplicates=0
-- duplicates counts messages that reached two members (or one twice): it
-- must be 0. After the run, the broker's gophermq_messages_published_total
-- is gophermq_messages_delivered_total plus gophermq_pending_messages;
-- `delivered` is the part of those deliveries wrk read before it stopped.
-- Env: WRK_SUBJECT (load.group), WRK_GROUP (members), WRK_PUBLISHERS (1),
-- WRK_WAIT_MS (1000), WRK_MAX_MESSAGES (100). wrk's --timeout must be
-- longer than the wait.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local lt = dofile(here .. "common.lua")
lt.name("queue_group")
dofile(here .. "group_common.lua")(lt, {
  name = "queue_group",
  default_subject = "load.group",
  default_group = "members",
  subscribe_fields = "",
  after_fetch = function(seqs) return nil end,
})
