"""Pairwise subject identifiers (OpenID Connect Core 8.1): one sub per sector."""

from __future__ import annotations

import base64

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.errors import InvalidField
from idp.services.admin.clients import ClientSpec, create_client

from ..conftest import DEFAULT_PASSWORD
from ..helpers import login
from .conftest import CodeFlow


def _id_claims(client, id_token: str) -> dict:
    keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").get_json())
    return jwt.decode(id_token, keys).claims


def _subs(client, rp) -> dict[str, str]:
    """The sub one relying system sees in each place: ID token, userinfo, introspection."""
    flow = CodeFlow(client, rp)
    tokens = flow.tokens(scope="openid profile")
    info = client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}).get_json()
    intro = client.post("/oauth/introspect", data={"token": tokens["access_token"]}, headers=rp.basic).get_json()
    return {"id_token": _id_claims(client, tokens["id_token"])["sub"], "userinfo": info["sub"],
            "introspection": intro["sub"], "introspection_username": intro.get("username")}


def test_sectors_get_different_subs_and_one_sector_the_same(client, make_client, user):
    exam = make_client(first_party=True)  # public, the default
    tax_a = make_client(first_party=True, subject_type="pairwise", redirect_uris=["https://tax.example.test/cb"])
    tax_b = make_client(first_party=True, subject_type="pairwise", redirect_uris=["https://tax.example.test/other"])
    health = make_client(first_party=True, subject_type="pairwise", redirect_uris=["https://health.example.test/cb"])
    assert login(client, user.username, DEFAULT_PASSWORD).status_code == 302

    public = _subs(client, exam)
    assert set(public.values()) == {user.sub, user.username}

    a, b, h = _subs(client, tax_a), _subs(client, tax_b), _subs(client, health)
    for seen in (a, b, h):
        # one sub everywhere a system looks, never the public one, and no username beside it
        assert seen["id_token"] == seen["userinfo"] == seen["introspection"] != user.sub
        assert seen["introspection_username"] is None
    assert a["id_token"] == b["id_token"]  # same sector: same sub
    assert a["id_token"] != h["id_token"]  # different sectors: no join by sub


def test_a_pairwise_access_token_does_not_carry_the_public_sub(client, make_client, user):
    rp = make_client(first_party=True, subject_type="pairwise")
    assert login(client, user.username, DEFAULT_PASSWORD).status_code == 302
    tokens = CodeFlow(client, rp).tokens(scope="openid profile")
    payload = tokens["access_token"].split(".")[1]
    assert user.sub not in base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()


def test_logout_token_carries_the_pairwise_sub(app, client, make_client, user, monkeypatch):
    from idp.oauth import logout

    rp = make_client(first_party=True, subject_type="pairwise",
                     backchannel_logout_uri="https://rp.example.test/backchannel")
    sent = []
    monkeypatch.setattr(logout.requests, "post", lambda url, data, **_: sent.append(data) or type("R", (), {"status_code": 200})())
    assert login(client, user.username, DEFAULT_PASSWORD).status_code == 302
    tokens = CodeFlow(client, rp).tokens(scope="openid")
    id_sub = _id_claims(client, tokens["id_token"])["sub"]
    client.post("/logout", data={}, follow_redirects=False)
    client.get("/oauth/logout", query_string={"id_token_hint": tokens["id_token"]})
    assert sent, "no logout token sent"
    logout_claims = _id_claims(client, sent[0]["logout_token"])
    assert logout_claims["sub"] == id_sub != user.sub


def test_pairwise_needs_one_host_or_an_explicit_sector(app):
    uris = ["https://a.example.test/cb", "https://b.example.test/cb"]
    with app.app_context():
        with pytest.raises(InvalidField) as refused:
            create_client(ClientSpec(name="两个主机", redirect_uris=uris, subject_type="pairwise"))
        assert refused.value.field == "sector_identifier"
        client, _ = create_client(ClientSpec(name="两个主机", redirect_uris=uris, subject_type="pairwise",
                                             sector_identifier="Example.TEST"))
        assert client.sector_identifier == "example.test"


def test_discovery_lists_pairwise(client):
    assert client.get("/.well-known/openid-configuration").get_json()["subject_types_supported"] == ["public", "pairwise"]


def test_cli_sets_pairwise(app, runner):
    result = runner.invoke(args=["clients", "add", "--name", "税务", "--redirect-uri", "https://tax.example.test/cb",
                                 "--subject-type", "pairwise", "--json"])
    assert result.exit_code == 0, result.output
    from idp.models import Client
    from idp.extensions import db
    from sqlalchemy import select
    import json

    client_id = json.loads(result.stdout)["client_id"]  # stdout only: a log line may go to stderr
    with app.app_context():
        row = db.session.scalar(select(Client).where(Client.client_id == client_id))
        assert (row.subject_type, row.sector_identifier) == ("pairwise", "tax.example.test")
