"""The wizard with the bank platform down or slow: the message, nothing saved, the form kept."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from idp.extensions import db
from idp.models import AuditEvent, User
from idp.sandbox.bank import BankSandbox, load_records

from ..conftest import clean_external_db, make_app
from ..live import free_port, serve
from .conftest import CITIZENS, Wizard, field_errors, page_fields

UNAVAILABLE = "银行核验服务暂不可用，请稍后再试"


@pytest.fixture
def app_with_bank(keys_dir):
    apps = []

    def make(url: str, timeout: float = 2.0):
        app = make_app(keys_dir, BANK_URL=url, BANK_SECRET="outage-secret", BANK_TIMEOUT=timeout)
        apps.append(app)
        return app

    yield make
    for app in apps:
        clean_external_db(app)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def _attempt(app):
    wizard = Wizard(app.test_client())
    demo = CITIZENS["demo"]
    wizard.through_identity(demo)
    wizard.send_sms(demo.phone)
    return wizard, wizard.verification(demo)


def _assert_nothing_saved(app, response):
    assert response.status_code == 503
    assert UNAVAILABLE in field_errors(response.data)
    kept = page_fields(response.data)
    assert kept["card_number"] == CITIZENS["demo"].card_number and kept["phone"] == CITIZENS["demo"].phone
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 0
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.event == "register")).one()
        assert (event.outcome, event.details["reason"]) == ("error", "bank_unavailable")


def test_bank_down(app_with_bank):
    app = app_with_bank(f"http://127.0.0.1:{free_port()}")  # connection refused
    _, response = _attempt(app)
    _assert_nothing_saved(app, response)


def test_bank_slow(app_with_bank):
    sandbox = BankSandbox(load_records(), "outage-secret", latency=2.0)
    port = free_port()
    with serve(sandbox, port) as url:
        app = app_with_bank(url, timeout=0.4)
        started = time.monotonic()
        wizard, response = _attempt(app)
        assert time.monotonic() - started < 2.0
        _assert_nothing_saved(app, response)
        # once the platform answers again the same flow completes (the phone is already proven)
        sandbox.latency = 0
        done = wizard.verification(CITIZENS["demo"], code="")
        assert done.status_code == 302 and done.headers["Location"] == "/register/done"
        with app.app_context():
            assert db.session.scalar(select(func.count()).select_from(User)) == 1
