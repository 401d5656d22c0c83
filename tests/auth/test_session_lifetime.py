"""The login session's absolute lifetime: however active the citizen, a login ends after
IDP_SESSION_ABSOLUTE_LIFETIME; just before it, it still holds."""

from __future__ import annotations


def _started_ago(client, seconds: int) -> None:
    with client.session_transaction() as session:
        session["auth_time"] -= seconds


def test_a_login_holds_until_its_absolute_lifetime(app, logged_in):
    _started_ago(logged_in, app.config["SESSION_ABSOLUTE_LIFETIME"] - 60)
    assert logged_in.get("/account/").status_code == 200


def test_a_login_ends_after_its_absolute_lifetime(app, logged_in):
    _started_ago(logged_in, app.config["SESSION_ABSOLUTE_LIFETIME"] + 1)
    response = logged_in.get("/account/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    # the session was cleared, not merely refused once
    with logged_in.session_transaction() as session:
        assert "sid" not in session
    assert logged_in.get("/account/").status_code == 302
