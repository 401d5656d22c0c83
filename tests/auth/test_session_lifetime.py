"""The login session's absolute lifetime: however active the citizen, a login ends after
IDP_SESSION_ABSOLUTE_LIFETIME; just before it, it still holds."""

from __future__ import annotations

import time

from idp.services.accounts import sessions


def _clock_at(monkeypatch, offset: float) -> None:
    real = time.time
    monkeypatch.setattr(sessions.time, "time", lambda: real() + offset)


def test_a_login_holds_until_its_absolute_lifetime(app, logged_in, monkeypatch):
    _clock_at(monkeypatch, app.config["SESSION_ABSOLUTE_LIFETIME"] - 60)
    assert logged_in.get("/account/").status_code == 200


def test_a_login_ends_after_its_absolute_lifetime(app, logged_in, monkeypatch):
    _clock_at(monkeypatch, app.config["SESSION_ABSOLUTE_LIFETIME"] + 1)
    response = logged_in.get("/account/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    monkeypatch.undo()
    # the session was cleared, not merely refused once: the real clock does not bring it back
    assert logged_in.get("/account/").status_code == 302
