"""Redis killed or frozen: the platform's own 503 page or a JSON ``temporarily_unavailable``,
within about a second, and a registration that Redis failed after the account was saved says so."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from idp.extensions import db
from idp.models import User

from ..conftest import DEFAULT_PASSWORD
from ..helpers import login
from ..oauth.conftest import CodeFlow, RegisteredClient
from ..register.conftest import CITIZENS, Wizard
from .conftest import Timer, add_citizen, assert_unavailable_json, assert_unavailable_page, count_users

pytestmark = pytest.mark.faults


def _signed_in(app):
    add_citizen(app)
    browser = app.test_client()
    assert login(browser, "zhangsan", DEFAULT_PASSWORD).status_code == 302
    assert browser.get("/account/").status_code == 200
    return browser


def _access_token(app, browser) -> str:
    from idp.services.admin.clients import ClientSpec, create_client

    with app.app_context():
        client, secret = create_client(ClientSpec(name="考生服务系统", redirect_uris=["https://rp.example.test/cb"],
                                                  scope="openid profile", first_party=True))
        rp = RegisteredClient(client.client_id, secret, "https://rp.example.test/cb")
    return CodeFlow(browser, rp).tokens()["access_token"]


@pytest.mark.parametrize("fault", ["kill", "freeze"])
def test_pages_and_apis_answer_503_fast(fault_app, redis_proxy, fault):
    browser = _signed_in(fault_app)
    token = _access_token(fault_app, browser)
    getattr(redis_proxy, fault)()

    with Timer() as page:  # the session itself cannot be loaded
        response = browser.get("/account/")
    assert_unavailable_page(response)
    assert "Set-Cookie" not in response.headers  # nothing saved, the citizen's session intact
    with Timer() as fresh:  # no session yet: the login page needs Redis for its captcha
        response = fault_app.test_client().get("/login")
    assert_unavailable_page(response)
    with Timer() as api:  # the revocation check of userinfo
        response = fault_app.test_client().get("/oauth/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert_unavailable_json(response)
    assert response.headers["Retry-After"]
    with Timer() as probe:
        assert fault_app.test_client().get("/healthz").status_code == 200
    print(f"\nRedis {fault}: page {page.seconds:.2f}s, fresh page {fresh.seconds:.2f}s, "
          f"API {api.seconds:.2f}s, /healthz {probe.seconds:.3f}s")
    # a freeze costs one socket timeout (1 s here), not several retries
    bound = 1.0 if fault == "kill" else 2.5  # generous: the machine may be busy
    assert max(page.seconds, fresh.seconds, api.seconds) < bound
    assert probe.seconds < 0.5

    redis_proxy.revive() if fault == "kill" else redis_proxy.thaw()
    assert browser.get("/account/").status_code == 200  # back, still signed in


def test_readiness_says_which_store_is_down(fault_app, redis_proxy):
    client = fault_app.test_client()
    assert client.get("/readyz").status_code == 200
    redis_proxy.freeze()
    with Timer() as probe:
        response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.get_json()["checks"]
    # the probe's deadline and Redis' socket timeout are both 1 s: either may end it first
    assert checks.pop("redis") in ("timeout", "TimeoutError")
    assert checks == {"database": "ok", "signing_key": "ok"}
    assert probe.seconds < 2.5


@pytest.mark.parametrize("fault", ["kill", "freeze"])
def test_registration_whose_account_was_saved_says_so(fault_app, redis_proxy, database, fault):
    """Redis fails right after the account's transaction commits (finishing the flow, starting
    the session): the citizen learns the account exists instead of an error, and a second try
    would have said 证件已被使用."""
    wizard = Wizard(fault_app.test_client())
    demo = CITIZENS["demo"]
    wizard.through_identity(demo)
    wizard.send_sms(demo.phone)

    inserted = []
    with fault_app.app_context():
        session_factory = db.session.session_factory

    def _user_inserted(session, flush_context):
        inserted.extend(o for o in session.new if isinstance(o, User))

    def _after_commit(session):
        if inserted:
            getattr(redis_proxy, fault)()

    event.listen(session_factory, "after_flush", _user_inserted)
    event.listen(session_factory, "after_commit", _after_commit)
    try:
        with Timer() as took:
            response = wizard.verification(demo)
    finally:
        event.remove(session_factory, "after_flush", _user_inserted)
        event.remove(session_factory, "after_commit", _after_commit)
    assert inserted, "the account was never written"
    body = response.data.decode()
    assert response.status_code == 200, body[:500]
    assert "注册成功" in body and "citizen2026" in body and "无需重新注册" in body
    assert "证件已被使用" not in body
    assert count_users(database) == 1
    assert took.seconds < 3.0


def test_registration_that_failed_before_the_account_says_busy(fault_app, redis_proxy, database):
    wizard = Wizard(fault_app.test_client())
    demo = CITIZENS["demo"]
    wizard.through_identity(demo)
    wizard.send_sms(demo.phone)
    code = wizard.outbox_code(demo.phone)
    page = wizard.client.get("/register/verification")
    from ..register.conftest import page_fields

    fields = page_fields(page.data)
    fields.update(bank_code=demo.bank_code, card_number=demo.card_number, phone=demo.phone, consent="y", sms_code=code,
                  submit="1")
    redis_proxy.kill()
    response = wizard.client.post("/register/verification", data=fields)
    assert_unavailable_page(response)
    assert count_users(database) == 0
