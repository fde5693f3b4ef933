-- FailedAttempts.record: count one failed attempt in a fixed window.
-- KEYS[1]  the client's counter, {<prefix>:failures}:<kind>:<client>
-- ARGV[1]  the window in whole milliseconds
-- Returns {count, ms until the window ends}.
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then  -- a counter left without an expiry: give it one
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {count, left}
