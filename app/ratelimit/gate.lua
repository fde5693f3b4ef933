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
-- The witness holds the replication id of the master that saw the last pass. Two
-- ways the store can forget a gate that was shut a moment ago, and what catches each:
--   * it restarted empty: no witness, yet the caller knows the call was made before;
--   * a replica was promoted (Sentinel or Cluster failover) that had not yet received
--     the last pass (replication is asynchronous): the witness came over from the old
--     master and names its replication id, while a promoted replica always starts a
--     new one.
-- Either way the gate is shut for one interval instead of letting the caller through,
-- as the last call may have been a moment ago. (A store that cannot report its
-- replication id, such as the embedded one, reports ''.)
local ok, info = pcall(redis.call, 'INFO', 'replication')
local replid = ''
if ok and type(info) == 'string' then
  replid = string.match(info, 'master_replid:(%w+)') or ''
end

local shut = function()
  redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
end

local passed = false
if ARGV[3] == '' then
  passed = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
else
  local witness = redis.call('GET', KEYS[2])
  if (witness == false and ARGV[3] == '1') or (witness and witness ~= replid) then
    -- restarted empty, or another master than the one that saw the last pass
    redis.call('SET', KEYS[2], replid)
    shut()
  elseif redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    if witness == false then
      redis.call('SET', KEYS[2], replid)
    end
    passed = true
  end
end
if passed then
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
