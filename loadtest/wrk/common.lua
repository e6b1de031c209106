-- Shared by every wrk script in this folder: settings from the environment,
-- request building, and the report printed by done().
--
-- A script loads it with
--   local lt = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
-- so it is found next to the script whatever the working directory is.
--
-- Environment (all optional unless a script says otherwise):
--   WRK_SUBJECT         subject to publish to / subscribe to / fetch from
--   WRK_SUBSCRIBER_ID   subscriber id for fetch.lua and mix.lua (from /api/subscribe)
--   WRK_PAYLOAD_BYTES   size of the published "data" string (default 16)
--   WRK_DEPTH           requests per pipelined batch (publish_pipelined.lua, default 16)
--   WRK_SCENARIO        name printed in the RESULT line (default: the script's own)
--   WRK_STATUS_DETAIL   1 = also count every response by status and print the counts.
--                       Off by default: defining response() makes wrk hand every
--                       header and body to Lua, which costs wrk (not the server)
--                       CPU and lowers the req/s it can drive.

local lt = {}

-- os.getenv, with "" treated as unset.
function lt.env(name, default)
  local value = os.getenv(name)
  if value == nil or value == "" then return default end
  return value
end

function lt.env_number(name, default)
  local text = lt.env(name, nil)
  if text == nil then return default end
  local value = tonumber(text)
  if value == nil then error(name .. " must be a number, got '" .. text .. "'") end
  return value
end

-- The value as a JSON string literal (quotes, backslashes and control
-- characters escaped), so ids and subjects from the environment are safe.
function lt.json_string(value)
  local escaped = value:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    return string.format("\\u%04x", c:byte())
  end)
  return '"' .. escaped .. '"'
end

lt.json_headers = { ["Content-Type"] = "application/json" }

-- The publish body every publishing script sends: {"subject":S,"data":"xxxx..."}.
function lt.publish_body(subject)
  local size = lt.env_number("WRK_PAYLOAD_BYTES", 16)
  return '{"subject":' .. lt.json_string(subject) .. ',"data":"' .. string.rep("x", size) .. '"}'
end

function lt.fetch_body(subject, id)
  return '{"subject":' .. lt.json_string(subject) .. ',"id":' .. lt.json_string(id) .. '}'
end

-- One complete POST request as wrk would send it (Host and Content-Length
-- are added by wrk.format).
function lt.post(path, body)
  return wrk.format("POST", path, lt.json_headers, body)
end

-- A static request: set once, wrk builds it once and resends the same bytes,
-- the cheapest way for wrk to drive load (no Lua per request).
function lt.static_post(path, body)
  wrk.method = "POST"
  wrk.path = path
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end

function lt.require_env(name, script)
  local value = lt.env(name, nil)
  if value == nil then
    error(script .. " needs " .. name .. " (see loadtest/README.md)")
  end
  return value
end

---------------------------------------------------------------------------
-- Reporting. setup() and done() run in wrk's main Lua state; init() and
-- response() in each thread's own state, so per-thread status counts are
-- collected through the thread objects setup() keeps.

local threads = {}
lt.threads = threads -- for a script's own done() (group_common.lua)

function setup(thread)
  table.insert(threads, thread)
end

if lt.env("WRK_STATUS_DETAIL", "0") == "1" then
  statuses = {}
  function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
  end
end

-- The scenario name for the RESULT line; scripts set it with lt.name(...).
local scenario = "wrk"
function lt.name(default)
  scenario = lt.env("WRK_SCENARIO", default)
end

-- Latency percentiles (p in 0..100), in microseconds.
--
-- wrk's latency:percentile() is wrong for pipelined runs: wrk records one
-- sample per batch, and its coordinated-omission correction (stats_correct)
-- then adds samples below the histogram's minimum. percentile() ranks over
-- all samples but only walks [min, max], so p90 and above come out as 0.
-- The fix: find the share of samples that does lie in [min, max] (the
-- highest p for which percentile() still answers), and ask for p scaled by
-- it, which ranks within those samples only. For an ordinary run nothing is
-- missing, the share is 1 and the answers are exactly wrk's.
--
-- (Walking the buckets with latency(i) would be simpler, but each call scans
-- the histogram from its start: quadratic, minutes for a wide histogram.)
local function percentiles(latency, wanted)
  local share = 1.0
  if latency:percentile(100) == 0 then
    local answers, empty = 0.0, 100.0 -- percentile(answers) > 0, percentile(empty) == 0
    for _ = 1, 40 do
      local mid = (answers + empty) / 2
      if latency:percentile(mid) == 0 then empty = mid else answers = mid end
    end
    share = answers / 100
  end
  local values = {}
  for i, p in ipairs(wanted) do
    values[i] = share > 0 and latency:percentile(p * share) or 0
  end
  return values
end

-- Prints the run's figures as one machine-readable line:
--   RESULT scenario=publish requests=N duration_s=S rps=R p50_us=.. p90_us=..
--          p99_us=.. p999_us=.. max_us=.. status_errors=N socket_errors=N
--          connect_errors=N read_errors=N write_errors=N timeouts=N
-- status_errors is wrk's own count of responses with a status above 399
-- (its "Non-2xx or 3xx responses"); socket_errors adds up the four after it.
function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors
  local socket_errors = errors.connect + errors.read + errors.write + errors.timeout
  local p = percentiles(latency, { 50, 90, 99, 99.9 })
  io.write(string.format(
    "RESULT scenario=%s requests=%d duration_s=%.3f rps=%.1f p50_us=%d p90_us=%d "
      .. "p99_us=%d p999_us=%d max_us=%d status_errors=%d socket_errors=%d "
      .. "connect_errors=%d read_errors=%d write_errors=%d timeouts=%d\n",
    scenario, summary.requests, seconds, summary.requests / seconds,
    p[1], p[2], p[3], p[4], latency.max, errors.status, socket_errors,
    errors.connect, errors.read, errors.write, errors.timeout))

  -- With WRK_STATUS_DETAIL=1: one line per status seen, over all threads.
  local totals = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    if counts then
      for status, count in pairs(counts) do
        totals[status] = (totals[status] or 0) + count
      end
    end
  end
  local seen = {}
  for status in pairs(totals) do table.insert(seen, status) end
  table.sort(seen)
  for _, status in ipairs(seen) do
    local note = (status >= 200 and status < 300) and "" or " (not 2xx)"
    io.write(string.format("STATUS %d count=%d%s\n", status, totals[status], note))
  end
end

return lt
