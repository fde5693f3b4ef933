-- LinkAdmission.admit: the one round trip a link request makes before the upstream.
--
-- Buckets are GCRA cells: each key holds a theoretical arrival time (TAT, Redis
-- milliseconds since the epoch, as text). A missing key or a TAT in the past is a
-- full bucket. With interval = 1000 / rate, a bucket holds
-- tokens = burst - max(0, TAT - now) / interval, which goes negative when callers
-- reserve tokens that only exist in the future.
--
-- KEYS[1]     dedupe key   {<prefix>:link}:dedupe:<digest>
-- KEYS[2]     user bucket  {<prefix>:link}:user:<digest>
-- KEYS[3]     the user's viewing sessions (sorted set: id -> expiry ms)
--             {<prefix>:link}:sessions:<digest>
-- KEYS[4]     what each of those sessions is (hash: id -> JSON)
--             {<prefix>:link}:sessions-meta:<digest>
-- KEYS[5..]   method buckets {<prefix>:link}:bucket:<method> (one or more)
-- ARGV[1]     fleet rate per second      ARGV[2]  fleet burst
-- ARGV[3]     user rate per second       ARGV[4]  user burst
-- ARGV[5]     max wait in milliseconds
-- ARGV[6]     new session id ('' when sessions are off)
-- ARGV[7]     most sessions per user     ARGV[8]  session TTL in milliseconds
-- ARGV[9]     'refuse' or 'evict_oldest' ARGV[10] the new session's JSON
--
-- Returns, in this order of precedence:
--   {'cached', <stored bytes>}
--   {'user_limited', retry_after_ms}
--   {'rate_limited', retry_after_ms}     nothing consumed anywhere
--   {'too_many_streams', retry_after_ms} nothing consumed anywhere
--   {'admitted', wait_ms, tokens_left, evicted id, ...}
--                                        tokens_left floored, may be negative
local cached = redis.call('GET', KEYS[1])
if cached then
  return {'cached', cached}
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000

local interval = 1000 / tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local user_interval = 1000 / tonumber(ARGV[3])
local user_burst = tonumber(ARGV[4])
local max_wait = tonumber(ARGV[5])

-- Milliseconds the bucket's TAT lies ahead of now (0 for a full bucket).
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

-- Fleet budget: the call may be scheduled up to max_wait ahead in every bucket.
local debts = {}
local wait = 0
for i = 5, #KEYS do
  local d = debt(KEYS[i])
  debts[i] = d
  local w = d - (burst - 1) * interval
  if w > wait then
    wait = w
  end
end
if wait > max_wait + 1e-6 then
  return {'rate_limited', math.max(1, math.ceil(wait - max_wait))}
end

-- Viewing sessions: at most ARGV[7] live ones per user (expired ones are dropped);
-- past the limit, refuse or end the sessions that were confirmed alive longest ago.
local session = ARGV[6]
local evicted = {}
if session ~= '' then
  local most = tonumber(ARGV[7])
  local ttl = tonumber(ARGV[8])
  local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
  if #gone > 0 then
    redis.call('ZREM', KEYS[3], unpack(gone))
    redis.call('HDEL', KEYS[4], unpack(gone))
  end
  local live = redis.call('ZCARD', KEYS[3])
  -- A session already open under this id (a play request's second attempt) is
  -- renewed, not counted again.
  if redis.call('ZSCORE', KEYS[3], session) then
    live = 0
  end
  if live >= most then
    if ARGV[9] == 'refuse' then
      local oldest = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
      return {'too_many_streams', math.max(1, math.ceil(tonumber(oldest[2]) - now))}
    end
    evicted = redis.call('ZRANGE', KEYS[3], 0, live - most)
    redis.call('ZREM', KEYS[3], unpack(evicted))
    redis.call('HDEL', KEYS[4], unpack(evicted))
  end
  redis.call('ZADD', KEYS[3], now + ttl, session)
  redis.call('HSET', KEYS[4], session, ARGV[10])
  local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
  local keep = math.ceil(tonumber(last[2]) - now) + 1
  redis.call('PEXPIRE', KEYS[3], keep)
  redis.call('PEXPIRE', KEYS[4], keep)
end

-- Admit: the call happens `wait` from now in every bucket, so each bucket's next
-- slot is after that instant (keeps every bucket's window bound even when
-- another bucket made the caller wait).
local tokens_left = nil
for i = 5, #KEYS do
  local ahead = debts[i]
  if ahead < wait then
    ahead = wait
  end
  ahead = ahead + interval
  store(KEYS[i], ahead)
  local tokens = burst - ahead / interval
  if tokens_left == nil or tokens < tokens_left then
    tokens_left = tokens
  end
end
store(KEYS[2], user_debt + user_interval)
local reply = {'admitted', math.ceil(wait - 1e-6), math.floor(tokens_left + 1e-9)}
for _, id in ipairs(evicted) do
  reply[#reply + 1] = id
end
return reply
