"""RP-initiated logout and back-channel logout."""

from __future__ import annotations

import threading

from joserfc import jwt
from joserfc.jwk import KeySet

from ..helpers import form_fields, query_params
from ..live import free_port, serve


def test_rp_initiated_logout_with_id_token_hint_redirects_to_registered_uri(signed_in_flow):
    tokens = signed_in_flow.tokens()
    response = signed_in_flow.client.get("/oauth/logout", query_string={
        "id_token_hint": tokens["id_token"],
        "post_logout_redirect_uri": "https://rp.example.test/bye",
        "state": "bye-1",
    })
    assert response.status_code == 302
    assert response.headers["Location"] == "https://rp.example.test/bye?state=bye-1"
    assert signed_in_flow.client.get("/account/").status_code == 302  # logged out
    # tokens of that session are revoked
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert signed_in_flow.client.get("/oauth/userinfo", headers=auth).status_code == 401


def test_unregistered_post_logout_uri_is_not_followed(signed_in_flow):
    tokens = signed_in_flow.tokens()
    response = signed_in_flow.client.get("/oauth/logout", query_string={
        "id_token_hint": tokens["id_token"],
        "post_logout_redirect_uri": "https://evil.example.test/",
    })
    assert response.status_code == 200
    assert "您已退出登录" in response.data.decode()
    assert signed_in_flow.client.get("/account/").status_code == 302


def test_logout_without_hint_asks_for_confirmation(signed_in_flow):
    page = signed_in_flow.client.get("/oauth/logout")
    assert page.status_code == 200
    assert "确定要退出吗" in page.data.decode()
    assert signed_in_flow.client.get("/account/").status_code == 200  # still logged in
    # a forged POST without the CSRF token does nothing
    assert signed_in_flow.client.post("/oauth/logout").status_code == 400
    assert signed_in_flow.client.get("/account/").status_code == 200
    done = signed_in_flow.client.post("/oauth/logout", data=form_fields(page.data))
    assert done.status_code == 200
    assert signed_in_flow.client.get("/account/").status_code == 302


def test_forged_id_token_hint_is_refused(signed_in_flow):
    response = signed_in_flow.client.get("/oauth/logout", query_string={"id_token_hint": "a.b.c"})
    assert response.status_code == 400
    assert signed_in_flow.client.get("/account/").status_code == 200


class LogoutReceiver:
    """A relying system's back-channel logout endpoint on a real port."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.received = threading.Event()

    def __call__(self, environ, start_response):
        from urllib.parse import parse_qs

        length = int(environ.get("CONTENT_LENGTH") or 0)
        form = parse_qs(environ["wsgi.input"].read(length).decode())
        self.tokens.extend(form.get("logout_token", []))
        self.received.set()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b""]


def test_backchannel_logout_token_is_sent_when_the_session_ends(client, make_client, user, app):
    from ..conftest import DEFAULT_PASSWORD
    from ..helpers import login
    from .conftest import CodeFlow

    receiver = LogoutReceiver()
    port = free_port()
    with serve(receiver, port) as url:
        rp = make_client(first_party=True, backchannel_logout_uri=f"{url}/backchannel")
        login(client, user.username, DEFAULT_PASSWORD)
        tokens = CodeFlow(client, rp).tokens()
        id_claims = jwt.decode(tokens["id_token"], KeySet.import_key_set(
            client.get("/.well-known/jwks.json").get_json())).claims
        logout_page = client.get("/logout")
        client.post("/logout", data=form_fields(logout_page.data))
        assert receiver.received.wait(5)
    keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").get_json())
    token = jwt.decode(receiver.tokens[0], keys)
    assert token.header["typ"] == "logout+jwt"
    claims = token.claims
    assert claims["iss"] == "http://localhost" and claims["aud"] == rp.client_id
    assert claims["sub"] == id_claims["sub"] and claims["sid"] == id_claims["sid"]
    assert "http://schemas.openid.net/event/backchannel-logout" in claims["events"]
    assert "nonce" not in claims


def test_unreachable_backchannel_endpoint_does_not_break_logout(client, make_client, user):
    from ..conftest import DEFAULT_PASSWORD
    from ..helpers import login
    from .conftest import CodeFlow

    rp = make_client(first_party=True, backchannel_logout_uri=f"http://127.0.0.1:{free_port()}/gone")
    login(client, user.username, DEFAULT_PASSWORD)
    CodeFlow(client, rp).tokens()
    logout_page = client.get("/logout")
    assert client.post("/logout", data=form_fields(logout_page.data)).status_code == 200
    assert client.get("/account/").status_code == 302


def test_state_is_kept_through_login(flow, user):
    from ..conftest import DEFAULT_PASSWORD
    from ..helpers import login

    flow.authorize(state="keep-me")
    resumed = login(flow.client, user.username, DEFAULT_PASSWORD).headers["Location"]
    assert query_params(flow.client.get(resumed).headers["Location"])["state"] == "keep-me"
