"""Relying systems and a code-flow driver for the protocol tests."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass

import pytest

from idp.services.admin.clients import ClientSpec, create_client

from ..conftest import DEFAULT_PASSWORD
from ..helpers import login, query_params

REDIRECT_URI = "https://rp.example.test/callback"


@dataclass
class RegisteredClient:
    client_id: str
    client_secret: str | None
    redirect_uri: str = REDIRECT_URI

    @property
    def basic(self) -> dict[str, str]:
        raw = f"{self.client_id}:{self.client_secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


@pytest.fixture
def make_client(app):
    def make(**fields) -> RegisteredClient:
        spec = ClientSpec(
            name=fields.pop("name", "考生服务系统"),
            redirect_uris=fields.pop("redirect_uris", [REDIRECT_URI]),
            scope=fields.pop("scope", "openid profile phone realname offline_access"),
            **fields,
        )
        with app.app_context():
            client, secret = create_client(spec)
            return RegisteredClient(client.client_id, secret, (spec.redirect_uris or [None])[0])

    return make


@pytest.fixture
def rp(make_client):
    """A first-party confidential relying system (no consent page)."""
    return make_client(first_party=True, post_logout_redirect_uris=["https://rp.example.test/bye"])


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@dataclass
class CodeFlow:
    """Drives the code flow as a relying system does: PKCE S256 on every request (the provider
    requires it of every client), the verifier kept for the exchange unless one is given."""

    client: object
    rp: RegisteredClient
    verifier: str | None = None

    def authorize(self, **params):
        verifier, challenge = pkce_pair()
        query = {
            "response_type": "code",
            "client_id": self.rp.client_id,
            "redirect_uri": self.rp.redirect_uri,
            "scope": "openid profile",
            "state": "st-" + secrets.token_hex(4),
            "nonce": "n-" + secrets.token_hex(4),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if "code_challenge" not in params:
            self.verifier = verifier
        query.update(params)
        query = {k: v for k, v in query.items() if v is not None}
        return self.client.get("/oauth/authorize", query_string=query)

    def code(self, **params) -> tuple[str, dict]:
        response = self.authorize(**params)
        assert response.status_code == 302, response.data.decode()[:800]
        got = query_params(response.headers["Location"])
        assert "code" in got, got
        return got["code"], got

    def exchange(self, code: str, *, verifier: str | None = None, redirect_uri: str | None = None, auth=None):
        data = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": redirect_uri or self.rp.redirect_uri}
        verifier = verifier or self.verifier
        if verifier:
            data["code_verifier"] = verifier
        headers = self.rp.basic if auth is None and self.rp.client_secret else (auth or {})
        if not self.rp.client_secret:
            data["client_id"] = self.rp.client_id
        return self.client.post("/oauth/token", data=data, headers=headers)

    def tokens(self, **params) -> dict:
        verifier, challenge = pkce_pair()
        code, _ = self.code(code_challenge=challenge, code_challenge_method="S256", **params)
        response = self.exchange(code, verifier=verifier)
        assert response.status_code == 200, response.data.decode()
        return response.get_json()


@pytest.fixture
def flow(client, rp):
    return CodeFlow(client, rp)


@pytest.fixture
def signed_in_flow(client, rp, user):
    assert login(client, user.username, DEFAULT_PASSWORD).status_code == 302
    return CodeFlow(client, rp)
