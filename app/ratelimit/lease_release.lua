-- Lease.release: delete the lease only if ARGV[1] holds it.
-- KEYS[1]  the lease key
-- ARGV[1]  owner id
-- Returns 1 when the lease was ours and is now gone, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
