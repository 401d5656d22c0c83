"""Interop: Authlib's own OAuth *client* runs the code flow against the provider on a real port
and verifies the ID token with the published JWKS."""

from __future__ import annotations

import secrets

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.services.accounts.records import NewAccount, create_account
from idp.services.admin.clients import ClientSpec, create_client

from ..conftest import DEFAULT_PASSWORD
from ..helpers import CAPTCHA, form_fields

REDIRECT = "http://127.0.0.1:9/callback"  # never contacted: the test reads the redirect itself


def test_authlib_client_completes_code_flow_and_verifies_id_token(live_server):
    with live_server.app.app_context():
        create_account(NewAccount(username="interop01", password=DEFAULT_PASSWORD, name="王𠮷",
                                  id_type="resident_id", id_number="440305199203157894",
                                  phone="13700137000"), real_name_verified=True)
        client, secret = create_client(ClientSpec(name="互操作测试", redirect_uris=[REDIRECT],
                                                  scope="openid profile phone", first_party=True))
        client_id = client.client_id

    meta = requests.get(f"{live_server.url}/.well-known/openid-configuration", timeout=10).json()
    oauth = OAuth2Session(client_id, secret, scope="openid profile phone", redirect_uri=REDIRECT,
                          code_challenge_method="S256")
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(12)
    url, state = oauth.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce)

    browser = requests.Session()
    to_login = browser.get(url, allow_redirects=False, timeout=10)
    assert to_login.status_code == 302
    login_page = browser.get(f"{live_server.url}/login", timeout=10)
    fields = form_fields(login_page.text)
    fields.update(username="interop01", password=DEFAULT_PASSWORD, captcha=CAPTCHA)
    resumed = browser.post(f"{live_server.url}/login", data=fields, allow_redirects=False, timeout=10)
    callback = browser.get(live_server.url + resumed.headers["Location"], allow_redirects=False, timeout=10)
    redirect_to = callback.headers["Location"]
    assert redirect_to.startswith(REDIRECT)

    token = oauth.fetch_token(meta["token_endpoint"], authorization_response=redirect_to,
                              code_verifier=verifier, state=state)
    keys = KeySet.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())
    decoded = jwt.decode(token["id_token"], keys)
    claims = CodeIDToken(decoded.claims, decoded.header, {"iss": {"value": meta["issuer"]},
                                                          "aud": {"value": client_id},
                                                          "nonce": {"value": nonce}},
                         params={"nonce": nonce, "access_token": token["access_token"]})
    claims.validate()
    assert claims["name"] == "王𠮷"  # a character outside the BMP survives the round trip

    info = oauth.get(meta["userinfo_endpoint"], timeout=10).json()
    assert info["sub"] == claims["sub"]
    assert info["phone_number"] == "+8613700137000"
