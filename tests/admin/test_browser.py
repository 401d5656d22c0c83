"""The whole story in a real browser: an administrator registers a relying system through the
console, and a citizen logs in to that system with it (code flow with PKCE), the code being
exchanged at the token endpoint with the secret the console showed once."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from flask import Flask, request

from idp.services.accounts.records import NewAccount, create_account

from ..conftest import DEFAULT_PASSWORD
from ..helpers import CAPTCHA, TOTP_SECRETS, enrolment_url, totp_code
from ..live import chromium_page, free_port, serve


def _relying_system() -> Flask:
    """A throwaway relying system: its callback only says what it received."""
    rp = Flask("throwaway-rp")

    @rp.get("/cb")
    def callback():
        return f"<h1>received</h1><p id='state'>{request.args.get('state', '')}</p>"

    return rp


def _log_in(page, username: str) -> None:
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码", exact=True).fill(DEFAULT_PASSWORD)
    page.get_by_label("验证码").fill(CAPTCHA)
    page.get_by_role("button", name="登录").click()


def _enrol_second_factor(page, app, provider: str, username: str) -> None:
    """A new administrator opens the enrolment link they were given, signs in with the password,
    scans the QR code (here: reads the secret), types a code and keeps the recovery codes."""
    # every request rewrites the server-side session (its idle expiry is refreshed): let the page
    # before this one finish its own requests (favicon, captcha) so none writes back a session
    # older than the link's
    page.wait_for_load_state("networkidle")
    page.goto(provider + enrolment_url(app, username))
    page.wait_for_url(f"{provider}/login")
    _log_in(page, username)
    page.wait_for_url(f"{provider}/mfa/setup")
    TOTP_SECRETS[username] = page.locator("#totp-secret").inner_text().strip()
    page.get_by_label("应用显示的6位验证码").fill(totp_code(username))
    page.get_by_role("button", name="完成绑定").click()
    page.wait_for_url(f"{provider}/mfa/recovery-codes")
    assert page.locator("#recovery-codes li").count() == 10
    page.get_by_role("link", name="我已保存，继续").click()


@pytest.mark.browser
def test_register_a_relying_system_in_the_console_and_log_in_with_it(live_server):
    provider = live_server.url
    with live_server.app.app_context():
        create_account(NewAccount(username="admin01", password=DEFAULT_PASSWORD, name="管理员"),
                       real_name_verified=False, role="admin")
        citizen = create_account(
            NewAccount(username="kaosheng08", password=DEFAULT_PASSWORD, name="王𠮷", id_type="resident_id",
                       id_number="440304199001011233", phone="13900139000"),
            real_name_verified=True,
        )
        citizen_sub = citizen.sub

    rp_port = free_port()
    redirect_uri = f"http://127.0.0.1:{rp_port}/cb"
    with serve(_relying_system(), rp_port), chromium_page() as page:
        # -- the administrator -------------------------------------------------------------
        page.goto(f"{provider}/admin/")
        page.wait_for_url(f"{provider}/login")
        _enrol_second_factor(page, live_server.app, provider, "admin01")
        page.wait_for_url(f"{provider}/admin/")
        page.get_by_role("link", name="应用系统管理").first.click()
        page.get_by_role("link", name="新增应用系统").click()
        page.get_by_label("应用系统名称").fill("职称评审系统")
        page.get_by_label("回调地址", exact=True).fill(redirect_uri)
        page.get_by_label("realname：", exact=False).check()
        page.get_by_label("操作原因").fill("工单 OA-2026-031 新系统接入")
        page.get_by_role("button", name="保存").click()
        page.get_by_text("应用系统已创建").wait_for()
        client_id = page.locator("#client-id").inner_text().strip()
        client_secret = page.locator("#client-secret").inner_text().strip()
        assert len(client_id) >= 16 and len(client_secret) >= 40
        page.get_by_role("link", name="我已保存，查看应用系统").click()
        assert "职称评审系统" in page.content() and "已设置（仅保存摘要）" in page.content()
        assert client_secret not in page.content()

        # -- a citizen, in a fresh session, logs in to the new system -----------------------
        page.context.clear_cookies()
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
        page.goto(f"{provider}/oauth/authorize?" + urlencode({
            "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
            "scope": "openid profile realname", "state": state, "nonce": nonce,
            "code_challenge": challenge, "code_challenge_method": "S256",
        }))
        page.wait_for_url(f"{provider}/login")
        _log_in(page, "kaosheng08")
        page.get_by_text("职称评审系统").first.wait_for()  # the consent page: a third-party system
        assert "实名认证信息" in page.content()
        page.get_by_role("button", name="同意授权").click()
        page.wait_for_url(f"{redirect_uri}?*")
        assert page.locator("#state").inner_text() == state
        params = {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}
        assert params["iss"] == provider and params["state"] == state

    # -- the relying system exchanges the code with the secret it was shown ------------------
    tokens = requests.post(f"{provider}/oauth/token", data={
        "grant_type": "authorization_code", "code": params["code"], "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }, auth=(client_id, client_secret), timeout=10)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    from joserfc import jwt
    from joserfc.jwk import KeySet

    discovery = requests.get(f"{provider}/.well-known/openid-configuration", timeout=10).json()
    keys = KeySet.import_key_set(requests.get(discovery["jwks_uri"], timeout=10).json())
    claims = jwt.decode(body["id_token"], keys).claims
    audience = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    assert claims["iss"] == provider and audience == [client_id] and claims["nonce"] == nonce
    assert claims["sub"] == citizen_sub
    userinfo = requests.get(discovery["userinfo_endpoint"], headers={"Authorization": f"Bearer {body['access_token']}"},
                            timeout=10).json()
    assert userinfo["sub"] == citizen_sub and userinfo["name"] == "王𠮷"
    assert userinfo["id_number"] == "440304199001011233"  # realname: allowed by the administrator

    # a wrong secret is refused: the console showed the real one
    wrong = requests.post(f"{provider}/oauth/token", data={"grant_type": "authorization_code", "code": "x",
                                                           "redirect_uri": redirect_uri},
                          auth=(client_id, client_secret[:-2] + "xx"), timeout=10)
    assert wrong.status_code == 401
