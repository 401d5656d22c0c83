"""The login lockout under parallel attack: every attempt reserves its failure slot before the
password is checked, so a burst gets exactly the threshold evaluated, one lock, one escalation."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import select

from idp.extensions import db, redis_store
from idp.models import AuditEvent
from idp.services.accounts import lockout, records
from idp.services.accounts.records import NewAccount, authenticate, create_account
from idp.errors import InvalidCredentials

from ..conftest import DEFAULT_PASSWORD, TEST_DATABASE_URL, clean_external_db, make_app
from ..helpers import CAPTCHA, form_fields
from ..live import free_port, serve

WRONG = "Wrong#password1"
BURST = 50


def _events(app, event: str, reason: str | None = None) -> list[AuditEvent]:
    with app.app_context():
        rows = db.session.scalars(select(AuditEvent).where(AuditEvent.event == event)).all()
        return [r for r in rows if reason is None or (r.details or {}).get("reason") == reason]


def _citizen(app, username: str = "lockme2026"):
    with app.app_context():
        return create_account(
            NewAccount(username=username, password=DEFAULT_PASSWORD, name="张三", id_type="resident_id",
                       id_number="440304199001011233", phone="13800138000"),
            real_name_verified=True,
        ).username


class CountingVerify:
    """Wraps the argon2 check to count how many attempts were really evaluated."""

    def __init__(self, monkeypatch):
        self.calls = 0
        self._lock = threading.Lock()
        real = records.passwords.verify_password

        def counted(stored, password):
            with self._lock:
                self.calls += 1
            time.sleep(0.05)  # a slow check: the burst is in flight together
            return real(stored, password)

        monkeypatch.setattr(records.passwords, "verify_password", counted)


@pytest.fixture
def live(keys_dir, tmp_path):
    port = free_port()
    overrides = dict(ISSUER=f"http://127.0.0.1:{port}", LOGIN_IP_LIMIT="1000 per minute",
                     CAPTCHA_IP_LIMIT="1000 per minute")
    if not TEST_DATABASE_URL:
        overrides["DATABASE_URL"] = f"sqlite:///{tmp_path / 'lockout.sqlite'}"
    app = make_app(keys_dir, **overrides)
    with serve(app, port) as url:
        yield app, url
    clean_external_db(app)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _http_login(url: str, username: str, password: str, barrier: threading.Barrier | None = None) -> int:
    with requests.Session() as s:
        fields = form_fields(s.get(f"{url}/login", timeout=30).text)
        fields.update(username=username, password=password, captcha=CAPTCHA)
        if barrier is not None:
            barrier.wait()
        return s.post(f"{url}/login", data=fields, timeout=30, allow_redirects=False).status_code


def test_parallel_wrong_passwords_over_http_lock_once(live, monkeypatch):
    app, url = live
    username = _citizen(app)
    threshold = app.config["LOCKOUT_THRESHOLD"]
    verify = CountingVerify(monkeypatch)
    barrier = threading.Barrier(BURST)
    with ThreadPoolExecutor(BURST) as pool:
        statuses = list(pool.map(lambda _: _http_login(url, username, WRONG, barrier), range(BURST)))
    assert statuses == [400] * BURST  # every one the generic answer
    assert verify.calls == threshold  # exactly the threshold evaluated; the rest refused before argon2
    assert len(_events(app, "login", "bad_password")) == threshold
    assert len(_events(app, "login", "locked")) == BURST - threshold
    [lock_event] = _events(app, "account.lockout")
    assert lock_event.details["seconds"] == app.config["LOCKOUT_SECONDS"]
    # the right password is refused while locked, without a check
    assert _http_login(url, username.upper(), DEFAULT_PASSWORD) == 400
    assert verify.calls == threshold
    with app.app_context():
        left = lockout.seconds_left(username)
        assert app.config["LOCKOUT_SECONDS"] - 5 <= left <= app.config["LOCKOUT_SECONDS"]
        # the lock and what escalates the next one agree: the count outlives the lock by the window
        count_key = lockout.LOGIN_FAILURES._keys(lockout.login_key(username))[2]
        count_ttl = redis_store.ttl(count_key)
        expected = app.config["LOCKOUT_SECONDS"] + app.config["LOCKOUT_ESCALATION_WINDOW"]
        assert expected - 5 <= count_ttl <= expected
        assert int(redis_store.get(count_key)) == 1
        # no usernames in Redis: the keys carry a keyed hash of the name
        assert not [k for k in redis_store.keys("lockout:*") if username.encode() in k.lower()]


def test_escalation_doubles_exactly_once_per_lockout(keys_dir, tmp_path, monkeypatch):
    overrides = dict(LOCKOUT_SECONDS=60, LOCKOUT_MAX_SECONDS=180)
    if not TEST_DATABASE_URL:  # threads need their own connections: a file, not one shared in-memory one
        overrides["DATABASE_URL"] = f"sqlite:///{tmp_path / 'escalation.sqlite'}"
    app = make_app(keys_dir, **overrides)
    try:
        username = _citizen(app)
        threshold = app.config["LOCKOUT_THRESHOLD"]
        verify = CountingVerify(monkeypatch)

        def burst() -> None:
            barrier = threading.Barrier(20)

            def one(_):
                with app.test_request_context("/"):
                    barrier.wait()
                    try:
                        authenticate(username, WRONG)
                    except InvalidCredentials:
                        pass
                    finally:
                        db.session.remove()

            with ThreadPoolExecutor(20) as pool:
                list(pool.map(one, range(20)))

        for n, expected_seconds in enumerate((60, 120, 180, 180), start=1):
            burst()
            assert verify.calls == n * threshold
            locks = _events(app, "account.lockout")
            assert [e.details["seconds"] for e in locks] == [60, 120, 180, 180][:n]  # one per burst, doubling to the cap
            with app.app_context():
                assert expected_seconds - 10 < lockout.seconds_left(username) <= expected_seconds
                # the lock runs out (its expiry, brought forward); the escalation is remembered
                redis_store.delete(lockout.LOGIN_FAILURES._keys(lockout.login_key(username))[1])
        with app.test_request_context("/"):
            assert authenticate(username, DEFAULT_PASSWORD).username == username  # lock over
    finally:
        clean_external_db(app)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_unknown_names_lock_exactly_like_real_ones(app, client):
    from ..helpers import login

    threshold = app.config["LOCKOUT_THRESHOLD"]
    for _ in range(threshold):
        assert login(client, "NoSuchUser", WRONG).status_code == 400
    with app.app_context():
        assert lockout.is_locked("nosuchuser")
        assert lockout.seconds_left("NOSUCHUSER") > app.config["LOCKOUT_SECONDS"] - 5
    assert len(_events(app, "login", "unknown_user")) == threshold
    login(client, "nosuchuser", WRONG)
    assert len(_events(app, "login", "locked")) == 1


def test_success_forgets_the_failures(app, client, user):
    from ..helpers import login

    threshold = app.config["LOCKOUT_THRESHOLD"]
    for _ in range(threshold - 1):
        assert login(client, user.username, WRONG).status_code == 400
    assert login(client, user.username, DEFAULT_PASSWORD).status_code == 302
    client.get("/logout")
    fresh = app.test_client()
    for _ in range(threshold - 1):
        assert login(fresh, user.username, WRONG).status_code == 400
    assert login(fresh, user.username, DEFAULT_PASSWORD).status_code == 302  # not locked: the count restarted


def test_an_attempt_that_errs_gives_its_slot_back(app, user, monkeypatch):
    threshold = app.config["LOCKOUT_THRESHOLD"]

    def broken(*_):
        raise RuntimeError("database went away")

    monkeypatch.setattr(records, "find_by_username", broken)
    with app.test_request_context("/"):
        for _ in range(threshold + 2):
            with pytest.raises(RuntimeError):
                authenticate(user.username, WRONG)
        assert not lockout.is_locked(user.username)
    monkeypatch.undo()
    with app.test_request_context("/"):
        assert authenticate(user.username, DEFAULT_PASSWORD).username == user.username
