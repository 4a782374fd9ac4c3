"""Locks whose release checks the owner: an expired lock may have been taken by someone else since."""

from __future__ import annotations

import hashlib
from typing import Any

from redis import Redis

# KEYS[1] the lock, ARGV[1] the owner's token.
DELETE_IF_OWNER = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)


def release_lock(redis: Redis, key: str, token: str) -> bool:
    """Delete the lock if `token` still holds it; True if it was deleted."""
    return bool(redis.eval(DELETE_IF_OWNER, 1, key, token))


# KEYS[1] the lock, ARGV[1] the taker's token, ARGV[2] how long to hold it (milliseconds). The lock's
# value is the token and the primary's replication id, which a failover or a restart changes: a
# lock taken before the primary last changed belongs to a request whose answer went nowhere, and is
# taken over at once instead of blocking its booking until it expires. (Should its holder still be
# alive, its save compares the payment's version; the lock only spares Stripe a second session.)
TAKE_UNLESS_HELD_SINCE_THE_PRIMARY_CHANGED = """
local run = string.match(redis.call('INFO', 'replication'), 'master_replid:(%x+)') or ''
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, -#run - 1) == ':' .. run then return false end
local value = ARGV[1] .. ':' .. run
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return value
"""
_TAKE_SHA = hashlib.sha1(
    TAKE_UNLESS_HELD_SINCE_THE_PRIMARY_CHANGED.encode(), usedforsecurity=False
).hexdigest()


def take_command(key: str, token: str, hold_ms: int) -> tuple[Any, ...]:
    """The command that takes a lock; its reply is the lock's value (for release_lock), or None if held."""
    return ("EVALSHA", _TAKE_SHA, 1, key, token, hold_ms)


def load_take_script(redis: Redis) -> None:
    """For a primary that has not run it yet (NOSCRIPT)."""
    redis.script_load(TAKE_UNLESS_HELD_SINCE_THE_PRIMARY_CHANGED)
