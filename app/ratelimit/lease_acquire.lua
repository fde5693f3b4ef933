-- Lease.acquire_or_renew: take the lease if free, extend it if we hold it.
-- KEYS[1]  the lease key, {<prefix>:lease}:<name>
-- ARGV[1]  owner id
-- ARGV[2]  ttl in whole milliseconds
-- Returns 1 when ARGV[1] holds the lease afterwards, else 0.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
