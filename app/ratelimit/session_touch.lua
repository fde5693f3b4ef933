-- ViewingSessions.touch: a heartbeat keeps a live session alive for another TTL.
--
-- KEYS[1]  the user's sessions (sorted set: id -> expiry ms)
-- KEYS[2]  what each session is (hash: id -> JSON)
-- ARGV[1]  session id      ARGV[2]  TTL in milliseconds
--
-- Returns the new expiry (Redis milliseconds), or 0 when the session is unknown,
-- ended or already expired (it is not brought back).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not expiry or tonumber(expiry) <= now then
  return 0
end
local until_ms = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], 'XX', until_ms, ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
local keep = math.ceil(tonumber(last[2]) - now) + 1
redis.call('PEXPIRE', KEYS[1], keep)
redis.call('PEXPIRE', KEYS[2], keep)
return math.floor(until_ms)
