-- UpstreamGate: let one caller through per interval, fleet-wide.
-- KEYS[1]  the gate key, {<prefix>:gate}:<method>
-- KEYS[2]  the witness key, {<prefix>:gate}:witness:<method> (no expiry)
-- ARGV[1]  token stored while the gate is shut (the passing replica's id)
-- ARGV[2]  interval in whole milliseconds
-- ARGV[3]  '1': the caller holds a list this method fetched, so the fleet has made this
--          call before; '0': it does not; '': no witness (the gate key alone)
-- Returns {1, 0} when the caller may pass, else {0, ms until the gate opens}.
-- Time comes from the key's PX expiry, i.e. Redis's clock.
--
-- A store that restarts empty forgets the gate, so the last call may have been a
-- moment ago. Whoever passes leaves a witness; a caller that knows the call was made
-- before and finds no witness shuts the gate for one interval instead of passing.
if ARGV[3] == '1' and redis.call('SET', KEYS[2], '1', 'NX') then
  redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
elseif redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if ARGV[3] ~= '' then
    redis.call('SET', KEYS[2], '1')
  end
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
