-- LinkAdmission.admit: the one round trip a link request makes before the upstream.
--
-- Dedupe, the per-user limit, viewing sessions and the fleet's line for the link
-- budget. The budget is a schedule of call instants ("slots"): GCRA cells, each key
-- holding a theoretical arrival time (TAT, Redis milliseconds since the epoch, as
-- text); a missing key or a TAT in the past is a full bucket. A request is given
-- the next free slot, in arrival order. A slot within the hold bound is kept by
-- the request itself (the replica waits for it); a later one becomes the viewer's
-- PLACE in the line (sorted set: viewer -> slot), kept for the viewer's return and
-- given up GRACE after its slot.
--
-- Two lanes share the budget: the main lane (newcomers) and a small renewal lane
-- (viewers whose current link expires soon, and places claimed after their slot).
-- Their rates add up to the budget's, so no second ever sees more calls than it.
--
-- KEYS[1]     dedupe key   {<prefix>:link}:dedupe:<digest>
-- KEYS[2]     user bucket  {<prefix>:link}:user:<digest>
-- KEYS[3]     the user's viewing sessions (sorted set: id -> expiry ms)
-- KEYS[4]     what each of those sessions is (hash: id -> JSON)
-- KEYS[5]     the line (sorted set: viewer digest -> slot ms)
-- KEYS[6]     when each place was taken (hash: viewer digest -> ms)
-- KEYS[7]     the viewer's current link: its expiry (ms), while it lasts
-- KEYS[8..7+n]     main lane cells, one per method  {<prefix>:link}:bucket:<method>
-- KEYS[8+n..7+2n]  renewal lane cells, one per method {<prefix>:link}:renewal:<method>
-- ARGV[1]     main lane rate per second  ARGV[2]  fleet burst
-- ARGV[3]     user rate per second       ARGV[4]  user burst
-- ARGV[5]     hold bound in milliseconds (a slot this close is waited for)
-- ARGV[6]     session id asked for ('' when sessions are off)
-- ARGV[7]     most sessions per user     ARGV[8]  session TTL in milliseconds
-- ARGV[9]     'refuse' or 'evict_oldest' ARGV[10] the session's JSON (eventId, streamName)
-- ARGV[11]    viewer digest (member of the line)
-- ARGV[12]    grace in milliseconds      ARGV[13] renewal lane rate per second (0: none)
-- ARGV[14]    renewal lead in milliseconds
-- ARGV[15]    a fresh session id, used when the one asked for is not this viewer's
-- ARGV[16]    '1' when ARGV[6] is a session this request opened itself (a play
--             request's next attempt may move it to another stream)
-- ARGV[17]    how late a place may be claimed and keep its slot (milliseconds)
--
-- Returns, in this order of precedence (L = places in the line, G = places given up
-- by this call):
--   {'cached', <stored bytes>}
--   {'user_limited', retry_after_ms}     nothing consumed anywhere
--   {'too_many_streams', retry_after_ms} nothing consumed anywhere
--   {'deferred', retry_after_ms, L, G}   a renewal that can wait: no place taken
--   {'queued', retry_after_ms, eta_ms, position, L, G}
--                                        a place (new or kept); come back in retry
--   {'admitted', wait_ms, tokens_left, L, G, in_line_ms, session id, evicted id, ...}
--                                        tokens_left floored, may be negative;
--                                        in_line_ms: since its place was taken (0: none)
local cached = redis.call('GET', KEYS[1])
if cached then
  return {'cached', cached}
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000

local main_rate = tonumber(ARGV[1])
local interval = 1000 / main_rate
local burst = tonumber(ARGV[2])
local user_interval = 1000 / tonumber(ARGV[3])
local user_burst = tonumber(ARGV[4])
local hold = tonumber(ARGV[5])
local viewer = ARGV[11]
local grace = tonumber(ARGV[12])
local renewal_rate = tonumber(ARGV[13])
local lead = tonumber(ARGV[14])
local late = tonumber(ARGV[17])
local methods = (#KEYS - 7) / 2

-- Milliseconds the cell's TAT lies ahead of now (0 for a full bucket).
local function debt(key)
  local stored = redis.call('GET', key)
  if not stored then
    return 0
  end
  local ahead = tonumber(stored) - now
  if ahead < 0 then
    return 0
  end
  return ahead
end

local function store(key, ahead)
  redis.call('SET', key, string.format('%.17g', now + ahead),
    'PX', string.format('%d', math.ceil(ahead) + 1))
end

-- Per-user limit: no reservations, the next token must exist now.
local user_debt = debt(KEYS[2])
local user_wait = user_debt - (user_burst - 1) * user_interval
if user_wait > 1e-6 then
  return {'user_limited', math.ceil(user_wait)}
end

-- Places not claimed within the grace period are given up.
local expired = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf',
  '(' .. string.format('%.17g', now - grace))
local given_up = #expired
if given_up > 0 then
  redis.call('ZREM', KEYS[5], unpack(expired))
  redis.call('HDEL', KEYS[6], unpack(expired))
end

-- Viewing sessions: a session belongs to one user, event and stream. The id asked
-- for is continued only when it is this user's, for the same event and stream
-- (or this request's own, moving to its next stream); otherwise it is a new
-- session, under a fresh id, and counted.
local session = ARGV[6]
local continued = false
local evict = {}
local most = tonumber(ARGV[7])
if session ~= '' then
  local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
  if #gone > 0 then
    redis.call('ZREM', KEYS[3], unpack(gone))
    redis.call('HDEL', KEYS[4], unpack(gone))
  end
  if redis.call('ZSCORE', KEYS[3], session) then
    if ARGV[16] == '1' then
      continued = true
    else
      local about = redis.call('HGET', KEYS[4], session)
      if about then
        local was = cjson.decode(about)
        local asked = cjson.decode(ARGV[10])
        continued = was.eventId == asked.eventId and was.streamName == asked.streamName
      end
    end
  end
  if not continued then
    session = ARGV[15]
    local live = redis.call('ZCARD', KEYS[3])
    if live >= most then
      if ARGV[9] == 'refuse' then
        local oldest = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
        return {'too_many_streams', math.max(1, math.ceil(tonumber(oldest[2]) - now))}
      end
      evict = redis.call('ZRANGE', KEYS[3], 0, live - most)
    end
  end
end

-- The earliest slot (ms from now) of a lane whose cells start at KEYS[first]. The
-- main lane holds the burst; the renewal lane none (one call at a time, on top).
local function lane_burst(first)
  if first == 8 then
    return burst
  end
  return 1
end

local function next_slot(first, lane_interval)
  local wait = 0
  for i = first, first + methods - 1 do
    local w = debt(KEYS[i]) - (lane_burst(first) - 1) * lane_interval
    if w > wait then
      wait = w
    end
  end
  return wait
end

-- Take the slot `ahead` ms from now in every cell of a lane: each cell's next
-- slot is after that instant. Returns the smallest token count left.
local function reserve(first, lane_interval, ahead)
  local tokens_left = nil
  for i = first, first + methods - 1 do
    local d = debt(KEYS[i])
    if d < ahead then
      d = ahead
    end
    d = d + lane_interval
    store(KEYS[i], d)
    local tokens = lane_burst(first) - d / lane_interval
    if tokens_left == nil or tokens < tokens_left then
      tokens_left = tokens
    end
  end
  return tokens_left
end

local renewal_first = 8 + methods
local renewal_interval = 0
if renewal_rate > 0 then
  renewal_interval = 1000 / renewal_rate
end

-- The slot of the cheaper lane, for a request that may use the renewal lane.
local function priority_slot()
  local main = next_slot(8, interval)
  if renewal_rate > 0 then
    local renewal = next_slot(renewal_first, renewal_interval)
    if renewal < main then
      return renewal, renewal_first, renewal_interval
    end
  end
  return main, 8, interval
end

local function line_length()
  return redis.call('ZCARD', KEYS[5])
end

-- A place in line at `at` ms from now, kept for the viewer (who joined the line at
-- `since`) to come back for within the grace period; the 'queued' reply.
local function queued(at, since)
  redis.call('ZADD', KEYS[5], string.format('%.17g', now + at), viewer)
  redis.call('HSET', KEYS[6], viewer, since)
  local last = redis.call('ZRANGE', KEYS[5], -1, -1, 'WITHSCORES')
  local keep = math.ceil(tonumber(last[2]) - now + grace) + 1000
  redis.call('PEXPIRE', KEYS[5], keep)
  redis.call('PEXPIRE', KEYS[6], keep)
  return {'queued', math.ceil(at - hold), math.ceil(at),
    math.floor(at / interval + 0.5) + 1, line_length(), given_up}
end

local slot = nil      -- ms from now
local in_line = 0
local tokens_left = nil
local place = redis.call('ZSCORE', KEYS[5], viewer)
if place then
  slot = tonumber(place) - now
  if slot > hold then
    local eta = math.ceil(slot)
    return {'queued', math.ceil(slot - hold), eta, math.floor(slot / interval + 0.5) + 1,
      line_length(), given_up}
  end
  redis.call('ZREM', KEYS[5], viewer)
  local since = redis.call('HGET', KEYS[6], viewer)
  redis.call('HDEL', KEYS[6], viewer)
  if since then
    in_line = now - tonumber(since)
  end
  if slot < -late then
    -- Claimed after its slot went by (within the grace period): that slot is gone,
    -- the viewer is served first from whichever lane is free sooner.
    local first, lane_interval
    slot, first, lane_interval = priority_slot()
    tokens_left = reserve(first, lane_interval, slot)
    if slot > hold then
      -- First in line, but held no longer than the hold bound: the place, at that
      -- slot, is the viewer's to come back for.
      return queued(slot, since or string.format('%.17g', now))
    end
  elseif slot < 0 then
    slot = 0
  end
else
  local first, lane_interval = 8, interval
  slot = next_slot(8, interval)
  local deadline = redis.call('GET', KEYS[7])
  if deadline and slot > math.min(hold, 1000) then
    -- A renewal, while a line is waiting: its current link expires at `deadline`.
    -- One that can come back after the line ahead of it and still have `lead` to
    -- spare does so, so that it delays no newcomer; one that cannot, and would
    -- wait past the hold bound, takes the sooner of the two lanes.
    local left = tonumber(deadline) - now
    if slot + lead <= left then
      return {'deferred', math.max(1000, math.ceil(slot - hold)), line_length(), given_up}
    end
    if slot > hold then
      slot, first, lane_interval = priority_slot()
    end
  end
  tokens_left = reserve(first, lane_interval, slot)
  if slot > hold then
    return queued(slot, string.format('%.17g', now))
  end
end

-- Admitted: open (or continue) the session, charge the user.
local evicted = {}
if session ~= '' then
  if #evict > 0 then
    redis.call('ZREM', KEYS[3], unpack(evict))
    redis.call('HDEL', KEYS[4], unpack(evict))
    evicted = evict
  end
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[8]), session)
  redis.call('HSET', KEYS[4], session, ARGV[10])
  local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
  local keep = math.ceil(tonumber(last[2]) - now) + 1
  redis.call('PEXPIRE', KEYS[3], keep)
  redis.call('PEXPIRE', KEYS[4], keep)
end
store(KEYS[2], user_debt + user_interval)
if tokens_left == nil then
  tokens_left = burst - (debt(KEYS[8]) / interval)
end
local reply = {'admitted', math.ceil(slot - 1e-6), math.floor(tokens_left + 1e-9),
  line_length(), given_up, math.floor(in_line), session}
for _, id in ipairs(evicted) do
  reply[#reply + 1] = id
end
return reply
