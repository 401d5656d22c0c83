"""WebAuthn through Chromium's virtual authenticator (DevTools protocol, through Playwright's CDP
session): a new administrator enrols a passkey with the enrolment link, then signs in with the
password and the passkey and opens the console."""

from __future__ import annotations

import pytest

from idp.extensions import db
from idp.models import AuditEvent, SecondFactor
from idp.services.accounts.records import NewAccount, create_account

from ..conftest import DEFAULT_PASSWORD, TEST_DATABASE_URL, clean_external_db, make_app
from ..helpers import CAPTCHA, enrolment_url
from ..live import chromium_page, free_port, serve


@pytest.fixture
def localhost_server(keys_dir, tmp_path):
    """The provider with its issuer on http://localhost:<port>: an IP address cannot be a WebAuthn
    relying-party id, a host name can (and localhost is a secure context without TLS)."""
    port = free_port()
    overrides = dict(ISSUER=f"http://localhost:{port}")
    if not TEST_DATABASE_URL:
        overrides["DATABASE_URL"] = f"sqlite:///{tmp_path / 'webauthn.sqlite'}"
    app = make_app(keys_dir, **overrides)
    with serve(app, port):
        yield app, f"http://localhost:{port}"
    clean_external_db(app)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _password(page, username: str) -> None:
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码", exact=True).fill(DEFAULT_PASSWORD)
    page.get_by_label("验证码").fill(CAPTCHA)
    page.get_by_role("button", name="登录").click()


def _virtual_authenticator(page) -> None:
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True, "automaticPresenceSimulation": True,
    }})


@pytest.mark.browser
def test_enrol_a_passkey_and_sign_in_with_it(localhost_server):
    app, provider = localhost_server
    with app.app_context():
        create_account(NewAccount(username="admin02", password=DEFAULT_PASSWORD, name="管理员"),
                       real_name_verified=False, role="admin")
    link = enrolment_url(app, "admin02")
    with chromium_page() as page:
        _virtual_authenticator(page)
        # -- enrolment: the link, the password, the passkey ------------------------------------
        page.goto(provider + link)
        page.wait_for_url(f"{provider}/login")
        _password(page, "admin02")
        page.wait_for_url(f"{provider}/mfa/setup")
        page.get_by_label("名称（可选）").last.fill("办公电脑")
        page.get_by_role("button", name="添加通行密钥").click()
        page.wait_for_url(f"{provider}/mfa/recovery-codes")
        assert page.locator("#recovery-codes li").count() == 10
        page.get_by_role("link", name="我已保存，继续").click()
        page.goto(f"{provider}/admin/")
        assert page.url == f"{provider}/admin/"

        # -- a new session: password, then the passkey -----------------------------------------
        page.context.clear_cookies()
        page.goto(f"{provider}/admin/users")
        page.wait_for_url(f"{provider}/login")
        _password(page, "admin02")
        page.wait_for_url(f"{provider}/mfa/verify")
        page.get_by_role("button", name="使用通行密钥验证").click()
        page.wait_for_url(f"{provider}/admin/users")
        page.fill("input[name=q]", "admin")  # the search is a POST: a typed term never lands in a URL
        page.get_by_role("button", name="查询").click()
        page.wait_for_load_state()
        assert "admin02" in page.content()

    with app.app_context():
        factor = db.session.scalar(db.select(SecondFactor))
        assert factor.kind == "webauthn" and factor.label == "办公电脑" and factor.sign_count >= 1
        verified = db.session.scalars(db.select(AuditEvent).filter_by(event="mfa.verified")).all()
        assert [(e.outcome, e.details["method"]) for e in verified] == [("success", "webauthn")]
        search = db.session.scalars(db.select(AuditEvent).filter_by(event="admin.user_search")).one()
        assert search.amr == ["pwd", "hwk", "mfa"]  # a key that cannot leave its device
