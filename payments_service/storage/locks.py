"""Locks whose release checks the owner: an expired lock may have been taken by someone else since."""

from __future__ import annotations

from redis import Redis

# KEYS[1] the lock, ARGV[1] the owner's token.
DELETE_IF_OWNER = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)


def release_lock(redis: Redis, key: str, token: str) -> bool:
    """Delete the lock if `token` still holds it; True if it was deleted."""
    return bool(redis.eval(DELETE_IF_OWNER, 1, key, token))
