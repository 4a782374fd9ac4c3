"""Every Redis key the service uses. One hash tag for all of them, RQ's included.

The webhook's atomic step writes the payment, the Stripe event mark, the status index and the
outgoing event in one script (COMPARE_AND_WRITE); the relay moves events into RQ's queue in one
MULTI/EXEC. On Redis Cluster a script or transaction must stay in one hash slot, so every key
carries the same tag; booking ids cannot contain braces, so they never add a tag of their own.
"""

from __future__ import annotations

KEY_TAG = "{payments}"
RQ_KEY_PREFIX = f"{KEY_TAG}:rq"


def payment(booking_id: str) -> str:
    return f"{KEY_TAG}:payment:{booking_id}"


def booking_lock(booking_id: str) -> str:
    return f"{KEY_TAG}:lock:{booking_id}"


def stripe_event(event_id: str) -> str:
    return f"{KEY_TAG}:stripe-event:{event_id}"


def intent(payment_intent: str) -> str:
    return f"{KEY_TAG}:intent:{payment_intent}"


def refund_request(booking_id: str, idempotency_key: str) -> str:
    return f"{KEY_TAG}:refund-request:{booking_id}:{idempotency_key}"


def status_index(status: str) -> str:
    return f"{KEY_TAG}:status:{status}"


# Deletes a lock key only while it still holds its owner's token: an expired lock may have been
# taken by someone else since (KEYS[1] the lock, ARGV[1] the token).
DELETE_IF_OWNER = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)

# The transactional outbox (a stream): events written with their state change, before RQ has them.
OUTBOX = f"{KEY_TAG}:outbox"
# The one atomic write for a payment, used by checkouts, cancels and every Stripe fact.
# KEYS[1] is the payment, as its writer read it: ARGV[1] its version ('' = there was none) and
# ARGV[2] its cancel mark ('true'/'false'; the only change that keeps the version). ARGV[3] is
# the new payment ('' = leave it). Then each further key comes with one operation, written as
# name, argument count, arguments:
#   mark value ttl    the key must not exist (else nothing is written: -1); set it, expiring
#   zadd member score | zrem member | set value | release token (delete a lock that token holds)
#   xadd field value ...  (append to a stream)
# Returns 1 written, 0 the payment is not as read (nothing written), -1 already marked.
COMPARE_AND_WRITE = """
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
local ops, a = {}, 4
for i = 2, #KEYS do
  local n = tonumber(ARGV[a + 1])
  ops[i] = {ARGV[a], a + 2, n}
  if ARGV[a] == 'mark' and redis.call('EXISTS', KEYS[i]) == 1 then return -1 end
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
  else
    return redis.error_reply('unknown operation ' .. op)
  end
end
return 1
"""
RECONCILE_LOCK = f"{KEY_TAG}:reconcile:lock"
RECONCILE_EVENTS_CHECKPOINT = f"{KEY_TAG}:reconcile:events-checkpoint"
STATS = f"{KEY_TAG}:stats"
