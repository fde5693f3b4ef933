-- LinkAdmission.keep_place: a place whose turn is now, for a viewer admitted to a
-- turn its replica could not take on time. Coming back within the grace period, it
-- goes first (admission.lua: a place claimed after its turn, which reserves a new
-- turn: the place is dated a second back, so it is never claimed as on time).
--
-- KEYS[1]  the line (sorted set: viewer digest -> slot ms)
-- KEYS[2]  when each place was taken (hash: viewer digest -> ms)
-- ARGV[1]  viewer digest      ARGV[2]  keep the keys at least this long (ms)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
redis.call('ZADD', KEYS[1], string.format('%.17g', now - 1000), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], string.format('%.17g', now))
for i = 1, 2 do
  if redis.call('PTTL', KEYS[i]) < tonumber(ARGV[2]) then
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
  end
end
return 1
