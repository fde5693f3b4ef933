-- LiveCaps.admit: a seat for one live stream, if the user and the IP have room.
--
-- KEYS[1]  the user's seats (sorted set: seat id -> lease expiry ms)
-- KEYS[2]  the IP's seats (the same)
-- ARGV[1]  seat id          ARGV[2]  lease in milliseconds
-- ARGV[3]  streams per user (0: no limit)
-- ARGV[4]  streams per IP (0: no limit)
--
-- Returns {1} with the seat taken, or {0, "user" | "ip"} when that limit is reached.
-- Seats whose lease has passed (their replica stopped renewing them) are dropped first.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local per_user = tonumber(ARGV[3])
local per_ip = tonumber(ARGV[4])
if per_user > 0 and redis.call('ZCARD', KEYS[1]) >= per_user then
  return {0, 'user'}
end
if per_ip > 0 and redis.call('ZCARD', KEYS[2]) >= per_ip then
  return {0, 'ip'}
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('ZADD', KEYS[2], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease)
redis.call('PEXPIRE', KEYS[2], lease)
return {1}
