"""The bank verification platform down or slow, the SMS gateway down: on PostgreSQL and a real
Redis, the citizen gets the service's own message, fast, and nothing is written."""

from __future__ import annotations

import socket
import threading

import pytest

from idp.sandbox.bank import BankSandbox, load_records

from ..live import free_port, serve
from ..register.conftest import CITIZENS, Wizard, field_errors
from .conftest import Timer, count_users

pytestmark = pytest.mark.faults

BANK_UNAVAILABLE = "银行核验服务暂不可用，请稍后再试"
SMS_UNAVAILABLE = "短信发送失败，请稍后再试"


def _at_step_three(app):
    wizard = Wizard(app.test_client())
    wizard.through_identity(CITIZENS["demo"])
    return wizard


def _bank_attempt(app):
    wizard = _at_step_three(app)
    demo = CITIZENS["demo"]
    assert wizard.send_sms(demo.phone).status_code == 200
    with Timer() as took:
        response = wizard.verification(demo)
    return response, took.seconds


def test_bank_down(make_fault_app, pg_proxy, redis_proxy, database):
    app = make_fault_app(pg_proxy, redis_proxy, BANK_URL=f"http://127.0.0.1:{free_port()}",
                         BANK_SECRET="outage-secret", BANK_TIMEOUT=1.0)
    response, seconds = _bank_attempt(app)
    assert response.status_code == 503
    assert BANK_UNAVAILABLE in field_errors(response.data)
    assert seconds < 1.0
    assert count_users(database) == 0


def test_bank_slow(make_fault_app, pg_proxy, redis_proxy, database):
    sandbox = BankSandbox(load_records(), "outage-secret", latency=3.0)
    with serve(sandbox, free_port()) as url:
        app = make_fault_app(pg_proxy, redis_proxy, BANK_URL=url, BANK_SECRET="outage-secret", BANK_TIMEOUT=0.5)
        response, seconds = _bank_attempt(app)
    assert response.status_code == 503
    assert BANK_UNAVAILABLE in field_errors(response.data)
    assert seconds < 2.0  # the bank timeout, not the bank's latency
    assert count_users(database) == 0


@pytest.fixture
def sms_gateway_down():
    """A port that accepts and at once resets: the gateway is gone."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stop = threading.Event()

    def reset_all():
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (socket.timeout, OSError):
                continue
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            conn.close()

    thread = threading.Thread(target=reset_all, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/send"
    stop.set()
    thread.join(timeout=2)
    listener.close()


def test_sms_gateway_down(make_fault_app, pg_proxy, redis_proxy, database, sms_gateway_down):
    app = make_fault_app(pg_proxy, redis_proxy, SMS_BACKEND="http", SMS_URL=sms_gateway_down, SMS_KEY="k",
                         SMS_TIMEOUT=1.0)
    wizard = _at_step_three(app)
    with Timer() as took:
        response = wizard.send_sms(CITIZENS["demo"].phone)
    assert response.status_code == 503
    assert SMS_UNAVAILABLE in response.data.decode()
    assert took.seconds < 2.0
    # and 下一步 without a code goes nowhere: no account
    demo = CITIZENS["demo"]
    refused = wizard.verification(demo, code="")
    assert refused.status_code == 400
    assert count_users(database) == 0
