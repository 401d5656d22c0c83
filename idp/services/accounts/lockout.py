"""Brute-force protection kept in Redis so it holds across processes (SPEC §7).

Five consecutive failures lock the account for 15 minutes; each further lockout within a day
doubles that, up to a cap.  A locked account is answered with the same generic message as a
wrong password, even when the password is right, so the lock itself leaks nothing.
"""

from __future__ import annotations

from flask import current_app

from ...extensions import redis_store

_FAILS = "lockout:fails:"
_UNTIL = "lockout:locked:"
_COUNT = "lockout:count:"
_DAY = 24 * 3600


def is_locked(account_key: str) -> bool:
    return bool(redis_store.exists(_UNTIL + account_key))


def register_failure(account_key: str) -> bool:
    """Count a failure; returns True when this failure locked the account."""
    cfg = current_app.config
    pipe = redis_store.pipeline()
    pipe.incr(_FAILS + account_key)
    pipe.expire(_FAILS + account_key, _DAY)
    fails, _ = pipe.execute()
    if fails < cfg["LOCKOUT_THRESHOLD"]:
        return False
    lockouts = redis_store.incr(_COUNT + account_key)
    redis_store.expire(_COUNT + account_key, _DAY)
    seconds = min(cfg["LOCKOUT_SECONDS"] * 2 ** (lockouts - 1), cfg["LOCKOUT_MAX_SECONDS"])
    pipe = redis_store.pipeline()
    pipe.set(_UNTIL + account_key, 1, ex=seconds)
    pipe.delete(_FAILS + account_key)
    pipe.execute()
    return True


def register_success(account_key: str) -> None:
    redis_store.delete(_FAILS + account_key)


def unlock(account_key: str) -> None:
    redis_store.delete(_UNTIL + account_key, _FAILS + account_key, _COUNT + account_key)


def seconds_left(account_key: str) -> int:
    return max(int(redis_store.ttl(_UNTIL + account_key)), 0)
