"""userinfo reads the user from an encrypted Redis snapshot while nothing changed, and sees every
change, lock and disable on the very next request."""

from __future__ import annotations

from idp.extensions import db, redis_store
from idp.models import User
from idp.models.user import UserStatus
from idp.services.identity import pii

from .test_resources import bearer

SCOPE = "openid profile phone realname"


def _userinfo(flow, token):
    return flow.client.get("/oauth/userinfo", headers=bearer(token))


def _change(app, user_id, **values):
    """A committed change of the user's row, as any use case makes it."""
    with app.app_context():
        row = db.session.get(User, user_id)
        for name, value in values.items():
            setattr(row, name, value)
        db.session.commit()


def _no_database(monkeypatch):
    from idp.oauth import access_tokens

    def refuse(*_a, **_k):
        raise AssertionError("userinfo read the database")

    monkeypatch.setattr(access_tokens.db.session, "scalar", refuse)


def test_a_second_userinfo_reads_no_database(app, signed_in_flow, monkeypatch):
    token = signed_in_flow.tokens(scope=SCOPE)["access_token"]
    first = _userinfo(signed_in_flow, token).get_json()
    _no_database(monkeypatch)
    assert _userinfo(signed_in_flow, token).get_json() == first


def test_a_lock_is_refused_on_the_next_request(app, signed_in_flow, user):
    token = signed_in_flow.tokens(scope=SCOPE)["access_token"]
    assert _userinfo(signed_in_flow, token).status_code == 200  # the snapshot is now cached
    # a bare status change (no token revocation): only the cache's version can refuse it
    _change(app, user.id, status=UserStatus.LOCKED)
    assert _userinfo(signed_in_flow, token).status_code == 401
    _change(app, user.id, status=UserStatus.ACTIVE)
    assert _userinfo(signed_in_flow, token).status_code == 200
    _change(app, user.id, status=UserStatus.DISABLED)
    assert _userinfo(signed_in_flow, token).status_code == 401


def test_an_operator_lock_is_refused_at_once(app, signed_in_flow, user):
    from idp.services.admin.users import lock_account

    token = signed_in_flow.tokens(scope=SCOPE)["access_token"]
    assert _userinfo(signed_in_flow, token).status_code == 200
    with app.app_context():
        lock_account(user.sub, reason="测试")
    assert _userinfo(signed_in_flow, token).status_code == 401


def test_a_profile_change_is_seen_on_the_next_request(app, signed_in_flow, user):
    token = signed_in_flow.tokens(scope=SCOPE)["access_token"]
    assert _userinfo(signed_in_flow, token).get_json()["name"] == "张三"
    with app.app_context():
        phone = pii.cipher().encrypt("phone", "13900139000")
    _change(app, user.id, name="张三丰", phone_enc=phone)
    info = _userinfo(signed_in_flow, token).get_json()
    assert info["name"] == "张三丰" and info["phone_number"] == "+8613900139000"


def test_a_login_keeps_the_snapshot(app, signed_in_flow, user, monkeypatch):
    from datetime import datetime, timezone

    token = signed_in_flow.tokens(scope=SCOPE)["access_token"]
    _userinfo(signed_in_flow, token)
    _change(app, user.id, last_login_at=datetime.now(timezone.utc))  # not a claim
    _no_database(monkeypatch)
    assert _userinfo(signed_in_flow, token).status_code == 200


def test_redis_holds_no_personal_data_in_clear(app, signed_in_flow, user):
    token = signed_in_flow.tokens(scope=SCOPE)["access_token"]
    info = _userinfo(signed_in_flow, token).get_json()
    assert info["id_number"] == "440303198512124562"
    with app.app_context():
        keys = list(redis_store.scan_iter("user-claims:*"))
        assert keys, "the snapshot is cached"
        for key in redis_store.scan_iter("*"):
            if redis_store.type(key) != b"string":
                continue
            value = redis_store.get(key) or b""
            for secret in ("440303198512124562", "13800130001", "张三".encode().decode()):
                assert secret.encode() not in value, key


def test_a_flushed_redis_reads_the_database_again(app, signed_in_flow, user):
    token = signed_in_flow.tokens(scope=SCOPE)["access_token"]
    assert _userinfo(signed_in_flow, token).status_code == 200
    with app.app_context():
        redis_store.flushdb()
    _change(app, user.id, status=UserStatus.LOCKED)
    assert _userinfo(signed_in_flow, token).status_code == 401
