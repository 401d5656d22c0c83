"""TOTP in a real browser (Chromium through Playwright) with a test clock: a staff member enrols an
authenticator app through the enrolment link, signs in with password + captcha + code, is asked
again before a dangerous console action, and signs in once with a recovery code; a citizen enrols
in 安全中心 and a relying system that asks for the MFA level steps them up."""

from __future__ import annotations

from types import SimpleNamespace
from urllib.parse import parse_qs, urlencode, urlsplit

import pyotp
import pytest
import requests
from flask import Flask
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.extensions import db
from idp.mfa import gate
from idp.models import AuditEvent, User, UserStatus
from idp.services.accounts.records import NewAccount, create_account
from idp.services.admin.clients import ClientSpec, create_client

from ..conftest import DEFAULT_PASSWORD
from ..helpers import CAPTCHA, enrolment_url
from ..live import chromium_page, free_port, serve
from ..oauth.conftest import pkce_pair

ACR_MFA = "urn:hrss:acr:mfa"


def _password(page, username: str) -> None:
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码", exact=True).fill(DEFAULT_PASSWORD)
    page.get_by_label("验证码").fill(CAPTCHA)
    page.get_by_role("button", name="登录").click()


def _enrol_totp(page, clock, label: str | None = None) -> tuple[pyotp.TOTP, list[str]]:
    """On /mfa/setup: scan (read) the secret, answer the current code, keep the recovery codes."""
    assert page.locator("#totp-qr").get_attribute("src").startswith("data:image/svg+xml")
    totp = pyotp.TOTP(page.locator("#totp-secret").inner_text().strip())
    if label:
        page.locator("#totp-enrol-form").get_by_label("名称（可选）").fill(label)
    page.get_by_label("应用显示的6位验证码").fill(totp.at(clock.now))
    page.get_by_role("button", name="完成绑定").click()
    page.wait_for_url("**/mfa/recovery-codes")
    codes = page.locator("#recovery-codes li code").all_inner_texts()
    assert len(codes) == 10 and len(set(codes)) == 10
    return totp, codes


def _answer_code(page, code: str) -> None:
    page.get_by_label("验证码", exact=True).fill(code)
    page.get_by_role("button", name="验证", exact=True).click()


def _disable(page) -> None:
    page.locator("summary", has_text="停用账户").click()
    form = page.locator("details[open] form.action-form")
    form.get_by_label("操作原因").fill("本人申请停用")
    form.get_by_role("button", name="确认停用账户").click()


def _events(app, event: str) -> list[AuditEvent]:
    with app.app_context():
        rows = list(db.session.scalars(db.select(AuditEvent).filter_by(event=event).order_by(AuditEvent.id)))
        for row in rows:
            db.session.expunge(row)
        return rows


@pytest.mark.browser
def test_staff_enrol_totp_sign_in_step_up_and_a_recovery_code(live_server, clock, monkeypatch):
    app, provider = live_server.app, live_server.url
    # the step-up window is measured on the same test clock, so "five minutes later" needs no sleep
    monkeypatch.setattr(gate, "time", SimpleNamespace(time=clock))
    with app.app_context():
        create_account(NewAccount(username="admin03", password=DEFAULT_PASSWORD, name="管理员"),
                       real_name_verified=False, role="admin")
        citizen = create_account(NewAccount(username="kaosheng31", password=DEFAULT_PASSWORD, name="王芳",
                                            id_type="resident_id", id_number="440305199203157894",
                                            phone="13700137031"), real_name_verified=True)
        citizen_sub = citizen.sub
    link = enrolment_url(app, "admin03")
    user_page = f"{provider}/admin/users/{citizen_sub}"

    with chromium_page(width=1280, height=900) as page:
        # -- enrolment: the link, the password and captcha, the authenticator app -----------------
        page.goto(provider + link)
        page.wait_for_url(f"{provider}/login")
        _password(page, "admin03")
        page.wait_for_url(f"{provider}/mfa/setup")
        totp, recovery_codes = _enrol_totp(page, clock)
        page.get_by_role("link", name="我已保存，继续").click()
        page.wait_for_load_state()
        page.goto(f"{provider}/admin/")
        assert page.url == f"{provider}/admin/"

        # -- a new session: password + captcha, then the code of the next time-step ---------------
        page.context.clear_cookies()
        page.goto(user_page)
        page.wait_for_url(f"{provider}/login")
        _password(page, "admin03")
        page.wait_for_url(f"{provider}/mfa/verify")
        assert "密码已验证" in page.content()
        clock.advance(30)  # the code used at enrolment is spent: the app shows the next one
        _answer_code(page, totp.at(clock.now))
        page.wait_for_url(user_page)

        # -- five minutes on, disabling an account asks for the second factor again ---------------
        clock.advance(301)
        _disable(page)
        page.wait_for_url(f"{provider}/mfa/verify")
        assert "该操作需要再次验证您的身份" in page.content()
        with app.app_context():
            assert db.session.scalar(db.select(User).filter_by(sub=citizen_sub)).status == UserStatus.ACTIVE
        _answer_code(page, totp.at(clock.now))
        page.wait_for_url(user_page)
        _disable(page)
        page.wait_for_url(user_page)
        assert page.locator(".card-head .tag").inner_text() == "已停用"

        # -- once without the phone: a recovery code -----------------------------------------------
        page.context.clear_cookies()
        page.goto(f"{provider}/admin/")
        page.wait_for_url(f"{provider}/login")
        _password(page, "admin03")
        page.wait_for_url(f"{provider}/mfa/verify")
        page.get_by_text("无法使用验证器或通行密钥？使用恢复码").click()
        page.get_by_label("恢复码").fill(recovery_codes[0])
        page.get_by_role("button", name="使用恢复码").click()
        page.wait_for_url(f"{provider}/admin/")

    with app.app_context():
        assert db.session.scalar(db.select(User).filter_by(sub=citizen_sub)).status == UserStatus.DISABLED
    verified = [(e.outcome, e.details["method"], e.details["purpose"]) for e in _events(app, "mfa.verified")]
    assert verified == [("success", "totp", "login"), ("success", "totp", "step_up"),
                        ("success", "recovery", "login")]
    disabled = _events(app, "account.disabled")
    assert [(e.actor, e.amr) for e in disabled] == [("admin03", ["pwd", "otp", "mfa"])]


class RelyingSystem:
    """A relying system's callback on its own port: the browser really lands there."""

    def __init__(self) -> None:
        self.app = Flask("mfa-rp")
        self.app.add_url_rule("/cb", "cb", lambda: "<h1 id='rp'>已返回应用系统</h1>")


@pytest.mark.browser
def test_citizen_enrols_in_the_security_centre_and_is_stepped_up_for_a_relying_system(live_server, clock):
    app, provider = live_server.app, live_server.url
    port = free_port()
    callback = f"http://127.0.0.1:{port}/cb"
    with app.app_context():
        citizen = create_account(NewAccount(username="kaosheng32", password=DEFAULT_PASSWORD, name="陈静",
                                            id_type="resident_id", id_number="440305199203157894",
                                            phone="13700137032"), real_name_verified=True)
        citizen_sub = citizen.sub
        client, secret = create_client(ClientSpec(name="职业技能鉴定系统", redirect_uris=[callback],
                                                  scope="openid profile", first_party=True))
        client_id = client.client_id

    verifier, challenge = pkce_pair()
    with serve(RelyingSystem().app, port), chromium_page() as page:
        # -- 安全中心 → 两步验证 → 添加验证方式 --------------------------------------------------------
        page.goto(f"{provider}/login")
        _password(page, "kaosheng32")
        page.wait_for_url(f"{provider}/account/")
        page.get_by_role("link", name="两步验证").click()
        page.wait_for_url(f"{provider}/mfa/")
        assert "您尚未绑定第二因素" in page.content()
        page.get_by_role("link", name="添加验证方式").click()
        page.wait_for_url(f"{provider}/mfa/setup")
        totp, _ = _enrol_totp(page, clock, label="我的手机")
        page.get_by_role("link", name="我已保存，继续").click()
        page.goto(f"{provider}/mfa/")
        assert "我的手机" in page.content() and "剩余恢复码：10" in page.content()

        # -- a relying system asks for the MFA level: the citizen is asked for a code --------------
        page.goto(f"{provider}/oauth/authorize?" + urlencode({
            "response_type": "code", "client_id": client_id, "redirect_uri": callback, "scope": "openid profile",
            "state": "mfa-state", "nonce": "mfa-nonce", "acr_values": ACR_MFA,
            "code_challenge": challenge, "code_challenge_method": "S256"}))
        page.wait_for_url(f"{provider}/mfa/verify")
        clock.advance(30)
        _answer_code(page, totp.at(clock.now))
        page.wait_for_url(f"{callback}?*")
        assert page.locator("#rp").inner_text() == "已返回应用系统"
        got = {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}
        assert got["state"] == "mfa-state"

    tokens = requests.post(f"{provider}/oauth/token", data={
        "grant_type": "authorization_code", "code": got["code"], "redirect_uri": callback,
        "code_verifier": verifier}, auth=(client_id, secret), timeout=10)
    assert tokens.status_code == 200, tokens.text
    keys = KeySet.import_key_set(requests.get(f"{provider}/.well-known/jwks.json", timeout=10).json())
    claims = jwt.decode(tokens.json()["id_token"], keys).claims
    assert claims["sub"] == citizen_sub and claims["nonce"] == "mfa-nonce"
    assert claims["acr"] == ACR_MFA and claims["amr"] == ["pwd", "otp", "mfa"]
    verified = [(e.details["method"], e.details["purpose"]) for e in _events(app, "mfa.verified")]
    assert verified == [("totp", "step_up")]
