"""A slow bank must not starve the node: bank calls are bounded per citizen (across nodes, a
Redis lease) and per worker process, refused at once over either bound, and a call the platform
did not answer spends no budget."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from idp.extensions import db
from idp.sandbox.bank import BankSandbox, load_records
from idp.services.accounts import profile_change
from idp.services.limits import KeyedLimit
from idp.services.verification.bank import (
    CITIZEN_SLOTS,
    BankBusy,
    BankCheck,
    BankCheckInProgress,
    BankIdentityMismatch,
    BankUnavailable,
    bank_verifier,
)
from idp.errors import UserError

from ..conftest import DEFAULT_PASSWORD, TEST_DATABASE_URL, clean_external_db, make_app
from ..helpers import CAPTCHA, form_fields
from ..live import free_port, serve
from ..recovery.conftest import CITIZENS, make_citizen_account
from ..register.conftest import field_errors, page_fields

SECRET = "slow-bank-secret"
RECORDS = load_records()
DEMO = CITIZENS["demo"]
IN_PROGRESS = "银行核验正在进行中，请稍后再试"


def check_of(record) -> BankCheck:
    return BankCheck(bank=record.bank, card_number=record.card_number, name=record.name, id_type=record.id_type,
                     id_number=record.id_number, phone=record.phone)


def _close(app):
    clean_external_db(app)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def slow_bank():
    sandbox = BankSandbox(RECORDS, SECRET, latency=2.0)
    with serve(sandbox, free_port()) as url:
        yield url, sandbox


def _parallel(app, jobs):
    """Run each job in its own thread inside a request context, together; returns results or
    the exceptions raised, and how long each took."""
    barrier = threading.Barrier(len(jobs))

    def run(job):
        with app.test_request_context("/"):
            barrier.wait()
            started = time.monotonic()
            try:
                result = job()
            except Exception as exc:  # noqa: BLE001 - the test inspects it
                result = exc
            finally:
                db.session.remove()
            return result, time.monotonic() - started

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(run, jobs))


def test_one_bank_call_per_citizen_at_a_time(keys_dir, slow_bank):
    url, sandbox = slow_bank
    app = make_app(keys_dir, BANK_URL=url, BANK_SECRET=SECRET, BANK_MAX_CONCURRENT=8)
    try:
        demo = next(r for r in RECORDS if r.demo)
        results = _parallel(app, [lambda: bank_verifier().verify(check_of(demo))] * 6)
        refused = [(r, took) for r, took in results if isinstance(r, BankCheckInProgress)]
        assert len(refused) == 5 and all(took < 1.5 for _, took in refused)  # answered at once
        assert refused[0][0].status == 429 and refused[0][0].message == IN_PROGRESS
        assert sandbox.calls == 1
        with app.test_request_context("/"):
            bank_verifier().verify(check_of(demo))  # the slot was freed
        assert sandbox.calls == 2
    finally:
        _close(app)


def test_calls_per_worker_are_bounded(keys_dir, slow_bank):
    url, sandbox = slow_bank
    app = make_app(keys_dir, BANK_URL=url, BANK_SECRET=SECRET)
    try:
        bound = app.config["BANK_MAX_CONCURRENT"]
        citizens = [r for r in RECORDS if r.card_type != "credit"][: bound + 3]
        results = _parallel(app, [lambda r=r: bank_verifier().verify(check_of(r)) for r in citizens])
        busy = [(r, took) for r, took in results if isinstance(r, BankBusy)]
        assert len(busy) == 3 and all(took < 1.5 for _, took in busy)
        assert busy[0][0].status == 503 and isinstance(busy[0][0], BankUnavailable)
        assert sandbox.calls == bound
    finally:
        _close(app)


def test_a_crashed_worker_frees_its_citizen_slot(app):
    app.config["BANK_SLOT_LEASE"] = 0.5
    with app.test_request_context("/"):
        from idp.services.limits import _script

        # a worker that died mid-call: it took the slot and never gave it back
        assert _script("acquire")(keys=[f"{CITIZEN_SLOTS.namespace}:crashed-citizen"], args=[1, 500, "dead"])
        with pytest.raises(BankCheckInProgress):
            with CITIZEN_SLOTS.held("crashed-citizen"):
                pass
        time.sleep(0.6)
        with CITIZEN_SLOTS.held("crashed-citizen"):
            pass


class FlowBudget(UserError):
    message = "本次最多核验{amount}次"
    status = 429


def test_a_bank_failure_spends_no_budget(keys_dir):
    app = make_app(keys_dir, BANK_URL=f"http://127.0.0.1:{free_port()}", BANK_SECRET=SECRET, BANK_TIMEOUT=0.5,
                   PROFILE_BANK_CHECK_LIMIT="2 per day", TEST_FLOW_BANK_CHECKS="1 per hour")
    try:
        user = make_citizen_account(app, DEMO, "wangxm")
        flow_budget = KeyedLimit("TEST_FLOW_BANK_CHECKS", FlowBudget)
        with app.test_request_context("/"):
            user = db.session.merge(user)
            change = profile_change.ProfileChange(DEMO.name, DEMO.bank_code, DEMO.card_number, DEMO.phone, ("name",))
            for _ in range(4):  # more than either budget: the platform never answered
                with pytest.raises(BankUnavailable):
                    profile_change.verify_with_bank(user, change, charges=(flow_budget.charge("flow-1"),))
            assert profile_change.BANK_CHECKS.used(user.id) == 0
            assert flow_budget.used("flow-1") == 0
    finally:
        _close(app)


def test_an_answered_check_spends_the_budgets(app):
    user = make_citizen_account(app, DEMO, "wangxm")
    app.config["TEST_FLOW_BANK_CHECKS"] = "1 per hour"
    flow_budget = KeyedLimit("TEST_FLOW_BANK_CHECKS", FlowBudget)
    with app.test_request_context("/"):
        user = db.session.merge(user)
        wrong = profile_change.ProfileChange("王大明", DEMO.bank_code, DEMO.card_number, DEMO.phone, ("name",))
        with pytest.raises(BankIdentityMismatch):
            profile_change.verify_with_bank(user, wrong, charges=(flow_budget.charge("flow-2"),))
        assert profile_change.BANK_CHECKS.used(user.id) == 1
        with pytest.raises(FlowBudget) as refused:
            profile_change.verify_with_bank(user, wrong, charges=(flow_budget.charge("flow-2"),))
        assert refused.value.message == "本次最多核验1次"
        assert profile_change.BANK_CHECKS.used(user.id) == 1  # the refused call took nothing else


def test_parallel_profile_changes_of_one_citizen_over_http(keys_dir, tmp_path, slow_bank):
    """Eight 变更用户信息 at once from one citizen: one reaches the bank, seven are told at once."""
    url, sandbox = slow_bank
    port = free_port()
    overrides = dict(ISSUER=f"http://127.0.0.1:{port}", BANK_URL=url, BANK_SECRET=SECRET, BANK_MAX_CONCURRENT=8,
                     LOGIN_IP_LIMIT="1000 per minute", CAPTCHA_IP_LIMIT="1000 per minute")
    if not TEST_DATABASE_URL:
        overrides["DATABASE_URL"] = f"sqlite:///{tmp_path / 'edit.sqlite'}"
    app = make_app(keys_dir, **overrides)
    try:
        user = make_citizen_account(app, DEMO, "wangxm", name="王晓明")
        with serve(app, port) as base:
            sessions = []
            for _ in range(8):
                s = requests.Session()
                fields = form_fields(s.get(f"{base}/login", timeout=10).text)
                fields.update(username=user.username, password=DEFAULT_PASSWORD, captcha=CAPTCHA)
                assert s.post(f"{base}/login", data=fields, timeout=10, allow_redirects=False).status_code == 302
                sessions.append(s)
            forms = []
            for s in sessions:
                fields = page_fields(s.get(f"{base}/account/edit", timeout=10).content)
                fields.update(name=DEMO.name, submit="1")
                forms.append(fields)
            barrier = threading.Barrier(8)

            def post(i):
                barrier.wait()
                started = time.monotonic()
                response = sessions[i].post(f"{base}/account/edit", data=forms[i], timeout=30, allow_redirects=False)
                return response, time.monotonic() - started

            with ThreadPoolExecutor(8) as pool:
                results = list(pool.map(post, range(8)))
            for s in sessions:
                s.close()
        refused = [(r, took) for r, took in results if r.status_code == 429]
        assert len(refused) == 7
        assert all(IN_PROGRESS in field_errors(r.content) and took < 1.5 for r, took in refused)
        assert sandbox.calls == 1
        with app.app_context():
            assert profile_change.BANK_CHECKS.used(user.id) == 1  # the refused ones spent nothing
    finally:
        _close(app)
