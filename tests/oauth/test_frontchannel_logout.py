"""Front-channel logout (OpenID Connect Front-Channel Logout 1.0): the page that says 您已退出登录
loads, in hidden iframes, the front-channel logout URI of every relying system the login signed
in to (with iss and sid when the system asked for them), and its CSP frames exactly those."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qsl, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.errors import InvalidField
from idp.services.admin.clients import ClientSpec, normalise_spec

from ..conftest import DEFAULT_PASSWORD
from ..helpers import form_fields, login
from .conftest import CodeFlow

FC_URI = "https://rp.example.test/fc-logout"


def _iframes(response) -> list[str]:
    return [html.unescape(src) for src in
            re.findall(r'<iframe class="frontchannel-logout" src="([^"]+)"', response.data.decode())]


def _frame_src(response) -> str | None:
    for directive in response.headers["Content-Security-Policy"].split(";"):
        if directive.strip().startswith("frame-src"):
            return directive.strip()
    return None


def _id_claims(client, tokens) -> dict:
    keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").get_json())
    return dict(jwt.decode(tokens["id_token"], keys).claims)


def _log_out(client):
    return client.post("/logout", data=form_fields(client.get("/logout").data))


def test_logout_page_frames_each_system_the_login_signed_in_to(client, make_client, user):
    with_sid = make_client(first_party=True, frontchannel_logout_uri=FC_URI,
                           frontchannel_logout_session_required=True)
    plain = make_client(first_party=True, redirect_uris=["https://other.example.test/cb"],
                        frontchannel_logout_uri="https://other.example.test/logout?from=idp")
    never_used = make_client(first_party=True, redirect_uris=["https://unused.example.test/cb"],
                             frontchannel_logout_uri="https://unused.example.test/fc")
    assert login(client, user.username, DEFAULT_PASSWORD).status_code == 302
    claims = _id_claims(client, CodeFlow(client, with_sid).tokens())
    CodeFlow(client, plain).tokens()
    assert claims["sid"]  # every ID token names its login

    # before the logout no page may frame anything but the platform
    assert _frame_src(client.get("/account/")) is None
    page = _log_out(client)
    assert page.status_code == 200 and "您已退出登录" in page.data.decode()
    frames = _iframes(page)
    assert len(frames) == 2
    by_host = {urlsplit(f).hostname: f for f in frames}
    sent = dict(parse_qsl(urlsplit(by_host["rp.example.test"]).query))
    assert by_host["rp.example.test"].startswith(FC_URI + "?")
    assert sent == {"iss": "http://localhost", "sid": claims["sid"]}
    # a system that did not ask for the session gets its URI as registered, query kept
    assert by_host["other.example.test"] == "https://other.example.test/logout?from=idp"
    assert "unused.example.test" not in page.data.decode()  # the login never signed in there
    assert never_used
    # the CSP frames exactly the registered URIs (path and all), on this page only
    assert _frame_src(page) == "frame-src 'self' https://other.example.test/logout https://rp.example.test/fc-logout"
    assert client.get("/account/").status_code == 302  # logged out
    assert _frame_src(client.get("/login")) is None


def test_a_disabled_system_is_not_framed(app, client, make_client, user):
    from idp.services.admin.clients import disable_client

    rp = make_client(first_party=True, frontchannel_logout_uri=FC_URI)
    login(client, user.username, DEFAULT_PASSWORD)
    CodeFlow(client, rp).tokens()
    with app.app_context():
        disable_client(rp.client_id, reason="停用测试")
    page = _log_out(client)
    assert _iframes(page) == [] and _frame_src(page) is None


def test_rp_initiated_logout_frames_then_continues_to_the_post_logout_uri(client, make_client, user):
    rp = make_client(first_party=True, frontchannel_logout_uri=FC_URI, frontchannel_logout_session_required=True,
                     post_logout_redirect_uris=["https://rp.example.test/bye"])
    login(client, user.username, DEFAULT_PASSWORD)
    tokens = CodeFlow(client, rp).tokens()
    sid = _id_claims(client, tokens)["sid"]
    page = client.get("/oauth/logout", query_string={
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://rp.example.test/bye",
        "state": "bye-2"})
    # a page, not a redirect: the iframes load first, then the page goes on (script or 继续)
    assert page.status_code == 200
    body = page.data.decode()
    assert [dict(parse_qsl(urlsplit(f).query))["sid"] for f in _iframes(page)] == [sid]
    assert 'data-continue="https://rp.example.test/bye?state=bye-2"' in body
    assert 'href="https://rp.example.test/bye?state=bye-2"' in body and "/static/js/logout.js" in body
    assert _frame_src(page) == "frame-src 'self' https://rp.example.test/fc-logout"
    assert client.get("/account/").status_code == 302
    # tokens of that login are revoked as with any logout
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/oauth/userinfo", headers=auth).status_code == 401


def test_without_front_channel_systems_the_rp_logout_still_redirects(signed_in_flow):
    tokens = signed_in_flow.tokens()
    response = signed_in_flow.client.get("/oauth/logout", query_string={
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://rp.example.test/bye"})
    assert response.status_code == 302 and response.headers["Location"] == "https://rp.example.test/bye"


def test_a_logout_of_another_login_frames_nothing_here(app, client, make_client, user, signed_in_elsewhere):
    """Only the login that ends in this browser: the other browser's systems are not framed."""
    rp = make_client(first_party=True, frontchannel_logout_uri=FC_URI)
    CodeFlow(signed_in_elsewhere, rp).tokens()
    login(client, user.username, DEFAULT_PASSWORD)
    page = _log_out(client)
    assert _iframes(page) == []


@pytest.mark.parametrize("uri", ["http://rp.example.test/fc", "https://rp.example.test/fc#x", "/fc",
                                 "https://rp.example.test/a;b", "https://*.example.test/fc"])
def test_a_front_channel_uri_is_checked_like_a_redirect_uri(app, uri):
    with app.app_context(), pytest.raises(InvalidField) as refused:
        normalise_spec(ClientSpec(name="前端登出", redirect_uris=["https://rp.example.test/cb"],
                                  frontchannel_logout_uri=uri))
    assert refused.value.field == "frontchannel_logout_uri" and "前端登出地址" in refused.value.message


def test_discovery_advertises_front_channel_logout(client):
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert meta["frontchannel_logout_supported"] is True
    assert meta["frontchannel_logout_session_supported"] is True
    assert meta["backchannel_logout_supported"] is True
