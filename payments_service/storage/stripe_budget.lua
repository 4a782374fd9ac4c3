-- The shared Stripe budget: a calendar per limit counting the calls reserved in each small time
-- bucket. A call takes the earliest bucket in which all of its limits have room and sleeps until
-- its place in it, so callers queue in arrival order across every process and host, without
-- polling and without a lock.
--
-- Each limit's places lie on an even grid: place n at n / rate seconds (Unix time); a bucket
-- holds the places that fall in it, and records the index of the next one to hand out. A call
-- never goes out before its place (nor before its place for its other limit). Of the places whose
-- time has passed, only the latest may still be taken (the call goes out at once: an idle budget
-- adds no wait); the others are lost, not saved up, so an idle spell never turns into a burst.
--
-- The account's global limit is two calendars (lanes): one every call may use, and a reserve
-- only urgent calls may use besides, so a line of checkouts never holds up a refund.
--
-- KEYS[1] the shared lane, KEYS[2] the endpoint's calendar, KEYS[3] the reserve lane (hashes:
--         bucket index -> next place; 'low': the oldest bucket not yet deleted; 'line': below).
-- ARGV[1] "reserve" or "peek", ARGV[2] bucket width (ms), ARGV[3] the shared lane's rate
--         (calls/s), ARGV[4] the endpoint's rate, ARGV[5] the reserve lane's rate.
-- reserve: ARGV[6] how far ahead the caller may reserve (ms), ARGV[7] "urgent" if it may use
--   the reserve lane, ARGV[8] "line" if, turned away, it takes a place in the line beyond.
--   Returns {1, ms until the call may go out} or {0, ms after which to ask again}.
-- peek: returns, over the next second, the free places of the global limit (both lanes) and of
--   the endpoint, then how many ms ahead the last reserved place lies, globally and for the endpoint.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local mode = ARGV[1]
local width = tonumber(ARGV[2])
local rates = {tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])}
local first = math.floor(now / width)

-- The index of the first place at or after the start of a bucket.
local function first_place(rate, bucket)
  return math.ceil(rate * width * bucket / 1000)
end

local function capacity(rate, bucket)
  return first_place(rate, bucket + 1) - first_place(rate, bucket)
end

-- The next place a bucket can hand out: in the current bucket, not one whose time has passed
-- but the latest of those.
local function next_place(stored, rate, bucket)
  if bucket ~= first then
    return stored
  end
  return math.max(stored, math.ceil(rate * now / 1000) - first_place(rate, bucket) - 1)
end

local function place_time(rate, bucket, index)
  return (first_place(rate, bucket) + index) * 1000 / rate
end

if mode == 'peek' then
  local free, booked = {0, 0, 0}, {0, 0, 0}
  for k = 1, 3 do
    local stored = redis.call('HGETALL', KEYS[k])
    local next_of, last = {}, first - 1
    for j = 1, #stored, 2 do
      local bucket = tonumber(stored[j])
      if bucket then
        next_of[bucket] = tonumber(stored[j + 1])
        last = math.max(last, bucket)
      end
    end
    for bucket = first, first + math.floor(1000 / width) - 1 do
      local used = next_place(next_of[bucket] or 0, rates[k], bucket)
      free[k] = free[k] + math.max(0, capacity(rates[k], bucket) - used)
    end
    booked[k] = math.max(0, (last + 1) * width - now)
  end
  return {free[1] + free[3], free[2], math.max(booked[1], booked[3]), booked[2]}
end

local ahead, urgent, queues = tonumber(ARGV[6]), ARGV[7] == 'urgent', ARGV[8] == 'line'
local last = math.floor((now + ahead) / width)
local lanes = urgent and {1, 3} or {1}

-- Buckets older than the current one are deleted by the callers that write, a second's worth
-- at a time.
local function sweep(key)
  local low = tonumber(redis.call('HGET', key, 'low')) or first
  if first - low < 10 then
    return
  end
  local old = {}
  for bucket = low, math.min(first - 1, low + 99) do
    old[#old + 1] = bucket
  end
  redis.call('HDEL', key, unpack(old))
  redis.call('HSET', key, 'low', low + #old)
end

-- Read the calendars a few buckets at a time: most calls find room in the first one.
local from, chunk = first, 4
while from <= last do
  local buckets = {}
  for bucket = from, math.min(last, from + chunk - 1) do
    buckets[#buckets + 1] = bucket
  end
  local stored = {}
  for _, k in ipairs({2, unpack(lanes)}) do
    stored[k] = redis.call('HMGET', KEYS[k], unpack(buckets))
  end
  for index, bucket in ipairs(buckets) do
    local endpoint_place = next_place(tonumber(stored[2][index]) or 0, rates[2], bucket)
    if endpoint_place < capacity(rates[2], bucket) then
      -- The lane whose next place comes first.
      local lane, lane_place, at
      for _, k in ipairs(lanes) do
        local place = next_place(tonumber(stored[k][index]) or 0, rates[k], bucket)
        if place < capacity(rates[k], bucket) then
          local time = place_time(rates[k], bucket, place)
          if at == nil or time < at then
            lane, lane_place, at = k, place, time
          end
        end
      end
      if lane then
        redis.call('HSET', KEYS[lane], bucket, lane_place + 1)
        redis.call('HSET', KEYS[2], bucket, endpoint_place + 1)
        for _, k in ipairs({lane, 2}) do
          sweep(KEYS[k])
          redis.call('PEXPIRE', KEYS[k], ahead + 60000)
        end
        at = math.max(at, place_time(rates[2], bucket, endpoint_place))
        -- Whole milliseconds, rounded: a call may leave up to half a millisecond early.
        return {1, math.max(0, math.floor(at - now + 0.5))}
      end
    end
  end
  from = from + #buckets
  chunk = chunk * 4
end

if not queues then
  return {0, (last + 1) * width - now}
end

-- Nothing free within the caller's reach. 'line' is the end of a virtual queue beyond it: each
-- caller turned away takes the next place in it (without holding anything) and is told to come
-- back when that place is within its reach again, so those who come back arrive spread out.
local reach = (last + 1) * width
local interval = 1000 / math.min(rates[2], rates[1])
local line = tonumber(redis.call('HGET', KEYS[2], 'line')) or 0
line = math.max(line, reach) + interval
redis.call('HSET', KEYS[2], 'line', line)
redis.call('PEXPIRE', KEYS[2], ahead + 60000)
return {0, math.ceil(line - reach)}
