-- UpstreamGate: let one caller through per interval, fleet-wide.
-- KEYS[1]  the gate key, {<prefix>:gate}:<method>
-- ARGV[1]  token stored while the gate is shut (the passing replica's id)
-- ARGV[2]  interval in whole milliseconds
-- Returns {1, 0} when the caller may pass, else {0, ms until the gate opens}.
-- Time comes from the key's PX expiry, i.e. Redis's clock.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, 0}
end
local pttl = redis.call('PTTL', KEYS[1])
if pttl < 0 then
  -- Someone stored the key without an expiry: shut the gate for one interval.
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  pttl = tonumber(ARGV[2])
end
if pttl < 1 then
  pttl = 1
end
return {0, pttl}
