"""Hostile or unusual requests answered with the protocol's own errors, never a 500."""

from __future__ import annotations

import time

import pytest

from ..conftest import DEFAULT_PASSWORD
from ..helpers import login, query_params
from .conftest import REDIRECT_URI, CodeFlow, pkce_pair


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("field", ["redirect_uri", "response_type"])
def test_a_quote_in_the_authorization_request_is_an_error_page(flow, user, field):
    assert login(flow.client, user.username, DEFAULT_PASSWORD).status_code == 302
    value = {"redirect_uri": REDIRECT_URI + '"', "response_type": 'code"'}[field]
    response = flow.authorize(**{field: value})
    if field == "redirect_uri":
        # the redirect URI is not a registered one: an error page, never a redirect
        assert response.status_code == 400, response.data.decode()[:400]
        assert "Location" not in response.headers
        assert "text/html" in response.content_type
    else:
        # the client and its redirect URI are good: the error goes back to the client
        assert response.status_code in (302, 400), response.data.decode()[:400]
        if response.status_code == 302:
            assert response.headers["Location"].startswith(REDIRECT_URI)
            assert query_params(response.headers["Location"])["error"] in (
                "unsupported_response_type", "invalid_request")


def test_a_client_credentials_token_at_userinfo(client, make_client):
    service = make_client(client_type="service", scope="openid profile", redirect_uris=[])
    token = client.post("/oauth/token", data={"grant_type": "client_credentials", "scope": "openid profile"},
                        headers=service.basic).get_json()
    assert "access_token" in token, token
    response = client.get("/oauth/userinfo", headers=bearer(token["access_token"]))
    assert response.status_code in (401, 403)
    assert response.get_json()["error"] in ("invalid_token", "insufficient_scope")
    assert response.headers["WWW-Authenticate"].lower().startswith("bearer")


def test_max_age_zero_is_satisfied_by_the_login_it_asked_for(flow, user):
    verifier, challenge = pkce_pair()
    assert login(flow.client, user.username, DEFAULT_PASSWORD).status_code == 302
    time.sleep(1.1)  # the existing login is now older than max_age=0
    first = flow.authorize(max_age="0", code_challenge=challenge, code_challenge_method="S256")
    assert first.status_code == 302 and first.headers["Location"].startswith("/login")
    back = login(flow.client, user.username, DEFAULT_PASSWORD)
    assert back.status_code == 302 and back.headers["Location"].startswith("/oauth/authorize")
    answer = flow.client.get(back.headers["Location"])
    assert answer.status_code == 302, answer.data.decode()[:300]
    assert answer.headers["Location"].startswith(REDIRECT_URI)
    code = query_params(answer.headers["Location"])["code"]
    tokens = flow.exchange(code, verifier=verifier).get_json()
    assert "id_token" in tokens
    # once: the same request again, later, asks for a new login
    time.sleep(1.1)
    again = flow.authorize(max_age="0", code_challenge=challenge, code_challenge_method="S256")
    assert again.status_code == 302 and again.headers["Location"].startswith("/login")
