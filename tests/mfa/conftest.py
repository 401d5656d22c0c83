"""A test clock for TOTP, and staff accounts."""

from __future__ import annotations

import time

import pytest

from idp.services.accounts import second_factors
from idp.services.accounts.records import NewAccount, create_account

from ..conftest import DEFAULT_PASSWORD


class Clock:
    """The platform's TOTP clock, moved by the test (30-second steps)."""

    def __init__(self) -> None:
        self.now = (time.time() // 30) * 30 + 5.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> Clock:
    test_clock = Clock()
    monkeypatch.setattr(second_factors, "clock", test_clock)
    return test_clock


@pytest.fixture
def make_staff(app):
    def make(role: str = "admin", username: str | None = None) -> str:
        with app.app_context():
            return create_account(
                NewAccount(username=username or f"{role}01", password=DEFAULT_PASSWORD, name="管理员"),
                real_name_verified=False, role=role,
            ).username

    return make
