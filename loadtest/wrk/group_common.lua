-- What queue_group.lua and ack_workers.lua share: each wrk thread drives
-- one connection (run wrk with -c equal to -t) and plays one role, a
-- publisher or a member of one queue group, with per-connection state
-- (its subscriber id, the batch it is acking) that wrk's Lua keeps per
-- thread. The first WRK_PUBLISHERS threads publish numbered messages
-- ("<thread>-<n>"); every other thread long-polls with max_messages. Each
-- thread subscribes as a group member on its first request. done() adds, to the
-- RESULT line of common.lua, one line of the threads' tallies and checks
-- that no message reached two members (or one twice).
--
-- Loaded by the two scripts with
--   local group = dofile(<this folder> .. "group_common.lua")(lt, options)
-- where options.name is the scenario's name, options.subscribe_fields more
-- members of the subscribe body, and options.after_fetch(seqs) returns the
-- request to send after a fetch that brought messages (nil: fetch again).

return function(lt, options)
  local subject = lt.env("WRK_SUBJECT", options.default_subject)
  local group_name = lt.env("WRK_GROUP", options.default_group)
  local publishers = lt.env_number("WRK_PUBLISHERS", 1)
  local wait_ms = lt.env_number("WRK_WAIT_MS", 1000)
  local max_messages = lt.env_number("WRK_MAX_MESSAGES", 100)
  local group = {}

  -- setup() runs in wrk's main state once per thread: give each thread its
  -- number, hence its role, before its own state starts.
  local base_setup = setup
  local thread_count = 0
  function setup(thread)
    base_setup(thread)
    thread_count = thread_count + 1
    thread:set("thread_number", thread_count)
  end

  -- From here on, each thread's own state.
  published, publish_errors = 0, 0
  fetches, empty_fetches, delivered, redelivered, acks, acked = 0, 0, 0, 0, 0, 0
  seen = {} -- payload -> times this member had it on a first delivery
  local role, id, last_kind, in_flight = nil, nil, nil, 0
  local next_request -- a worker's request to send after the one out now
  local sent_number = 0

  local function member_body(extra)
    return '{"subject":' .. lt.json_string(subject) .. ',"id":' .. lt.json_string(id) .. extra .. "}"
  end

  -- The request after a fetch or an ack: an ack-mode script's ack, or the
  -- next fetch.
  function group.fetch_request()
    last_kind = "fetch"
    return lt.post("/api/fetch", member_body(string.format(',"wait_ms":%d,"max_messages":%d',
      wait_ms, max_messages)))
  end
  function group.member_request(path, extra)
    last_kind = path
    return lt.post(path, member_body(extra))
  end

  function init(args)
    role = thread_number <= publishers and "publisher" or "member"
    -- wrk calls the first thread's request() once more, before the run, to
    -- look at the request (script_verify_request), and never sends it.
    if thread_number == 1 then in_flight = -1 end
  end

  function request()
    in_flight = in_flight + 1
    if in_flight > 1 then
      error(options.name .. ".lua drives one connection per thread: run wrk with -c equal to -t")
    end
    -- Every thread's first request makes it a member, publishers too (they
    -- never fetch, so they take nothing): the group exists before the
    -- first publish, which would be 404 without it.
    if id == nil then
      last_kind = "subscribe"
      return lt.post("/api/subscribe", '{"subject":' .. lt.json_string(subject) .. ',"group":'
        .. lt.json_string(group_name) .. options.subscribe_fields .. "}")
    end
    if role == "publisher" then
      sent_number = sent_number + 1
      return lt.post("/api/publish", '{"subject":' .. lt.json_string(subject) .. ',"data":"'
        .. thread_number .. "-" .. sent_number .. '"}')
    end
    if next_request ~= nil then
      local request = next_request
      next_request = nil
      return request
    end
    return group.fetch_request()
  end

  local base_response = response
  function response(status, headers, body)
    if base_response then base_response(status, headers, body) end
    in_flight = in_flight - 1
    if last_kind == "subscribe" then
      id = body:match('"id":"([^"]+)"')
      if id == nil then error("subscribe answered " .. body) end
      last_kind = nil
    elseif role == "publisher" then
      if status == 200 then published = published + 1 else publish_errors = publish_errors + 1 end
    elseif status ~= 200 then
      return -- counted by wrk as an error (status above 399)
    elseif last_kind == "fetch" then
      fetches = fetches + 1
      local seqs = {}
      for seq in (body:match('"seqs":%[([%d,]*)%]') or ""):gmatch("%d+") do
        seqs[#seqs + 1] = seq
      end
      local deliveries = {}
      for count in (body:match('"deliveries":%[([%d,]*)%]') or ""):gmatch("%d+") do
        deliveries[#deliveries + 1] = tonumber(count)
      end
      local i = 0
      for payload in (body:match('"data":%[(.-)%]') or ""):gmatch('"([^"]*)"') do
        i = i + 1
        delivered = delivered + 1
        if (deliveries[i] or 1) > 1 then
          redelivered = redelivered + 1
        else
          seen[payload] = (seen[payload] or 0) + 1
        end
      end
      if #seqs == 0 then
        empty_fetches = empty_fetches + 1
      else
        next_request = options.after_fetch(seqs)
      end
    else -- an ack
      acks = acks + 1
      acked = acked + tonumber(body:match('"acked":(%d+)') or 0)
    end
  end

  local base_done = done
  function done(summary, latency, requests)
    base_done(summary, latency, requests)
    local totals = { published = 0, publish_errors = 0, fetches = 0, empty_fetches = 0,
      delivered = 0, redelivered = 0, acks = 0, acked = 0 }
    local members, everywhere, duplicates = 0, {}, 0
    for _, thread in ipairs(lt.threads) do
      for name in pairs(totals) do totals[name] = totals[name] + (thread:get(name) or 0) end
      if thread:get("thread_number") > publishers then members = members + 1 end
      for payload, times in pairs(thread:get("seen") or {}) do
        everywhere[payload] = (everywhere[payload] or 0) + times
        if everywhere[payload] > 1 then duplicates = duplicates + 1 end
      end
    end
    io.write(string.format("%s publishers=%d members=%d published=%d publish_errors=%d "
      .. "fetches=%d empty_fetches=%d delivered=%d redelivered=%d acks=%d acked=%d "
      .. "duplicates=%d\n", options.name:upper(), publishers, members, totals.published,
      totals.publish_errors, totals.fetches, totals.empty_fetches, totals.delivered,
      totals.redelivered, totals.acks, totals.acked, duplicates))
  end

  return group
end
