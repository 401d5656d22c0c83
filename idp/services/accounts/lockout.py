"""Brute-force protection kept in Redis so it holds across processes (SPEC §7).

``LOCKOUT_THRESHOLD`` consecutive failures lock a login name for ``LOCKOUT_SECONDS``; each further
lockout while the previous one is remembered doubles that, up to ``LOCKOUT_MAX_SECONDS``.

Every attempt reserves its failure slot *before* the password is checked (one Redis script:
locked? slots left? take one), so a burst of parallel guesses gets exactly the threshold
evaluated, one lock and one escalation; the rest are refused at once without an argon2 check.
A locked name is answered with the lock and its remaining minutes, even when the password is
right, and in the same words whether or not the name exists, so the lock itself leaks nothing.

Counters are kept per *submitted* login name (a keyed hash of its case-folded form), whether or
not it names an account: an unknown name locks exactly like a real one, so neither the lock nor
its timing tells which names exist, and Redis holds no usernames.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..identity import pii
from ..identity.rules import username_key
from ..limits import FailureLock

LOGIN_FAILURES = FailureLock(
    threshold="LOCKOUT_THRESHOLD",
    base="LOCKOUT_SECONDS",
    cap="LOCKOUT_MAX_SECONDS",
    window="LOCKOUT_FAILURE_WINDOW",
    escalation="LOCKOUT_ESCALATION_WINDOW",
    namespace="lockout",
)


def login_key(username: str) -> str:
    """The counter key of a submitted login name (known or not): a keyed hash of its case-folded
    form, the same for ``ZhangSan`` and ``zhangsan``."""
    return pii.cipher().lookup_hash("username", username_key(username or ""))[:32]


class Refused(Exception):
    """The name is locked, or every failure slot is taken by attempts under evaluation: answer
    with the generic message without checking the password."""


@dataclass
class Attempt:
    """One password check under the lockout; ends as ``succeeded`` or ``failed`` (a check that
    raised for another reason gives its slot back)."""

    key: str
    ended: bool = False
    locked_for: int = 0  # seconds of the lock this attempt's failure caused, 0 if none

    def succeeded(self) -> None:
        self.ended = True
        LOGIN_FAILURES.succeeded(self.key)

    def failed(self) -> int:
        self.ended = True
        self.locked_for = LOGIN_FAILURES.failed(self.key)
        return self.locked_for


@contextmanager
def attempt(username: str) -> Iterator[Attempt]:
    """``with lockout.attempt(name) as a:`` check the password, then ``a.succeeded()`` or
    ``a.failed()``.  Raises ``Refused`` before the work when the name is locked or its slots are
    all taken."""
    key = login_key(username)
    if not LOGIN_FAILURES.reserve(key):
        raise Refused()
    current = Attempt(key)
    try:
        yield current
    finally:
        if not current.ended:
            LOGIN_FAILURES.release(key)


def is_locked(username: str) -> bool:
    return LOGIN_FAILURES.locked(login_key(username))


def seconds_left(username: str) -> int:
    return LOGIN_FAILURES.seconds_left(login_key(username))


def unlock(username: str) -> None:
    """Lift the lock and forget the failures and the escalation (an operator's unlock, a reset
    password)."""
    LOGIN_FAILURES.unlock(login_key(username))
