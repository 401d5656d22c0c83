"""What the hot-path optimisations measured by bench/ rely on: the per-process client cache and the
idle-connection check that replaced pre-ping."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from idp import db_pool
from idp.extensions import db
from idp.oauth.client_cache import cached_client
from idp.services.admin.clients import ClientSpec, create_client

from ..conftest import TEST_DATABASE_URL


def _service_client(app) -> str:
    with app.app_context():
        client, _ = create_client(ClientSpec(name="缓存测试", client_type="service", scope="openid"))
        return client.client_id


def test_a_client_change_in_this_process_is_seen_at_once(app):
    client_id = _service_client(app)
    with app.app_context():
        assert cached_client(client_id).enabled
    with app.app_context():
        from idp.models import Client

        client = db.session.scalar(db.select(Client).filter_by(client_id=client_id))
        client.enabled = False
        db.session.commit()
    with app.app_context():
        assert cached_client(client_id).enabled is False


def test_a_change_from_another_process_is_seen_within_the_ttl(app):
    app.config["CLIENT_CACHE_SECONDS"] = 0.3
    client_id = _service_client(app)
    with app.app_context():
        assert cached_client(client_id).enabled
        # what another worker does: a change this process's session never saw
        db.session.execute(text("UPDATE oauth_clients SET enabled = false WHERE client_id = :c"), {"c": client_id})
        db.session.commit()
        assert cached_client(client_id).enabled, "served from the cache within the TTL"
        time.sleep(0.35)
        assert cached_client(client_id).enabled is False


def test_unknown_clients_are_not_cached(app):
    with app.app_context():
        assert cached_client("no-such-client") is None
        assert "no-such-client" not in app.extensions.get("idp_client_cache", {})


def test_the_cached_client_is_a_copy_no_session_tracks(app):
    client_id = _service_client(app)
    with app.app_context():
        client = cached_client(client_id)
        assert client not in db.session
        client.name = "changed in memory only"
        db.session.commit()
    with app.app_context():
        from idp.models import Client

        assert db.session.scalar(db.select(Client.name).filter_by(client_id=client_id)) == "缓存测试"


@pytest.mark.skipif(not TEST_DATABASE_URL.startswith("postgresql"), reason="needs PostgreSQL")
def test_an_idle_connection_killed_by_the_server_is_replaced(app, monkeypatch):
    with app.app_context():
        pid = db.session.scalar(text("SELECT pg_backend_pid()"))
        db.session.remove()  # back to the pool
        import psycopg

        url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(url, autocommit=True) as admin:  # the server ends that connection
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        monkeypatch.setattr(db_pool, "IDLE_SECONDS", 0.0)  # every pooled connection counts as idle
        assert db.session.scalar(text("SELECT 1")) == 1
        assert db.session.scalar(text("SELECT pg_backend_pid()")) != pid
