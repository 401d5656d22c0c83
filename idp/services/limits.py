"""One atomic keyed limit for every budget and counter (the `limits` package on our Redis).

A ``KeyedLimit`` names a setting of ``idp/config.py`` that holds a rate string ("5 per 2 hours",
"10 per day") and the typed error a user sees when the budget is spent.  ``take`` counts *before*
the work it guards, in one Redis operation (a Lua script: increment, set the window's expiry if
new, compare), so parallel requests cannot slip past it: of thirty parallel attempts against a
limit of five, exactly five get through.  ``give_back`` returns what an attempt did not use (a
bank platform that did not answer, an SMS that was not sent).

The window is fixed and starts at the first take (Redis expiry), which is what "5 per flow",
"10 per day per account" mean to a citizen.  The storage is the app's own Redis connection (or
its in-process stand-in), so limits hold across processes and fail like every Redis call when
Redis is down.

Two more shapes of limit live here, for the same reasons (one Redis script per decision, the
expiry set in the same step):

- ``FailureLock``: consecutive failures that lock a key (login lockout).  An attempt reserves its
  failure slot *before* the work; a burst can evaluate no more attempts than the threshold, locks
  once, and escalates once.
- ``ConcurrencyLimit``: at most N holders of a key at a time (one bank check per citizen), each
  hold a lease that expires, so a worker that crashed mid-call frees its slot.
"""

from __future__ import annotations

import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from flask import Flask, current_app
from limits import RateLimitItem, parse
from limits.storage import RedisStorage
from limits.strategies import FixedWindowRateLimiter

from ..errors import UserError

_UNITS = {"second": "秒", "minute": "分钟", "hour": "小时", "day": "天", "month": "个月", "year": "年"}


def init_app(app: Flask) -> None:
    """Bind the limiter to the app's Redis connection (a real server, Sentinel or fakeredis)."""
    client = app.extensions["idp_redis"]
    storage = RedisStorage("redis://", connection_pool=client.connection_pool)
    app.extensions["idp_limits"] = FixedWindowRateLimiter(storage)
    app.extensions["idp_limit_scripts"] = {
        name: client.register_script(source) for name, source in _SCRIPTS.items()
    }


def _limiter() -> FixedWindowRateLimiter:
    return current_app.extensions["idp_limits"]


def _script(name: str):
    return current_app.extensions["idp_limit_scripts"][name]


def describe_window(item: RateLimitItem) -> str:
    """"2 hours" → "2小时", "1 day" → "1天"; a window in seconds in the largest unit that divides
    it (86400 seconds → "24小时", 300 → "5分钟")."""
    if item.GRANULARITY.name == "second":
        for size, unit in ((3600, "小时"), (60, "分钟")):
            if item.multiples % size == 0:
                return f"{item.multiples // size}{unit}"
    unit = _UNITS[item.GRANULARITY.name]
    return f"{item.multiples}{unit}"


@dataclass(frozen=True)
class KeyedLimit:
    """A budget per key: ``KeyedLimit("BANK_CHECKS_PER_FLOW", TooManyBankChecks).take(flow.id)``.

    The error class may carry ``{amount}`` and ``{window}`` in its ``message``; they are filled
    from the setting, so a message never states a number the setting does not hold."""

    setting: str
    error: type[UserError]
    namespace: str = ""
    # when set, ``setting`` holds the amount (an int) and the window is this many seconds, or the
    # seconds held by the setting of that name ("SMS_DAILY_CAP" per 86400 seconds)
    window: str | int | None = None

    @property
    def item(self) -> RateLimitItem:
        cfg = current_app.config
        if self.window is None:
            return parse(cfg[self.setting])
        seconds = cfg[self.window] if isinstance(self.window, str) else self.window
        return parse(f"{int(cfg[self.setting])} per {int(seconds)} seconds")

    @property
    def amount(self) -> int:
        return self.item.amount

    def _ids(self, key: tuple[str, ...]) -> tuple[str, ...]:
        return (self.namespace or self.setting.lower(), *map(str, key))

    def exceeded(self) -> UserError:
        item = self.item
        return self.error(self.error.message.format(amount=item.amount, window=describe_window(item)))

    def take(self, *key: str, cost: int = 1) -> None:
        """Spend ``cost`` from the budget of ``key`` or raise the limit's error (nothing spent
        beyond the budget matters: a refused attempt does no work)."""
        if not _limiter().hit(self.item, *self._ids(key), cost=cost):
            raise self.exceeded()

    def give_back(self, *key: str, cost: int = 1) -> None:
        """Return what an attempt took but did not use (the work could not be done at all)."""
        item = self.item
        storage = _limiter().storage
        storage_key = item.key_for(*self._ids(key))
        if storage.get(storage_key) >= cost:
            storage.incr(storage_key, item.get_expiry(), amount=-cost)

    def used(self, *key: str) -> int:
        item = self.item
        return max(item.amount - _limiter().get_window_stats(item, *self._ids(key)).remaining, 0)

    def spent(self, *key: str) -> bool:
        return not _limiter().test(self.item, *self._ids(key))

    def reset(self, *key: str) -> None:
        _limiter().clear(self.item, *self._ids(key))

    def seconds_to_reset(self, *key: str) -> int:
        import time

        reset_at = _limiter().get_window_stats(self.item, *self._ids(key)).reset_time
        return max(int(reset_at - time.time() + 0.999), 0)

    def charge(self, *key: str) -> Charge:
        """This limit bound to a key, to hand to a service that takes it before its work and gives
        it back when the work did not happen (``SmsCode.send``, ``BankVerifier.verify``)."""
        return Charge(self, tuple(map(str, key)))


@dataclass(frozen=True)
class Charge:
    """One unit of one keyed budget: ``KeyedLimit(...).charge(flow_id)``."""

    limit: KeyedLimit
    key: tuple[str, ...]

    def take(self) -> None:
        self.limit.take(*self.key)

    def give_back(self) -> None:
        self.limit.give_back(*self.key)


@contextmanager
def charged(charges: tuple[Charge, ...] | list[Charge], *, refund_on: tuple[type[BaseException], ...]) -> Iterator[None]:
    """Take every charge before the work (in order; a refusal gives back those already taken and
    raises the refusing limit's error), and give them all back if the work raises one of
    ``refund_on`` (it did not happen: a platform down, a message not sent)."""
    taken: list[Charge] = []
    try:
        for charge in charges:
            charge.take()
            taken.append(charge)
    except BaseException:
        for charge in reversed(taken):
            charge.give_back()
        raise
    try:
        yield
    except refund_on:
        for charge in reversed(taken):
            charge.give_back()
        raise


# -- consecutive failures that lock a key --------------------------------------------------------------
_RESERVE = """
-- KEYS: slots (hash: reserved, failed), lock;  ARGV: threshold, slots window (ms)
local left = redis.call('PTTL', KEYS[2])
if left > 0 then return {0, left} end
local reserved = tonumber(redis.call('HGET', KEYS[1], 'reserved') or '0')
if reserved >= tonumber(ARGV[1]) then return {0, 0} end
redis.call('HINCRBY', KEYS[1], 'reserved', 1)
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return {1, 0}
"""

_FAIL = """
-- KEYS: slots, lock, lockouts;  ARGV: threshold, slots window, base ms, max ms, escalation window ms
local failed = redis.call('HINCRBY', KEYS[1], 'failed', 1)
local reserved = tonumber(redis.call('HGET', KEYS[1], 'reserved') or '0')
if reserved < failed then redis.call('HSET', KEYS[1], 'reserved', failed) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if failed < tonumber(ARGV[1]) then return 0 end
local n = redis.call('INCR', KEYS[3])
local ms = tonumber(ARGV[3])
for _ = 2, math.min(n, 40) do ms = ms * 2 end
ms = math.floor(math.min(ms, tonumber(ARGV[4])))
redis.call('SET', KEYS[2], n, 'PX', ms)
redis.call('PEXPIRE', KEYS[3], ms + tonumber(ARGV[5]))
redis.call('DEL', KEYS[1])
return ms
"""

_RELEASE = """
-- KEYS: slots;  an attempt that ended neither in success nor in failure gives its slot back
local reserved = tonumber(redis.call('HGET', KEYS[1], 'reserved') or '0')
local failed = tonumber(redis.call('HGET', KEYS[1], 'failed') or '0')
if reserved > failed then redis.call('HINCRBY', KEYS[1], 'reserved', -1) end
return 1
"""

# -- leases: at most N holders of a key -------------------------------------------------------------------
_ACQUIRE = """
-- KEYS: holders (sorted set token -> lease end, ms);  ARGV: capacity, lease ms, token
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

_SCRIPTS = {"reserve": _RESERVE, "fail": _FAIL, "release": _RELEASE, "acquire": _ACQUIRE}


@dataclass(frozen=True)
class FailureLock:
    """Consecutive failures per key; ``threshold`` of them lock the key for ``base`` seconds,
    doubling with each further lock while the previous one is remembered (``escalation``
    seconds after it ended), up to ``cap`` seconds.  All four are setting names.

    ``reserve`` is called before the work and refuses at once while the key is locked or while
    every failure slot is taken (by failures, or by attempts still being evaluated); the work then
    ends in ``succeeded`` (the failures are forgotten), ``failed`` (the slot stays a failure; the
    failure that fills the last slot locks the key, exactly once) or ``release`` (neither: an error
    that was not the visitor's)."""

    threshold: str
    base: str
    cap: str
    window: str  # seconds consecutive failures are remembered after the latest one
    escalation: str  # seconds a lock is remembered after it ended, for doubling the next one
    namespace: str

    def _keys(self, key: str) -> tuple[str, str, str]:
        return (f"{self.namespace}:slots:{key}", f"{self.namespace}:locked:{key}", f"{self.namespace}:count:{key}")

    def reserve(self, key: str) -> bool:
        slots, lock, _ = self._keys(key)
        cfg = current_app.config
        granted, _left = _script("reserve")(keys=[slots, lock], args=[int(cfg[self.threshold]), int(cfg[self.window]) * 1000])
        return bool(granted)

    def failed(self, key: str) -> int:
        """Record a failure of a reserved attempt; returns the seconds of the lock it caused, or 0."""
        cfg = current_app.config
        ms = _script("fail")(keys=list(self._keys(key)), args=[
            int(cfg[self.threshold]), int(cfg[self.window]) * 1000, int(cfg[self.base]) * 1000,
            int(cfg[self.cap]) * 1000, int(cfg[self.escalation]) * 1000,
        ])
        return (int(ms) + 999) // 1000

    def succeeded(self, key: str) -> None:
        current_app.extensions["idp_redis"].delete(self._keys(key)[0])

    def release(self, key: str) -> None:
        _script("release")(keys=[self._keys(key)[0]], args=[])

    def locked(self, key: str) -> bool:
        return bool(current_app.extensions["idp_redis"].exists(self._keys(key)[1]))

    def seconds_left(self, key: str) -> int:
        ms = current_app.extensions["idp_redis"].pttl(self._keys(key)[1])
        return max((int(ms) + 999) // 1000, 0)

    def unlock(self, key: str) -> None:
        current_app.extensions["idp_redis"].delete(*self._keys(key))


@dataclass(frozen=True)
class ConcurrencyLimit:
    """At most ``capacity`` (a setting) holders per key at a time, each for at most ``lease``
    seconds (a setting): ``with BANK_CALLS.held(citizen): …`` or the limit's error at once."""

    capacity: str
    lease: str
    error: type[UserError]
    namespace: str

    @contextmanager
    def held(self, *key: str) -> Iterator[None]:
        cfg = current_app.config
        redis_key = ":".join((self.namespace, *map(str, key)))
        token = secrets.token_hex(8)
        lease_ms = int(float(cfg[self.lease]) * 1000)
        if not _script("acquire")(keys=[redis_key], args=[int(cfg[self.capacity]), lease_ms, token]):
            raise self.error()
        try:
            yield
        finally:
            current_app.extensions["idp_redis"].zrem(redis_key, token)
