"""Every Redis key the service uses. One hash tag for all of them, RQ's included.

The webhook's atomic step writes the payment, the Stripe event mark, the status index and the
outgoing event in one MULTI/EXEC; the relay moves events into RQ's queue in another. On Redis
Cluster a transaction must stay in one hash slot, so every key carries the same tag; booking
ids cannot contain braces, so they never add a tag of their own.
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
# Writes a payment if it is still at the version its writer read (ARGV[1]; '' = it must not
# exist yet), then one operation per further key: zrem member | zadd member score | set value |
# release token (delete a lock still held by that token). Returns 1 written, 0 conflict.
SAVE_IF_VERSION = """
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '' then
  if current then return 0 end
elseif not current or tostring(cjson.decode(current).version) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2])
local a = 3
for i = 2, #KEYS do
  local op = ARGV[a]
  if op == 'zadd' then
    redis.call('ZADD', KEYS[i], ARGV[a + 2], ARGV[a + 1])
    a = a + 3
  else
    if op == 'zrem' then
      redis.call('ZREM', KEYS[i], ARGV[a + 1])
    elseif op == 'set' then
      redis.call('SET', KEYS[i], ARGV[a + 1])
    elseif op == 'release' and redis.call('GET', KEYS[i]) == ARGV[a + 1] then
      redis.call('DEL', KEYS[i])
    end
    a = a + 2
  end
end
return 1
"""
RECONCILE_LOCK = f"{KEY_TAG}:reconcile:lock"
RECONCILE_EVENTS_CHECKPOINT = f"{KEY_TAG}:reconcile:events-checkpoint"
STATS = f"{KEY_TAG}:stats"
