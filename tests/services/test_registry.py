"""``RegistryVerifier`` (the enterprise credit registry's HTTP adapter) against the sandbox
registry on a real HTTP server: every outcome, signatures both ways, replay, the registry down or
slow, the in-process wiring, the audit of a check, and ``idp sandbox registry --port``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from stdnum.cn import uscc
from werkzeug.wrappers import Response

from idp.extensions import db
from idp.models import AuditEvent
from idp.sandbox.registry import RegistrySandbox, load_units
from idp.services.verification import bank as signing
from idp.services.verification import registry as registry_api
from idp.services.verification.registry import (
    RegistryOutcome,
    RegistryUnavailable,
    RegistryVerifier,
    UnitCheck,
)

from ..live import free_port, serve

SECRET = "test-registry-secret"
UNITS = load_units()


@contextmanager
def sandbox_server(**kwargs):
    sandbox = RegistrySandbox(UNITS, SECRET, **kwargs)
    port = free_port()
    with serve(sandbox, port) as url:
        yield url, sandbox


@pytest.fixture
def registry():
    with sandbox_server() as (url, sandbox):
        yield RegistryVerifier(url, SECRET, timeout=5.0), sandbox


def unit(**where):
    return next(u for u in UNITS if all(getattr(u, k) == v for k, v in where.items()))


def check_for(u, **changes) -> UnitCheck:
    values = dict(unit_id_type=u.unit_id_type, uscc=u.uscc, unit_name=u.unit_name, legal_rep_name=u.legal_rep_name)
    values.update(changes)
    return UnitCheck(**values)


# -- the data file ----------------------------------------------------------------------------------------
def test_sandbox_units_are_valid_by_gb_32100_and_cover_every_outcome():
    for u in UNITS:
        assert uscc.is_valid(u.uscc), u.uscc
    assert len({u.uscc for u in UNITS}) == len(UNITS)
    assert {u.status for u in UNITS} >= {"active", "deregistered", "revoked"}
    assert sum(u.demo for u in UNITS) == 1 and unit(demo=True).status == "active"
    assert "林晓峰" not in repr(check_for(unit(demo=True)))  # the representative is personal data


# -- outcomes over HTTP --------------------------------------------------------------------------------------
def test_every_active_unit_matches(registry):
    verifier, sandbox = registry
    active = [u for u in UNITS if u.status == "active"]
    for u in active:
        assert verifier.verify(check_for(u)) is RegistryOutcome.MATCH
    assert verifier.verify(check_for(unit(demo=True), uscc=unit(demo=True).uscc.lower())) is RegistryOutcome.MATCH
    assert sandbox.calls == len(active) + 1


def test_unit_name_or_code_mismatch(registry):
    verifier, _ = registry
    demo = unit(demo=True)
    other = next(u for u in UNITS if u.status == "active" and not u.demo)
    assert verifier.verify(check_for(demo, unit_name=other.unit_name)) is RegistryOutcome.UNIT_MISMATCH
    assert verifier.verify(check_for(demo, uscc="91440300MA5F00009" + uscc.calc_check_digit("91440300MA5F00009"))) \
        is RegistryOutcome.UNIT_MISMATCH
    assert verifier.verify(check_for(demo, unit_id_type="org_code")) is RegistryOutcome.UNIT_MISMATCH


def test_representative_mismatch(registry):
    verifier, _ = registry
    assert verifier.verify(check_for(unit(demo=True), legal_rep_name="林晓风")) is RegistryOutcome.REPRESENTATIVE_MISMATCH


def test_deregistered_and_revoked_units(registry):
    verifier, _ = registry
    for status in ("deregistered", "revoked"):
        assert verifier.verify(check_for(unit(status=status))) is RegistryOutcome.DEREGISTERED


def test_each_outcome_raises_its_typed_error_with_the_words_of_the_page():
    assert registry_api.raise_for(RegistryOutcome.MATCH) is None
    words = {
        RegistryOutcome.UNIT_MISMATCH: "单位名称或统一社会信用代码与登记信息不一致",
        RegistryOutcome.REPRESENTATIVE_MISMATCH: "法定代表人（负责人）姓名与登记信息不一致",
        RegistryOutcome.DEREGISTERED: "该单位登记状态为注销或吊销，不能注册",
    }
    for outcome, message in words.items():
        with pytest.raises(registry_api.FAILURES[outcome]) as caught:
            registry_api.raise_for(outcome)
        assert caught.value.message == message and caught.value.reason_code == outcome.value
    assert set(registry_api.FAILURES) == set(RegistryOutcome) - {RegistryOutcome.MATCH}
    assert RegistryUnavailable().message == "单位登记信息核验服务暂不可用，请稍后再试"


# -- signatures and replay -------------------------------------------------------------------------------------
def test_wrong_secret_is_refused_by_the_registry():
    with sandbox_server() as (url, sandbox):
        with pytest.raises(RegistryUnavailable):
            RegistryVerifier(url, "not-the-secret", timeout=5).verify(check_for(unit(demo=True)))
        assert sandbox.calls == 0


def _signed_post(url: str, body: bytes, *, request_id: str, timestamp: float | None = None):
    ts = str(int(timestamp if timestamp is not None else time.time()))
    signature = signing.request_signature(SECRET, "POST", registry_api.VERIFY_PATH, ts, request_id, body)
    return requests.post(url + registry_api.VERIFY_PATH, data=body, timeout=5, headers={
        signing.TIMESTAMP_HEADER: ts, signing.REQUEST_ID_HEADER: request_id, signing.SIGNATURE_HEADER: signature,
        "Content-Type": "application/json"})


def test_replayed_or_stale_requests_are_refused():
    with sandbox_server() as (url, sandbox):
        u = unit(demo=True)
        body = json.dumps({"request_id": "abc123", "unit_id_type": u.unit_id_type, "uscc": u.uscc,
                           "unit_name": u.unit_name, "legal_rep_name": u.legal_rep_name}).encode()
        first = _signed_post(url, body, request_id="abc123")
        assert first.status_code == 200 and first.json()["outcome"] == "match"
        assert _signed_post(url, body, request_id="abc123").status_code == 409
        stale = _signed_post(url, body.replace(b"abc123", b"def456"), request_id="def456",
                             timestamp=time.time() - 3600)
        assert stale.status_code == 401
        assert _signed_post(url, body, request_id="ghi789").status_code == 400
        assert sandbox.calls == 1


def _fake_registry(answer: dict, *, secret: str | None, status: int = 200):
    def app(environ, start_response):
        from werkzeug.wrappers import Request

        request_id = Request(environ).headers.get(signing.REQUEST_ID_HEADER, "")
        body = json.dumps({"request_id": request_id, **answer}).encode()
        response = Response(body, status, content_type="application/json")
        if secret:
            ts = str(int(time.time()))
            response.headers[signing.TIMESTAMP_HEADER] = ts
            response.headers[signing.SIGNATURE_HEADER] = signing.response_signature(secret, status, ts, request_id,
                                                                                   body)
        return response(environ, start_response)

    return app


@pytest.mark.parametrize("answer, secret, status", [
    ({"outcome": "match"}, None, 200),
    ({"outcome": "match"}, "someone-else", 200),
    ({"outcome": "probably"}, SECRET, 200),
    ({"outcome": "match"}, SECRET, 500),
    ({"outcome": "match"}, SECRET, 302),
])
def test_untrustworthy_answers_are_unavailable(answer, secret, status):
    with serve(_fake_registry(answer, secret=secret, status=status), free_port()) as url:
        with pytest.raises(RegistryUnavailable):
            RegistryVerifier(url, SECRET, timeout=5).verify(check_for(unit(demo=True)))


def test_registry_down_is_unavailable_quickly():
    started = time.monotonic()
    with pytest.raises(RegistryUnavailable):
        RegistryVerifier(f"http://127.0.0.1:{free_port()}", SECRET, timeout=2).verify(check_for(unit(demo=True)))
    assert time.monotonic() - started < 2


def test_registry_slow_times_out_and_is_not_retried():
    with sandbox_server(latency=1.5) as (url, sandbox):
        with pytest.raises(RegistryUnavailable):
            RegistryVerifier(url, SECRET, timeout=0.3).verify(check_for(unit(demo=True)))
        deadline = time.monotonic() + 5
        while sandbox.calls == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        assert sandbox.calls == 1


# -- in-process (REGISTRY_URL empty), the audit ------------------------------------------------------------------
def test_in_process_sandbox_runs_the_same_adapter(app):
    with app.app_context():
        verifier = registry_api.registry_verifier()
        assert verifier.url == registry_api.IN_PROCESS_URL + registry_api.VERIFY_PATH
        assert verifier.verify(check_for(unit(demo=True))) is RegistryOutcome.MATCH
        assert registry_api.registry_verifier() is verifier


def test_a_check_is_audited_without_the_units_or_a_persons_data(app):
    demo = unit(demo=True)
    with app.test_request_context("/"):
        registry_api.audited_check(check_for(demo), actor="alice")
        with pytest.raises(registry_api.RegistryRepresentativeMismatch):
            registry_api.audited_check(check_for(demo, legal_rep_name="某某"), actor="alice")
        db.session.commit()
        events = db.session.scalars(db.select(AuditEvent).filter_by(event="registry.check")
                                    .order_by(AuditEvent.id)).all()
        assert [(e.outcome, e.details["reason"]) for e in events] == [
            ("success", "match"), ("failure", "representative_mismatch")]
        stored = json.dumps([e.details for e in events], ensure_ascii=False)
        assert demo.uscc not in stored and demo.unit_name not in stored and demo.legal_rep_name not in stored


def test_an_unavailable_registry_is_audited_and_raised(app):
    app.config["REGISTRY_URL"] = f"http://127.0.0.1:{free_port()}"
    app.extensions.pop("idp_registry", None)
    with app.test_request_context("/"):
        with pytest.raises(RegistryUnavailable):
            registry_api.audited_check(check_for(unit(demo=True)), actor=None)
        db.session.commit()
        event = db.session.scalars(db.select(AuditEvent).filter_by(event="registry.check")).one()
        assert (event.outcome, event.details["reason"]) == ("failure", "registry_unavailable")


# -- its own server: idp sandbox registry --port -----------------------------------------------------------------
def test_cli_runs_the_registry_as_its_own_server(tmp_path):
    port = free_port()
    env = dict(os.environ, IDP_ENV="development", IDP_KEYS_DIR=str(tmp_path / "keys"),
               IDP_DATABASE_URL=f"sqlite:///{tmp_path / 'cli.sqlite'}", IDP_REGISTRY_SECRET=SECRET,
               IDP_PII_KEY="22" * 32)
    idp = Path(sys.executable).with_name("idp")
    proc = subprocess.Popen([str(idp), "sandbox", "registry", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                health = requests.get(url + "/health", timeout=1)
                break
            except requests.ConnectionError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline, "sandbox did not start"
                time.sleep(0.2)
        assert health.json() == {"status": "ok", "units": len(UNITS)}
        assert RegistryVerifier(url, SECRET, timeout=5).verify(check_for(unit(demo=True))) is RegistryOutcome.MATCH
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
