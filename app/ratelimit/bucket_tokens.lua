-- LinkAdmission.tokens_left: read one method bucket without changing it.
-- KEYS[1]  {<prefix>:link}:bucket:<method>
-- ARGV[1]  rate per second     ARGV[2]  burst
-- Returns the token count as text (may be negative: reserved future tokens).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local stored = redis.call('GET', KEYS[1])
local ahead = 0
if stored then
  ahead = tonumber(stored) - now
  if ahead < 0 then
    ahead = 0
  end
end
local tokens = tonumber(ARGV[2]) - ahead * tonumber(ARGV[1]) / 1000
return string.format('%.17g', tokens)
