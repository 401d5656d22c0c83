"""Front-channel logout in a real browser: the logout page's hidden iframe really loads the
relying system's front-channel logout URI (with iss and sid), the CSP lets it, and the page then
goes on to the post-logout redirect URI."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from flask import Flask, request
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.services.accounts.records import NewAccount, create_account
from idp.services.admin.clients import ClientSpec, create_client

from ..conftest import DEFAULT_PASSWORD
from ..helpers import CAPTCHA
from ..live import chromium_page, free_port, serve


class RelyingSystem:
    """A relying system on its own port that records what reaches its front-channel logout URI."""

    def __init__(self) -> None:
        self.logouts: list[dict] = []
        self.logged_out = threading.Event()
        self.app = Flask("frontchannel-rp")

        @self.app.get("/cb")
        def callback():
            return "<h1>signed in</h1>"

        @self.app.get("/fc-logout")
        def frontchannel_logout():
            self.logouts.append({"args": request.args.to_dict(), "dest": request.headers.get("Sec-Fetch-Dest")})
            self.logged_out.set()
            return "<p>local session ended</p>"

        @self.app.get("/bye")
        def bye():
            return "<h1 id='bye'>已退出本系统</h1>"


@pytest.mark.browser
def test_the_logout_page_loads_the_front_channel_uri_in_an_iframe(live_server):
    provider = live_server.url
    rp = RelyingSystem()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with live_server.app.app_context():
        create_account(NewAccount(username="kaosheng21", password=DEFAULT_PASSWORD, name="李娜",
                                  id_type="resident_id", id_number="440305199203157894", phone="13700137021"),
                       real_name_verified=True)
        client, secret = create_client(ClientSpec(
            name="职业技能鉴定系统", redirect_uris=[f"{base}/cb"], post_logout_redirect_uris=[f"{base}/bye"],
            scope="openid profile", first_party=True, frontchannel_logout_uri=f"{base}/fc-logout",
            frontchannel_logout_session_required=True))
        client_id = client.client_id

    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    with serve(rp.app, port), chromium_page() as page:
        refused_frames: list[str] = []
        page.on("console", lambda message: refused_frames.append(message.text)
                if "Content Security Policy" in message.text else None)
        page.goto(f"{provider}/oauth/authorize?" + urlencode({
            "response_type": "code", "client_id": client_id, "redirect_uri": f"{base}/cb", "scope": "openid profile",
            "state": "fc-state", "nonce": "fc-nonce", "code_challenge": challenge, "code_challenge_method": "S256"}))
        page.wait_for_url(f"{provider}/login")
        page.get_by_label("用户名").fill("kaosheng21")
        page.get_by_label("密码", exact=True).fill(DEFAULT_PASSWORD)
        page.get_by_label("验证码").fill(CAPTCHA)
        page.get_by_role("button", name="登录").click()
        page.wait_for_url(f"{base}/cb?*")
        code = parse_qs(urlsplit(page.url).query)["code"][0]
        tokens = requests.post(f"{provider}/oauth/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": f"{base}/cb",
            "code_verifier": verifier}, auth=(client_id, secret), timeout=10).json()
        keys = KeySet.import_key_set(requests.get(f"{provider}/.well-known/jwks.json", timeout=10).json())
        sid = jwt.decode(tokens["id_token"], keys).claims["sid"]
        assert not rp.logouts

        # the relying system's 退出: RP-initiated logout with its ID token
        page.goto(f"{provider}/oauth/logout?" + urlencode({
            "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": f"{base}/bye", "state": "s-bye"}))
        page.wait_for_url(f"{base}/bye?state=s-bye")  # the page went on by itself
        assert page.locator("#bye").inner_text() == "已退出本系统"
        assert rp.logged_out.wait(5)
        assert rp.logouts == [{"args": {"iss": provider, "sid": sid}, "dest": "iframe"}]
        assert refused_frames == []

        # the platform's login is over too: the next authorization asks for a password again
        page.goto(f"{provider}/oauth/authorize?" + urlencode({
            "response_type": "code", "client_id": client_id, "redirect_uri": f"{base}/cb", "scope": "openid profile",
            "state": "again", "code_challenge": challenge, "code_challenge_method": "S256"}))
        page.wait_for_url(f"{provider}/login")
