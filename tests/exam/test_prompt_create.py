"""The platform's side of 立即注册: ``prompt=create`` (OpenID Connect Prompt Create 1.0) sends the
user to registration with the authorization request kept, and the request resumes without
asking again."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from idp.services.admin.clients import ClientSpec, create_client

from ..conftest import DEFAULT_PASSWORD
from ..helpers import login, query_params

REDIRECT = "https://exam.example.test/auth/callback"


@pytest.fixture
def exam_client(app):
    with app.app_context():
        client, _ = create_client(ClientSpec(name="考生服务系统", redirect_uris=[REDIRECT], first_party=True,
                                             scope="openid profile realname"))
        return client.client_id


def authorize(client, client_id, **params):
    query = dict(response_type="code", client_id=client_id, redirect_uri=REDIRECT, scope="openid profile",
                 state="st-1", nonce="n-1", code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                 code_challenge_method="S256")
    query.update(params)
    return client.get("/oauth/authorize", query_string=query)


def pending(client) -> dict[str, list[str]]:
    with client.session_transaction() as session:
        url = session.get("pending_authz")
    assert url and url.startswith("/oauth/authorize?")
    return parse_qs(urlsplit(url).query)


def test_discovery_announces_prompt_create(client):
    assert "create" in client.get("/.well-known/openid-configuration").get_json()["prompt_values_supported"]


def test_prompt_create_opens_registration_and_keeps_the_request(client, exam_client):
    response = authorize(client, exam_client, prompt="create")
    assert response.status_code == 302
    assert response.headers["Location"] == "/register"
    kept = pending(client)
    assert kept["client_id"] == [exam_client] and kept["state"] == ["st-1"] and kept["nonce"] == ["n-1"]
    assert "prompt" not in kept  # coming back must not open registration again


def test_other_prompt_values_survive(client, exam_client):
    authorize(client, exam_client, prompt="create consent")
    assert pending(client)["prompt"] == ["consent"]


def test_prompt_create_with_none_is_an_error(client, exam_client):
    response = authorize(client, exam_client, prompt="create none")
    assert response.status_code == 302
    got = query_params(response.headers["Location"])
    assert response.headers["Location"].startswith(REDIRECT)
    assert got["error"] == "invalid_request" and got["state"] == "st-1"


def test_prompt_create_when_already_signed_in_still_opens_registration(client, exam_client, user):
    assert login(client, user.username, DEFAULT_PASSWORD).status_code == 302
    response = authorize(client, exam_client, prompt="create")
    assert response.headers["Location"] == "/register"


def test_the_kept_request_resumes_to_a_code(client, exam_client, user):
    """Whoever finishes the interaction (registration, or the login page linked from it) lands back
    on the request without prompt=create, which now issues a code."""
    authorize(client, exam_client, prompt="create")
    resumed = login(client, user.username, DEFAULT_PASSWORD).headers["Location"]
    assert resumed.startswith("/oauth/authorize?") and "prompt" not in resumed
    answer = client.get(resumed)
    assert answer.status_code == 302 and answer.headers["Location"].startswith(REDIRECT)
    got = query_params(answer.headers["Location"])
    assert got["code"] and got["state"] == "st-1"
