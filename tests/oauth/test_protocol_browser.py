"""PAR + JAR + DPoP + pairwise subjects with a real browser in the middle: the relying system
(Authlib's client, joserfc for the request object and the DPoP proofs) pushes a signed request,
Chromium opens the short authorization URL, signs in and consents; the relying system exchanges
the code with a proof of its key, calls userinfo with DPoP, and sees a sub of its own sector."""

from __future__ import annotations

import secrets
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from flask import Flask
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from idp.services.accounts.records import NewAccount, create_account
from idp.services.admin.clients import ClientSpec, create_client

from ..conftest import DEFAULT_PASSWORD
from ..helpers import CAPTCHA
from ..live import chromium_page, free_port, serve
from .conftest import pkce_pair
from .test_dpop import DPoPKey, _claims

URN = "urn:ietf:params:oauth:request_uri:"


class RelyingSystem:
    """The relying systems' callbacks on their own port: the browser really lands there."""

    def __init__(self) -> None:
        self.app = Flask("protocol-rp")
        self.app.add_url_rule("/tax/cb", "tax", lambda: "<h1 id='rp'>税务系统</h1>")
        self.app.add_url_rule("/exam/cb", "exam", lambda: "<h1 id='rp'>考试系统</h1>")


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@pytest.mark.browser
def test_par_with_a_signed_request_and_dpop_through_chromium_gives_a_pairwise_sub(live_server):
    app, provider = live_server.app, live_server.url
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    key = ECKey.generate_key("P-256", parameters={"kid": "tax-1"})
    with app.app_context():
        citizen = create_account(NewAccount(username="kaosheng41", password=DEFAULT_PASSWORD, name="赵敏",
                                            id_type="resident_id", id_number="440305199203157894",
                                            phone="13700137041"), real_name_verified=True)
        public_sub = citizen.sub
        # another department's system: must push, signs its requests, tokens bound to a key,
        # a sub of its own sector; not first-party, so the citizen is asked to consent
        tax, _ = create_client(ClientSpec(
            name="税务联办系统", redirect_uris=[f"{base}/tax/cb"], scope="openid profile",
            token_endpoint_auth_method="private_key_jwt", jwks={"keys": [key.as_dict(private=False)]},
            subject_type="pairwise", sector_identifier="tax.example.gov.cn",
            require_pushed_authorization_requests=True, dpop_bound_access_tokens=True))
        exam, exam_secret = create_client(ClientSpec(
            name="考生服务系统", redirect_uris=[f"{base}/exam/cb"], scope="openid profile", first_party=True))
        tax_id, exam_id = tax.client_id, exam.client_id

    meta = requests.get(f"{provider}/.well-known/openid-configuration", timeout=10).json()
    assert "pairwise" in meta["subject_types_supported"] and "ES256" in meta["dpop_signing_alg_values_supported"]
    par_url, token_url, userinfo_url = (meta["pushed_authorization_request_endpoint"], meta["token_endpoint"],
                                        meta["userinfo_endpoint"])

    # -- the relying system pushes a signed request object, with a DPoP proof ------------------------
    oauth = OAuth2Session(tax_id, key, scope="openid profile", redirect_uri=f"{base}/tax/cb",
                          code_challenge_method="S256", token_endpoint_auth_method="private_key_jwt")
    oauth.register_client_auth_method(PrivateKeyJWT(token_url, alg="ES256", headers={"kid": "tax-1"}))
    verifier = secrets.token_urlsafe(48)
    url, state = oauth.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier,
                                                nonce="n-" + secrets.token_hex(4))
    params = _query(url)
    now = int(time.time())
    request_object = jwt.encode({"alg": "ES256", "kid": "tax-1"}, {
        **params, "iss": tax_id, "aud": meta["issuer"], "iat": now, "exp": now + 60,
        "jti": "req-" + secrets.token_hex(8)}, key)
    dpop = DPoPKey()
    pushed = oauth.post(par_url, data={"client_id": tax_id, "request": request_object},
                        headers={"DPoP": dpop.proof("POST", par_url)},
                        auth=oauth.client_auth("private_key_jwt"), withhold_token=True, timeout=10)
    assert pushed.status_code == 201, pushed.text
    request_uri = pushed.json()["request_uri"]
    assert request_uri.startswith(URN)

    verifier_exam, challenge_exam = pkce_pair()
    with serve(RelyingSystem().app, port), chromium_page() as page:
        # -- the browser: the short URL, the login, the consent, back at the relying system -------
        page.goto(f"{meta['authorization_endpoint']}?" + urlencode({"client_id": tax_id, "request_uri": request_uri}))
        page.wait_for_url(f"{provider}/login")
        page.get_by_label("用户名").fill("kaosheng41")
        page.get_by_label("密码", exact=True).fill(DEFAULT_PASSWORD)
        page.get_by_label("验证码").fill(CAPTCHA)
        page.get_by_role("button", name="登录").click()
        page.get_by_role("button", name="同意授权").click()
        page.wait_for_url(f"{base}/tax/cb?*")
        assert page.locator("#rp").inner_text() == "税务系统"
        redirected_to = page.url

        # the same citizen, already signed in, at the bureau's own system (public sub)
        page.goto(f"{meta['authorization_endpoint']}?" + urlencode({
            "response_type": "code", "client_id": exam_id, "redirect_uri": f"{base}/exam/cb",
            "scope": "openid profile", "state": "exam-state", "code_challenge": challenge_exam,
            "code_challenge_method": "S256"}))
        page.wait_for_url(f"{base}/exam/cb?*")
        exam_code = _query(page.url)["code"]

    got = _query(redirected_to)
    assert got["state"] == state and got["iss"] == provider

    # -- the code is bound to the pushed proof's key: another key gets nothing ---------------------
    stranger = requests.post(token_url, data={
        "grant_type": "authorization_code", "code": got["code"], "redirect_uri": f"{base}/tax/cb",
        "code_verifier": verifier, "client_id": tax_id, **_assertion(tax_id, key, token_url)},
        headers={"DPoP": DPoPKey().proof("POST", token_url)}, timeout=10)
    assert stranger.status_code == 400 and stranger.json()["error"] == "invalid_grant"

    token = oauth.fetch_token(token_url, authorization_response=redirected_to, code_verifier=verifier,
                              state=state, headers={
                                  "Accept": "application/json", "DPoP": dpop.proof("POST", token_url),
                                  "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"})
    assert token["token_type"] == "DPoP"
    assert _claims(token["access_token"])["cnf"] == {"jkt": dpop.jkt}
    at = token["access_token"]

    # -- userinfo honours the DPoP token, with a proof over it ---------------------------------------
    info = requests.get(userinfo_url, headers={"Authorization": f"DPoP {at}",
                                               "DPoP": dpop.proof("GET", userinfo_url, access_token=at)}, timeout=10)
    assert info.status_code == 200, info.text
    as_bearer = requests.get(userinfo_url, headers={"Authorization": f"Bearer {at}"}, timeout=10)
    assert as_bearer.status_code == 401

    keys = KeySet.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())
    pairwise_sub = jwt.decode(token["id_token"], keys).claims["sub"]
    assert info.json()["sub"] == pairwise_sub != public_sub

    # -- the bureau's own system sees the public sub: the two cannot join by sub -------------------
    exam_tokens = requests.post(token_url, data={
        "grant_type": "authorization_code", "code": exam_code, "redirect_uri": f"{base}/exam/cb",
        "code_verifier": verifier_exam}, auth=(exam_id, exam_secret), timeout=10)
    assert exam_tokens.status_code == 200, exam_tokens.text
    assert jwt.decode(exam_tokens.json()["id_token"], keys).claims["sub"] == public_sub


def _assertion(client_id: str, key: ECKey, audience: str) -> dict[str, str]:
    now = int(time.time())
    assertion = jwt.encode({"alg": "ES256", "kid": "tax-1"}, {
        "iss": client_id, "sub": client_id, "aud": audience, "iat": now, "exp": now + 60,
        "jti": secrets.token_urlsafe(12)}, key)
    return {"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion}
