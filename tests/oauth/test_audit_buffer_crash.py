"""The audit buffer under crashes, with real processes killed by SIGKILL: the drainer in the
middle of a batch, a web server right after it answered.  Every event lands, exactly once.

They need a Redis server that outlives the processes (IDP_TEST_REDIS_URL; CI sets it): the
in-process stand-in dies with its process, so without one they skip.  The database is the one
of IDP_TEST_DATABASE_URL, or a SQLite file the processes share."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from idp.extensions import db, redis_store
from idp.models import AuditEvent
from idp.services.admin.clients import ClientSpec, create_client
from idp.services.audit import events as audit
from idp.services.audit.stream import GROUP, STREAM

from ..conftest import TEST_DATABASE_URL, TEST_REDIS_URL, clean_external_db, make_app
from ..live import free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not TEST_REDIS_URL, reason="needs a real Redis that outlives the killed processes "
                                                   "(IDP_TEST_REDIS_URL)"),
]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def shared(keys_dir, tmp_path):
    """The app of the test and the database URL its subprocesses use."""
    url = TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'shared.sqlite'}"
    app = make_app(keys_dir, DATABASE_URL=url)
    yield app, url
    clean_external_db(app)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


class Idp:
    """``idp …`` in a process of its own, with the test's database, Redis and keys."""

    def __init__(self, keys_dir, database_url: str, log_dir: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
        self.env.update(IDP_ENV="testing", IDP_DATABASE_URL=database_url, IDP_REDIS_URL=TEST_REDIS_URL,
                        IDP_KEYS_DIR=str(keys_dir), IDP_AUDIT_DRAIN_IN_PROCESS="0", PYTHONUNBUFFERED="1")
        self.log_dir = log_dir
        self.count = 0

    def start(self, *args: str, **settings) -> subprocess.Popen:
        self.count += 1
        env = dict(self.env, **{f"IDP_{name}": str(value) for name, value in settings.items()})
        out = open(self.log_dir / f"idp-{self.count}.log", "wb")
        process = subprocess.Popen([sys.executable, "-c", "from idp.cli import main; main()", *args], cwd=ROOT,
                                   env=env, stdout=out, stderr=subprocess.STDOUT)
        process.log = out.name  # type: ignore[attr-defined]
        out.close()
        return process

    def run(self, *args: str, **settings) -> str:
        process = self.start(*args, **settings)
        assert process.wait(timeout=120) == 0, Path(process.log).read_text()
        return Path(process.log).read_text()


def output(process) -> str:
    return Path(process.log).read_text()


def wait_for(condition, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def stored(app, event: str) -> list[str]:
    """Event ids in the table, read on a fresh connection (what another process committed)."""
    with app.app_context(), db.engine.connect() as connection:
        return list(connection.scalars(select(AuditEvent.event_id).where(AuditEvent.event == event)))


def stopped(process, expected_rc: int = 0) -> str:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == expected_rc, output(process)
    return output(process)


def test_a_drainer_killed_mid_batch_and_restarted_writes_every_event_once(shared, keys_dir, tmp_path):
    app, url = shared
    with app.test_request_context():
        ids = {audit.buffer("test.buffered", actor=f"a{i}") for i in range(150)}
    idp = Idp(keys_dir, url, tmp_path)

    # batches of 50; the test hook holds each batch between its commit and its XACK
    first = idp.start("audit", "drain", AUDIT_DRAIN_BATCH=50, AUDIT_DRAIN_ACK_DELAY=10)
    wait_for(lambda: len(stored(app, "test.buffered")) >= 50, "the first batch's commit")
    first.kill()  # SIGKILL: committed, never acknowledged
    first.wait(timeout=10)
    with app.app_context():
        assert redis_store.xpending(STREAM, GROUP)["pending"] == 50, output(first)
    assert len(stored(app, "test.buffered")) == 50

    second = idp.start("audit", "drain", AUDIT_DRAIN_BATCH=50, AUDIT_DRAIN_RECLAIM_IDLE=1)

    def drained() -> bool:
        with app.app_context():
            empty = redis_store.xlen(STREAM) == 0 and redis_store.xpending(STREAM, GROUP)["pending"] == 0
        return empty and len(stored(app, "test.buffered")) == 150

    wait_for(drained, "the restarted drainer")
    log = stopped(second)  # SIGTERM: a clean stop
    assert "took over 50 events" in log and "stopped: 150 events drained" in log, log
    assert sorted(stored(app, "test.buffered")) == sorted(ids)  # each exactly once


def test_a_server_killed_right_after_answering_keeps_its_token_event(shared, keys_dir, tmp_path):
    app, url = shared
    with app.app_context():
        client, secret = create_client(ClientSpec(name="批量服务", client_type="service", scope="openid"))
        client_id = client.client_id
    port = free_port()
    idp = Idp(keys_dir, url, tmp_path)
    server = idp.start("serve", "--port", str(port), ISSUER=f"http://127.0.0.1:{port}")
    try:
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), "the server", timeout=90)
        response = requests.post(f"http://127.0.0.1:{port}/oauth/token", data={"grant_type": "client_credentials"},
                                 auth=(client_id, secret), timeout=10)
        server.kill()  # SIGKILL, right after the answer
        assert response.status_code == 200, response.text
    finally:
        server.kill()
        server.wait(timeout=10)
    jti = _jti(response.json()["access_token"])

    with app.app_context():
        buffered = [json.loads(fields[b"e"]) for _, fields in redis_store.xrange(STREAM)]
    assert [e["details"]["jti"] for e in buffered if e["event"] == "token.issued"] == [jti]

    assert "wrote 1 buffered audit events" in idp.run("audit", "drain", "--once")
    with app.app_context():
        [event] = db.session.scalars(select(AuditEvent).filter_by(event="token.issued")).all()
        assert event.details["jti"] == jti and event.client_id == client_id


def test_audit_list_shows_events_within_a_second(shared, keys_dir, tmp_path):
    app, url = shared
    with app.app_context():
        client, secret = create_client(ClientSpec(name="批量服务", client_type="service", scope="openid"))
        basic = "Basic " + base64.b64encode(f"{client.client_id}:{secret}".encode()).decode()
    drainer = Idp(keys_dir, url, tmp_path).start("audit", "drain")  # the default settings
    try:
        with app.test_request_context():
            audit.buffer("test.buffered", actor="warm-up")
        wait_for(lambda: stored(app, "test.buffered"), "the drainer to start")

        web = app.test_client()
        latencies, jtis = [], []
        for n in range(1, 21):  # a token every ~50 ms: normal load
            response = web.post("/oauth/token", data={"grant_type": "client_credentials"},
                                headers={"Authorization": basic})
            answered = time.monotonic()
            assert response.status_code == 200
            jtis.append(_jti(response.get_json()["access_token"]))
            wait_for(lambda: len(stored(app, "token.issued")) == n, f"token {n} in the log", timeout=5)
            latencies.append(time.monotonic() - answered)
            time.sleep(0.05)
        assert max(latencies) < 1.0, latencies

        listed = app.test_cli_runner().invoke(args=["audit", "list", "--event", "token.issued", "--limit", "100"])
        assert listed.exit_code == 0, listed.output
        assert all(jti in listed.output for jti in jtis)
    finally:
        stopped(drainer)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def _jti(access_token: str) -> str:
    payload = access_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"]
