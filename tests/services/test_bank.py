"""``BankVerifier`` (the real HTTP adapter) against the sandbox platform on a real HTTP server:
every outcome, the signatures both ways, replay, the platform down or slow."""

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
from stdnum import luhn
from stdnum.cn import ric
from werkzeug.wrappers import Response

from idp.sandbox import DEMO_CITIZEN
from idp.sandbox.bank import BankSandbox, load_records
from idp.services.verification import bank as bank_api
from idp.services.verification.bank import BankCheck, BankOutcome, BankUnavailable, BankVerifier
from idp.services.verification.banks import BANKS

from ..live import free_port, serve

SECRET = "test-bank-secret"
RECORDS = load_records()


@contextmanager
def sandbox_server(**kwargs):
    sandbox = BankSandbox(RECORDS, SECRET, **kwargs)
    port = free_port()
    with serve(sandbox, port) as url:
        yield url, sandbox


@pytest.fixture
def bank():
    with sandbox_server() as (url, sandbox):
        yield BankVerifier(url, SECRET, timeout=5.0), sandbox


def check_for(record, **changes) -> BankCheck:
    values = dict(bank=record.bank, card_number=record.card_number, name=record.name, id_type=record.id_type,
                  id_number=record.id_number, phone=record.phone)
    values.update(changes)
    return BankCheck(**values)


def record(**where):
    return next(r for r in RECORDS if all(getattr(r, k) == v for k, v in where.items()))


# -- the data file ------------------------------------------------------------------------------------
def test_sandbox_data_covers_what_registration_needs():
    usable = {r.bank for r in RECORDS if r.card_type in ("debit", "social_security") and r.status == "active"}
    assert usable == set(BANKS)  # one usable card per bank, at least
    assert any(r.card_type == "credit" for r in RECORDS)
    assert any(r.card_type == "social_security" for r in RECORDS)
    assert any(r.status == "inactive" for r in RECORDS)
    assert any("phone_mismatch" in r.note for r in RECORDS)
    assert any(any(ord(ch) > 0xFFFF for ch in r.name) for r in RECORDS)  # 𠮷
    assert any("·" in r.name for r in RECORDS)
    for r in RECORDS:
        if r.id_type == "resident_id":
            assert ric.is_valid(r.id_number), r.id_number  # GB 11643, full python-stdnum check
        if r.card_number.startswith("62"):
            assert luhn.is_valid(r.card_number), r.card_number
    assert len({(r.bank, r.card_number) for r in RECORDS}) == len(RECORDS)


def test_demo_citizen_is_in_the_sandbox():
    demo = record(demo=True)
    assert (DEMO_CITIZEN.name, DEMO_CITIZEN.id_number, DEMO_CITIZEN.card_number, DEMO_CITIZEN.phone,
            DEMO_CITIZEN.bank_code) == (demo.name, demo.id_number, demo.card_number, demo.phone, demo.bank)
    assert DEMO_CITIZEN.birthdate == ric.get_birth_date(demo.id_number)
    assert "4403" not in repr(DEMO_CITIZEN)


# -- outcomes over HTTP --------------------------------------------------------------------------------
def test_every_bank_matches_its_cardholder(bank):
    verifier, sandbox = bank
    for r in RECORDS:
        if r.card_type != "credit" and r.status == "active":
            assert verifier.verify(check_for(r)) is BankOutcome.MATCH, r.note
    assert sandbox.calls == sum(1 for r in RECORDS if r.card_type != "credit" and r.status == "active")


def test_identity_mismatch_on_any_of_name_type_number(bank):
    verifier, _ = bank
    r = record(demo=True)
    for changes in ({"name": "王晓明"}, {"id_type": "passport"}, {"id_number": "440304199003072144"}):
        assert verifier.verify(check_for(r, **changes)) is BankOutcome.IDENTITY_MISMATCH


def test_names_compare_exactly_with_rare_characters(bank):
    verifier, _ = bank
    r = next(r for r in RECORDS if "𠮷" in r.name)
    assert verifier.verify(check_for(r)) is BankOutcome.MATCH
    assert verifier.verify(check_for(r, name=r.name.replace("𠮷", "吉"))) is BankOutcome.IDENTITY_MISMATCH
    dot = next(r for r in RECORDS if "·" in r.name)
    assert verifier.verify(check_for(dot, name=dot.name.replace("·", ""))) is BankOutcome.IDENTITY_MISMATCH


def test_phone_mismatch(bank):
    verifier, _ = bank
    r = next(r for r in RECORDS if "phone_mismatch" in r.note)
    assert verifier.verify(check_for(r, phone="13700137012")) is BankOutcome.PHONE_MISMATCH


def test_card_outcomes(bank):
    verifier, _ = bank
    assert verifier.verify(check_for(record(card_type="credit"))) is BankOutcome.CARD_NOT_DEBIT
    assert verifier.verify(check_for(record(status="inactive"))) is BankOutcome.CARD_INACTIVE
    assert verifier.verify(check_for(record(demo=True), card_number="6217000000000000004")) is BankOutcome.CARD_NOT_FOUND
    assert verifier.verify(check_for(record(demo=True), bank="ICBC")) is BankOutcome.CARD_NOT_FOUND


def test_each_outcome_raises_its_typed_error():
    assert bank_api.raise_for(BankOutcome.MATCH) is None
    for outcome, cls in bank_api.FAILURES.items():
        with pytest.raises(cls) as caught:
            bank_api.raise_for(outcome)
        assert caught.value.outcome is outcome and caught.value.message
    assert set(bank_api.FAILURES) == set(BankOutcome) - {BankOutcome.MATCH}


# -- signatures and replay -----------------------------------------------------------------------------
def test_wrong_secret_is_refused_by_the_platform():
    with sandbox_server() as (url, sandbox):
        with pytest.raises(BankUnavailable):
            BankVerifier(url, "not-the-secret", timeout=5).verify(check_for(record(demo=True)))
        assert sandbox.calls == 0


def _signed_post(url: str, body: bytes, *, request_id: str, timestamp: int | None = None):
    ts = str(int(timestamp if timestamp is not None else time.time()))
    signature = bank_api.request_signature(SECRET, "POST", bank_api.VERIFY_PATH, ts, request_id, body)
    return requests.post(url + bank_api.VERIFY_PATH, data=body, timeout=5, headers={
        bank_api.TIMESTAMP_HEADER: ts, bank_api.REQUEST_ID_HEADER: request_id, bank_api.SIGNATURE_HEADER: signature,
        "Content-Type": "application/json"})


def test_replayed_or_stale_requests_are_refused():
    with sandbox_server() as (url, sandbox):
        r = record(demo=True)
        body = json.dumps({"request_id": "abc123", "bank": r.bank, "card_number": r.card_number, "name": r.name,
                           "id_type": r.id_type, "id_number": r.id_number, "phone": r.phone}).encode()
        first = _signed_post(url, body, request_id="abc123")
        assert first.status_code == 200 and first.json()["outcome"] == "match"
        again = _signed_post(url, body, request_id="abc123")
        assert again.status_code == 409 and again.json() == {"error": "replayed_request"}
        stale = _signed_post(url, body.replace(b"abc123", b"def456"), request_id="def456",
                             timestamp=time.time() - 3600)
        assert stale.status_code == 401
        tampered = _signed_post(url, body, request_id="ghi789")  # body says another request id
        assert tampered.status_code == 400
        assert sandbox.calls == 1


def _fake_platform(answer: dict | None, *, secret: str | None, status: int = 200):
    """A platform that answers whatever it is told to (a forger, or a broken one)."""

    def app(environ, start_response):
        from werkzeug.wrappers import Request

        request = Request(environ)
        request_id = request.headers.get(bank_api.REQUEST_ID_HEADER, "")
        body = json.dumps({"request_id": request_id, **(answer or {})}).encode()
        response = Response(body, status, content_type="application/json")
        if secret:
            ts = str(int(time.time()))
            response.headers[bank_api.TIMESTAMP_HEADER] = ts
            response.headers[bank_api.SIGNATURE_HEADER] = bank_api.response_signature(secret, status, ts, request_id, body)
        return response(environ, start_response)

    return app


@pytest.mark.parametrize("answer, secret, status", [
    ({"outcome": "match"}, None, 200),  # unsigned
    ({"outcome": "match"}, "someone-else", 200),  # signed by another key
    ({"outcome": "maybe"}, SECRET, 200),  # not in the contract
    ({"outcome": "match"}, SECRET, 500),  # platform error
    ({"outcome": "match"}, SECRET, 302),  # redirects are not followed
])
def test_untrustworthy_answers_are_unavailable(answer, secret, status):
    port = free_port()
    with serve(_fake_platform(answer, secret=secret, status=status), port) as url:
        with pytest.raises(BankUnavailable):
            BankVerifier(url, SECRET, timeout=5).verify(check_for(record(demo=True)))


def test_a_correctly_signed_answer_is_accepted_from_any_implementation():
    port = free_port()
    with serve(_fake_platform({"outcome": "card_inactive"}, secret=SECRET), port) as url:
        assert BankVerifier(url, SECRET, timeout=5).verify(check_for(record(demo=True))) is BankOutcome.CARD_INACTIVE


# -- down and slow ----------------------------------------------------------------------------------------
def test_platform_down_is_unavailable_quickly():
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    with pytest.raises(BankUnavailable) as caught:
        BankVerifier(url, SECRET, timeout=2).verify(check_for(record(demo=True)))
    assert time.monotonic() - started < 2
    assert caught.value.message == "银行核验服务暂不可用，请稍后再试"


def test_platform_slow_times_out_and_is_not_retried():
    with sandbox_server(latency=1.5) as (url, sandbox):
        started = time.monotonic()
        with pytest.raises(BankUnavailable):
            BankVerifier(url, SECRET, timeout=0.3).verify(check_for(record(demo=True)))
        assert time.monotonic() - started < 1.2
        deadline = time.monotonic() + 5
        while sandbox.calls == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        assert sandbox.calls == 1  # the verification reached the platform once, and only once


# -- in-process (BANK_URL empty) ---------------------------------------------------------------------------
def test_in_process_sandbox_runs_the_same_adapter(app):
    with app.app_context():
        verifier = bank_api.bank_verifier()
        assert isinstance(verifier, BankVerifier)
        assert verifier.url == bank_api.IN_PROCESS_URL + bank_api.VERIFY_PATH
        assert verifier.verify(check_for(record(demo=True))) is BankOutcome.MATCH
        assert verifier.verify(check_for(record(demo=True), phone="13900000000")) is BankOutcome.PHONE_MISMATCH
        sandbox = verifier.session.get_adapter(verifier.url).app
        assert sandbox.calls == 2
        assert bank_api.bank_verifier() is verifier  # one per app: keeps its pool


def test_configured_url_talks_http(keys_dir):
    from ..conftest import clean_external_db, make_app

    with sandbox_server() as (url, sandbox):
        app = make_app(keys_dir, BANK_URL=url, BANK_SECRET=SECRET)
        try:
            with app.app_context():
                assert bank_api.bank_verifier().verify(check_for(record(demo=True))) is BankOutcome.MATCH
            assert sandbox.calls == 1
        finally:
            clean_external_db(app)


# -- its own server: idp sandbox bank --port ---------------------------------------------------------------
def test_cli_runs_the_sandbox_as_its_own_server(tmp_path):
    port = free_port()
    env = dict(os.environ, IDP_ENV="development", IDP_KEYS_DIR=str(tmp_path / "keys"),
               IDP_DATABASE_URL=f"sqlite:///{tmp_path / 'cli.sqlite'}", IDP_BANK_SECRET=SECRET, IDP_PII_KEY="22" * 32)
    idp = Path(sys.executable).with_name("idp")
    proc = subprocess.Popen([str(idp), "sandbox", "bank", "--port", str(port)], env=env,
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
        assert health.json() == {"status": "ok", "records": len(RECORDS)}
        assert BankVerifier(url, SECRET, timeout=5).verify(check_for(record(demo=True))) is BankOutcome.MATCH
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
