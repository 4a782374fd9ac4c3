-- The one atomic write for a payment (see compare_and_write.py).
-- KEYS[1] is the payment, as its writer read it: ARGV[1] its version ('' = there was none) and
-- ARGV[2] its cancel mark ('true'/'false'; the only change that keeps the version). ARGV[3] is
-- the new payment ('' = leave it). Each further key comes with one operation, written as
-- name, argument count, arguments:
--   mark value ttl    the key must not exist (else nothing is written: -1); set it, expiring
--   zadd member score | zrem member | set value | release token (delete a lock that token holds)
--   xadd field value ...  (append to a stream) | expire seconds (the payment's own key may be one;
--   writing the payment clears its expiry, so a payment that is not final stays)
-- Returns 1 written, 0 the payment is not as read (nothing written), -1 already marked.
-- Everything is checked before the first write: an error never leaves half a change behind.
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '' then
  if current then return 0 end
else
  if not current then return 0 end
  local payment = cjson.decode(current)
  if tostring(payment.version) ~= ARGV[1] or tostring(payment.cancel_requested == true) ~= ARGV[2] then
    return 0
  end
end
local known = {mark = true, zadd = true, zrem = true, set = true, release = true, xadd = true, expire = true}
local ops, a = {}, 4
for i = 2, #KEYS do
  local op, n = ARGV[a], tonumber(ARGV[a + 1])
  if not known[op] or not n then return redis.error_reply('unknown operation ' .. tostring(op)) end
  ops[i] = {op, a + 2, n}
  if op == 'mark' and redis.call('EXISTS', KEYS[i]) == 1 then return -1 end
  a = a + 2 + n
end
if ARGV[3] ~= '' then redis.call('SET', KEYS[1], ARGV[3]) end
for i = 2, #KEYS do
  local op, s, n = ops[i][1], ops[i][2], ops[i][3]
  if op == 'mark' then
    redis.call('SET', KEYS[i], ARGV[s], 'EX', ARGV[s + 1])
  elseif op == 'zadd' then
    redis.call('ZADD', KEYS[i], ARGV[s + 1], ARGV[s])
  elseif op == 'zrem' then
    redis.call('ZREM', KEYS[i], ARGV[s])
  elseif op == 'set' then
    redis.call('SET', KEYS[i], ARGV[s])
  elseif op == 'release' then
    if redis.call('GET', KEYS[i]) == ARGV[s] then redis.call('DEL', KEYS[i]) end
  elseif op == 'xadd' then
    redis.call('XADD', KEYS[i], '*', unpack(ARGV, s, s + n - 1))
  elseif op == 'expire' then
    redis.call('EXPIRE', KEYS[i], ARGV[s])
  end
end
return 1
