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
-- KEYS[3..]   method buckets {<prefix>:link}:bucket:<method> (one or more)
-- ARGV[1]     fleet rate per second      ARGV[2]  fleet burst
-- ARGV[3]     user rate per second       ARGV[4]  user burst
-- ARGV[5]     max wait in milliseconds
--
-- Returns, in this order of precedence:
--   {'cached', <stored bytes>}
--   {'user_limited', retry_after_ms}
--   {'rate_limited', retry_after_ms}     nothing consumed anywhere
--   {'admitted', wait_ms, tokens_left}   tokens_left floored, may be negative
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
for i = 3, #KEYS do
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

-- Admit: the call happens `wait` from now in every bucket, so each bucket's next
-- slot is after that instant (keeps every bucket's window bound even when
-- another bucket made the caller wait).
local tokens_left = nil
for i = 3, #KEYS do
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
return {'admitted', math.ceil(wait - 1e-6), math.floor(tokens_left + 1e-9)}
