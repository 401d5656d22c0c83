"""The audit buffer: a client_credentials token's event goes through a Redis stream into the
audit table (fakeredis, or the real Redis of IDP_TEST_REDIS_URL), once, and never nowhere.

The crash tests (real processes killed mid-batch) are in test_audit_buffer_crash.py."""

from __future__ import annotations

import base64
import json
import time

import pytest
import redis as redis_lib
from flask_migrate import upgrade
from sqlalchemy import func, select

from idp import create_app
from idp.config import ConfigError, load_config
from idp.extensions import db, redis_store
from idp.models import AuditEvent
from idp.services.audit import events as audit
from idp.services.audit.stream import DEAD_LETTERS, FIELD, GROUP, STREAM, Drainer, stop_in_process, write_batch

from ..conftest import TEST_REDIS_URL
from ..live import free_port


def jti_of(access_token: str) -> str:
    payload = access_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"]


def issued_events(app) -> list[AuditEvent]:
    with app.app_context():
        events = list(db.session.scalars(select(AuditEvent).filter_by(event="token.issued").order_by(AuditEvent.id)))
        db.session.expunge_all()
        return events


def stream_length(app) -> int:
    with app.app_context():
        return redis_store.xlen(STREAM)


def client_credentials(client, service) -> str:
    response = client.post("/oauth/token", data={"grant_type": "client_credentials"}, headers=service.basic)
    assert response.status_code == 200, response.data
    return response.get_json()["access_token"]


def test_a_client_credentials_token_is_recorded_through_the_buffer(app, client, make_client):
    service = make_client(client_type="service", scope="openid", redirect_uris=[])
    jti = jti_of(client_credentials(client, service))

    # answered: the event waits in the stream, not yet in the table
    assert stream_length(app) == 1
    assert issued_events(app) == []

    assert Drainer(app).drain() == 1
    [event] = issued_events(app)
    assert (event.actor, event.subject, event.client_id) == (service.client_id, service.client_id, service.client_id)
    assert event.details == {"grant_type": "client_credentials", "scope": "", "jti": jti}
    assert event.event_id and event.at is not None
    assert stream_length(app) == 0  # acknowledged and deleted after the commit


def test_every_token_issued_is_recorded(app, client, make_client, signed_in_flow):
    """Tokens from every grant, counted: the buffered ones and those written with their change."""
    service = make_client(client_type="service", scope="openid", redirect_uris=[])
    jtis = {jti_of(client_credentials(client, service)) for _ in range(7)}
    tokens = signed_in_flow.tokens(scope="openid profile offline_access")  # authorization code: in the token row's transaction
    jtis.add(jti_of(tokens["access_token"]))
    refreshed = client.post("/oauth/token", data={"grant_type": "refresh_token",
                                                  "refresh_token": tokens["refresh_token"]},
                            headers=signed_in_flow.rp.basic)
    assert refreshed.status_code == 200
    jtis.add(jti_of(refreshed.get_json()["access_token"]))
    assert len(jtis) == 9

    assert len(issued_events(app)) == 2  # the code and the rotation, committed with their rows
    Drainer(app).drain()
    events = issued_events(app)
    assert len(events) == 9
    assert sorted(e.details["grant_type"] for e in events) == \
        ["authorization_code"] + ["client_credentials"] * 7 + ["refresh_token"]
    assert {e.details["jti"] for e in events if e.details["grant_type"] == "client_credentials"} == \
        jtis - {jti_of(tokens["access_token"]), jti_of(refreshed.get_json()["access_token"])}


def test_a_batch_written_again_is_stored_once(app):
    """A drainer dies between its commit and its acknowledgement: the next one writes the same
    entries again, and the table keeps each event once."""
    app.config["AUDIT_DRAIN_RECLAIM_IDLE"] = 0
    with app.test_request_context():
        ids = [audit.buffer("test.buffered", actor=f"a{i}") for i in range(5)]
    dead = Drainer(app, consumer="dead")
    dead._ensure_group()
    delivered = dead._read(">", None)
    assert len(delivered) == 5
    with app.app_context():
        write_batch([dead._event(entry)[2] for entry in delivered[:3]])  # committed, then killed: no XACK

    survivor = Drainer(app, consumer="survivor")
    assert survivor.drain() == 5  # taken over from the dead one
    with app.app_context():
        stored = db.session.scalars(select(AuditEvent.event_id).filter_by(event="test.buffered")).all()
        assert sorted(stored) == sorted(ids)
        assert redis_store.xpending(STREAM, GROUP)["pending"] == 0
        assert redis_store.xlen(STREAM) == 0


def test_an_entry_the_table_refuses_goes_aside_and_holds_up_nothing(app):
    with app.test_request_context():
        first = audit.buffer("test.buffered", actor="before")
    with app.app_context():
        redis_store.xadd(STREAM, {FIELD: "not json"})
        # decodes, but the table refuses it: an event needs its name
        redis_store.xadd(STREAM, {FIELD: json.dumps({"event_id": "e-1", "at": "2026-12-01T08:00:00+00:00"})})
    with app.test_request_context():
        last = audit.buffer("test.buffered", actor="after")

    assert Drainer(app).drain() == 4
    with app.app_context():
        assert sorted(db.session.scalars(select(AuditEvent.event_id).filter_by(event="test.buffered"))) == \
            sorted([first, last])
        aside = [fields[b"reason"].decode() for _, fields in redis_store.xrange(DEAD_LETTERS)]
        assert len(aside) == 2 and aside[0].startswith("not an audit event") and "Integrity" in aside[1]
        assert redis_store.xlen(STREAM) == 0


def test_when_redis_does_not_take_the_event_it_goes_to_the_database_at_once(app, client, make_client):
    service = make_client(client_type="service", scope="openid", redirect_uris=[])
    # Redis refuses the append (the connection of the buffer goes to a port nobody listens on)
    dead = redis_lib.Redis(port=free_port(), socket_connect_timeout=0.5)
    app.extensions["idp_audit_append"] = dead.register_script("return 1")
    jti = jti_of(client_credentials(client, service))
    dead.close()

    [event] = issued_events(app)
    assert event.details["jti"] == jti
    assert stream_length(app) == 0


def test_a_full_buffer_sends_events_to_the_database_and_loses_none(app):
    app.config["AUDIT_BUFFER_MAX_LENGTH"] = 2
    with app.test_request_context():
        ids = [audit.buffer("test.buffered", actor=f"a{i}") for i in range(5)]
    with app.app_context():
        direct = db.session.scalars(select(AuditEvent.event_id).filter_by(event="test.buffered")).all()
    assert sorted(direct) == sorted(ids[2:])  # past the guard: written at once
    assert stream_length(app) == 2
    assert Drainer(app).drain() == 2
    with app.app_context():
        assert db.session.scalar(select(func.count(func.distinct(AuditEvent.event_id)))
                                 .filter_by(event="test.buffered")) == 5
        assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                                 .filter_by(event="test.buffered")) == 5


def test_idp_audit_drain_once_writes_the_buffer(app, runner):
    with app.test_request_context():
        event_id = audit.buffer("test.buffered", actor="cli")
    result = runner.invoke(args=["audit", "drain", "--once"])
    assert result.exit_code == 0 and "wrote 1 buffered audit events" in result.output, result.output
    with app.app_context():
        assert db.session.scalar(select(AuditEvent.actor).filter_by(event_id=event_id)) == "cli"


def test_readiness_warns_when_redis_would_lose_the_buffer(app, client):
    response = client.get("/readyz")
    assert response.status_code == 200  # a warning, not a failure
    warning = response.get_json().get("warnings", {}).get("redis_persistence")
    if not TEST_REDIS_URL:
        assert "in-process Redis stand-in" in warning
        return
    with app.app_context():
        settings = {_text(k): _text(v) for k, v in redis_store.config_get("append*").items()}
    if settings["appendonly"] == "no":
        assert "appendonly no" in warning and "appendfsync everysec" in warning
    elif settings["appendfsync"] == "no":
        assert "appendfsync is no" in warning
    else:
        assert warning is None


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def file_app(keys_dir, path, **overrides):
    """An app on a SQLite file of its own (threads and processes share it)."""
    app = create_app("testing", DATABASE_URL=f"sqlite:///{path}", KEYS_DIR=str(keys_dir), **overrides)
    with app.app_context():
        upgrade(revision="heads")
    return app


def test_the_development_server_drains_its_own_buffer(keys_dir, tmp_path):
    """Development with the in-process Redis stand-in: a drainer thread of the process itself,
    so the demo's 审计日志 shows the event within a second."""
    app = file_app(keys_dir, tmp_path / "dev.sqlite", REDIS_URL="", AUDIT_DRAIN_IN_PROCESS=True)
    try:
        with app.test_request_context():
            event_id = audit.buffer("test.buffered", actor="dev")
        deadline = time.monotonic() + 1.0
        with app.app_context():
            while (found := db.session.scalar(select(AuditEvent).filter_by(event_id=event_id))) is None \
                    and time.monotonic() < deadline:
                db.session.rollback()
                time.sleep(0.02)
            assert found is not None
    finally:
        stop_in_process(app)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_development_drains_in_process_and_production_refuses_the_test_hook(monkeypatch):
    from idp.config import DevelopmentConfig, ProductionConfig, TestingConfig

    assert DevelopmentConfig.AUDIT_DRAIN_IN_PROCESS is True
    assert ProductionConfig.AUDIT_DRAIN_IN_PROCESS is False and TestingConfig.AUDIT_DRAIN_IN_PROCESS is False
    monkeypatch.setenv("IDP_AUDIT_DRAIN_ACK_DELAY", "2")
    with pytest.raises(ConfigError, match="IDP_AUDIT_DRAIN_ACK_DELAY is a test hook"):
        load_config("production")
