-- The shared Stripe budget: a calendar per limit (the account's global limit, and one per
-- endpoint) counting the calls reserved in each small time bucket. A call takes the earliest
-- bucket in which both of its limits have room and sleeps until its place in it, so callers
-- queue in arrival order across every process and host, without polling and without a lock.
--
-- Each limit's places lie on an even grid: place n at n / rate seconds (Unix time); a bucket
-- holds the places that fall in it. A call never goes out before its place (nor before its
-- place for the other limit). Of the places whose time has passed, only the latest may still be
-- taken (the call goes out at once: an idle budget adds no wait); the others are lost, not saved
-- up, so an idle spell never turns into a burst and no second sees more calls than the rate.
--
-- KEYS[1] the global calendar, KEYS[2] the endpoint's (hashes: bucket index -> calls reserved;
--         'low': the oldest bucket not yet deleted; 'line': see below).
-- ARGV[1] "reserve" or "peek"
-- reserve: ARGV[2] bucket width (ms), ARGV[3] global rate (calls/s), ARGV[4] the share of the
--   global rate this caller may fill (what it leaves is kept for callers of a higher priority),
--   ARGV[5] the endpoint's rate, ARGV[6] how far ahead the caller may reserve (ms), ARGV[7]
--   "line" if a caller turned away takes a place in the line beyond (below).
--   Returns {1, ms until the call may go out} or {0, ms after which to ask again}.
-- peek: ARGV[2] bucket width, ARGV[3] global rate, ARGV[4] endpoint rate.
--   Returns {free global places, free endpoint places} over the next second, and
--   {ms until the last reserved place, globally and for the endpoint}.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local mode = ARGV[1]
local width = tonumber(ARGV[2])
local first = math.floor(now / width)

-- The index of the first place at or after the start of a bucket.
local function first_place(rate, bucket)
  return math.ceil(rate * width * bucket / 1000)
end

local function capacity(rate, bucket)
  return first_place(rate, bucket + 1) - first_place(rate, bucket)
end

-- Places in the current bucket whose time has passed count as taken, but the latest of them.
local function taken(count, rate, bucket)
  if bucket ~= first then
    return count
  end
  return math.max(count, math.ceil(rate * now / 1000) - first_place(rate, bucket) - 1)
end

local function place_time(rate, bucket, index)
  return (first_place(rate, bucket) + index) * 1000 / rate
end

if mode == 'peek' then
  local global_rate, endpoint_rate = tonumber(ARGV[3]), tonumber(ARGV[4])
  local free, booked = {}, {}
  for k, rate in ipairs({global_rate, endpoint_rate}) do
    local counts = redis.call('HGETALL', KEYS[k])
    local reserved, last = {}, first - 1
    for j = 1, #counts, 2 do
      local bucket = tonumber(counts[j])
      if bucket then
        reserved[bucket] = tonumber(counts[j + 1])
        if bucket > last and reserved[bucket] > 0 then
          last = bucket
        end
      end
    end
    local places = 0
    for bucket = first, first + math.floor(1000 / width) - 1 do
      local cap = capacity(rate, bucket)
      places = places + math.max(0, cap - taken(reserved[bucket] or 0, rate, bucket))
    end
    free[k] = places
    booked[k] = math.max(0, (last + 1) * width - now)
  end
  return {free[1], free[2], booked[1], booked[2]}
end

local global_rate, share = tonumber(ARGV[3]), tonumber(ARGV[4])
local endpoint_rate, ahead, queues = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7] == 'line'
local last = math.floor((now + ahead) / width)

local buckets = {}
for bucket = first, last do
  buckets[#buckets + 1] = bucket
end
local globals = redis.call('HMGET', KEYS[1], unpack(buckets))
local endpoints = redis.call('HMGET', KEYS[2], unpack(buckets))

-- Buckets older than the current one are deleted a few at a time by the callers that write.
local function sweep(key)
  local low = tonumber(redis.call('HGET', key, 'low')) or first
  local stop = math.min(first - 1, low + 63)
  if stop >= low then
    local old = {}
    for bucket = low, stop do
      old[#old + 1] = bucket
    end
    redis.call('HDEL', key, unpack(old))
  end
  redis.call('HSET', key, 'low', math.max(low, math.min(first, stop + 1)))
end

for index, bucket in ipairs(buckets) do
  local global_cap = capacity(global_rate, bucket)
  local endpoint_cap = capacity(endpoint_rate, bucket)
  local global_used = taken(tonumber(globals[index]) or 0, global_rate, bucket)
  local endpoint_used = taken(tonumber(endpoints[index]) or 0, endpoint_rate, bucket)
  local allowed = math.min(global_cap, capacity(global_rate * share, bucket))
  if global_used < allowed and endpoint_used < endpoint_cap then
    redis.call('HSET', KEYS[1], bucket, global_used + 1)
    redis.call('HSET', KEYS[2], bucket, endpoint_used + 1)
    local keep = ahead + 60000
    for k = 1, 2 do
      sweep(KEYS[k])
      redis.call('PEXPIRE', KEYS[k], keep)
    end
    local at = math.max(
      place_time(global_rate, bucket, global_used), place_time(endpoint_rate, bucket, endpoint_used)
    )
    return {1, math.max(0, math.ceil(at - now))}
  end
end

if not queues then
  return {0, (last + 1) * width - now}
end

-- Nothing free within the caller's reach. 'line' is the end of a virtual queue beyond it: each
-- caller turned away takes the next place in it (without holding anything) and is told to come
-- back when that place is within its reach again, so those who come back arrive spread out.
local reach = (last + 1) * width
local interval = 1000 / math.min(endpoint_rate, global_rate * share)
local line = tonumber(redis.call('HGET', KEYS[2], 'line')) or 0
line = math.max(line, reach) + interval
redis.call('HSET', KEYS[2], 'line', line)
redis.call('PEXPIRE', KEYS[2], ahead + 60000)
return {0, math.ceil(line - reach)}
