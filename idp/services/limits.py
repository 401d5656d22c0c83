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
"""

from __future__ import annotations

from dataclasses import dataclass

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


def _limiter() -> FixedWindowRateLimiter:
    return current_app.extensions["idp_limits"]


def describe_window(item: RateLimitItem) -> str:
    """"2 hours" → "2小时", "1 day" → "24小时"-style wording for messages ("1天")."""
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

    @property
    def item(self) -> RateLimitItem:
        return parse(current_app.config[self.setting])

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
