"""Fixtures: the real app, the real database (SQLite, or PostgreSQL in CI through
IDP_TEST_DATABASE_URL) and Redis (fakeredis, or a real server through IDP_TEST_REDIS_URL)."""

from __future__ import annotations

import os
from datetime import date

import pytest
from sqlalchemy import text

from idp import create_app
from idp.extensions import db, redis_store
from idp.services.accounts.records import NewAccount, create_account

from .helpers import login as _login

TEST_DATABASE_URL = os.environ.get("IDP_TEST_DATABASE_URL", "")
TEST_REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "")

DEFAULT_PASSWORD = "Kaoshi#2026ok"


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys")
    from idp.oauth.keys import KeyStore
    from datetime import timedelta

    KeyStore(path / "signing", timedelta(hours=1)).ensure(("RS256", "ES256"))
    (path / "pii.key").write_text("11" * 32)
    return path


_external_db_ready = False
_apps_of_this_test: list = []


@pytest.fixture(autouse=True)
def _dispose_engines():
    """Close every database connection an app of this test opened (an open psycopg connection
    left to the garbage collector is a ResourceWarning, which pytest turns into an error)."""
    yield
    while _apps_of_this_test:
        app = _apps_of_this_test.pop()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def make_app(keys_dir, **overrides):
    global _external_db_ready
    settings = dict(
        DATABASE_URL=TEST_DATABASE_URL or "sqlite://",
        REDIS_URL=TEST_REDIS_URL,
        KEYS_DIR=str(keys_dir),
    )
    settings.update(overrides)
    app = create_app("testing", **settings)
    _apps_of_this_test.append(app)
    with app.app_context():
        from flask_migrate import upgrade

        if not TEST_DATABASE_URL:
            upgrade(revision="heads")
        elif not _external_db_ready:
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
            upgrade(revision="heads")
            _external_db_ready = True
        if TEST_REDIS_URL:
            redis_store.flushdb()
    return app


def clean_external_db(app) -> None:
    if not TEST_DATABASE_URL:
        return
    with app.app_context():
        db.session.remove()
        tables = [t.name for t in db.metadata.sorted_tables]
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


@pytest.fixture
def app(keys_dir):
    app = make_app(keys_dir)
    yield app
    clean_external_db(app)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def make_user(app):
    """Create a verified citizen directly through the account service."""
    counter = iter(range(1, 10_000))

    def make(username: str = "zhangsan", password: str = DEFAULT_PASSWORD, **fields):
        n = next(counter)
        data = dict(
            username=username,
            password=password,
            name=fields.pop("name", "张三"),
            id_type="resident_id",
            id_number=fields.pop("id_number", ["440303198512124562", "440304199001011233",
                                                "440305199203157894", "44030619950620341X"][(n - 1) % 4]),
            phone=fields.pop("phone", f"1380013{n:04d}"),
            gender="M",
            birthdate=date(1985, 12, 12),
            bank_code="ICBC",
            card_number=fields.pop("card_number", "6222020200112233445"),
        )
        data.update(fields)
        with app.app_context():
            user = create_account(NewAccount(**data), real_name_verified=True, role=fields.get("role"))
            db.session.refresh(user)
            db.session.expunge(user)
            return user

    return make


@pytest.fixture
def user(make_user):
    return make_user()


@pytest.fixture
def logged_in(client, user):
    response = _login(client, user.username, DEFAULT_PASSWORD)
    assert response.status_code == 302, response.data.decode()[:500]
    return client


@pytest.fixture
def live_server(keys_dir, tmp_path):
    """The provider on a real port, with its issuer set to that URL.  SQLite is a file here
    (threads of the server share it) unless IDP_TEST_DATABASE_URL points at PostgreSQL."""
    from .live import LiveServer, free_port, serve

    port = free_port()
    overrides = dict(ISSUER=f"http://127.0.0.1:{port}")
    if not TEST_DATABASE_URL:
        overrides["DATABASE_URL"] = f"sqlite:///{tmp_path / 'live.sqlite'}"
    app = make_app(keys_dir, **overrides)
    with serve(app, port) as url:
        yield LiveServer(app=app, url=url)
    clean_external_db(app)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def signed_in_elsewhere(app, user):
    """The same user logged in from a second browser."""
    other = app.test_client()
    assert _login(other, user.username, DEFAULT_PASSWORD).status_code == 302
    return other
