from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.extensions import db
from idp.models import AuthorizationCode

from ..conftest import DEFAULT_PASSWORD
from ..helpers import login, query_params
from .conftest import CodeFlow, pkce_pair


def jwks(client) -> KeySet:
    return KeySet.import_key_set(client.get("/.well-known/jwks.json").get_json())


def header(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))


def test_code_exchange_returns_verifiable_id_and_access_tokens(signed_in_flow):
    verifier, challenge = pkce_pair()
    code, _ = signed_in_flow.code(code_challenge=challenge, code_challenge_method="S256",
                                  nonce="nonce-123", scope="openid profile")
    response = signed_in_flow.exchange(code, verifier=verifier)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["token_type"].lower() == "bearer"
    assert "refresh_token" not in body  # no offline_access asked
    keys = jwks(signed_in_flow.client)
    id_token = jwt.decode(body["id_token"], keys)
    claims = id_token.claims
    assert id_token.header["kid"] in {k.kid for k in keys}
    assert claims["iss"] == "http://localhost"
    assert claims["aud"] == [signed_in_flow.rp.client_id] or claims["aud"] == signed_in_flow.rp.client_id
    assert claims["nonce"] == "nonce-123"
    assert claims["amr"] == ["pwd"]
    assert claims["acr"] == "urn:hrss:acr:realname"  # a bank-verified account
    assert claims["name"] == "张三" and claims["preferred_username"] == "zhangsan"
    assert "sid" in claims and "auth_time" in claims and "at_hash" in claims
    assert "phone_number" not in claims  # not asked
    access = jwt.decode(body["access_token"], keys)
    assert access.header["typ"] == "at+jwt"
    assert access.claims["client_id"] == signed_in_flow.rp.client_id
    assert access.claims["sub"] == claims["sub"]
    assert access.claims["scope"] == "openid profile"


def test_code_replay_is_refused_and_revokes_what_it_issued(signed_in_flow):
    code, _ = signed_in_flow.code(scope="openid profile offline_access")
    first = signed_in_flow.exchange(code)
    assert first.status_code == 200
    tokens = first.get_json()
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert signed_in_flow.client.get("/oauth/userinfo", headers=auth).status_code == 200
    replay = signed_in_flow.exchange(code)
    assert replay.status_code == 400
    assert replay.get_json()["error"] == "invalid_grant"
    assert signed_in_flow.client.get("/oauth/userinfo", headers=auth).status_code == 401
    refresh = signed_in_flow.client.post(
        "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers=signed_in_flow.rp.basic)
    assert refresh.get_json()["error"] == "invalid_grant"


def test_wrong_pkce_verifier_is_invalid_grant(signed_in_flow):
    _, challenge = pkce_pair()
    code, _ = signed_in_flow.code(code_challenge=challenge, code_challenge_method="S256")
    other_verifier, _ = pkce_pair()
    response = signed_in_flow.exchange(code, verifier=other_verifier)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_verifier_without_challenge_is_refused(signed_in_flow):
    # PKCE is required of every client, so a request without a challenge gets no code at all:
    # the refusal comes from the authorization endpoint, to the client's redirect URI
    response = signed_in_flow.authorize(code_challenge=None, code_challenge_method=None)
    assert response.status_code == 302
    got = query_params(response.headers["Location"])
    assert got["error"] == "invalid_request" and "code" not in got


@pytest.mark.parametrize("kind", ["confidential", "public"])
def test_every_client_needs_pkce(client, make_client, user, kind):
    rp = make_client(first_party=True, **({"client_type": "public"} if kind == "public" else {}))
    assert login(client, user.username, DEFAULT_PASSWORD).status_code == 302
    response = CodeFlow(client, rp).authorize(code_challenge=None, code_challenge_method=None)
    assert response.status_code == 302
    got = query_params(response.headers["Location"])
    assert got["error"] == "invalid_request" and "PKCE" in got["error_description"]
    assert "code" not in got


def test_wrong_redirect_uri_at_token_endpoint(signed_in_flow):
    code, _ = signed_in_flow.code()
    response = signed_in_flow.exchange(code, redirect_uri="https://rp.example.test/other")
    assert response.get_json()["error"] == "invalid_grant"


def test_expired_code_is_invalid_grant(app, signed_in_flow):
    code, _ = signed_in_flow.code()
    with app.app_context():
        row = db.session.scalar(db.select(AuthorizationCode))
        row.expires_at = datetime.now(timezone.utc) - timedelta(seconds=1)
        db.session.commit()
    assert signed_in_flow.exchange(code).get_json()["error"] == "invalid_grant"


def test_code_lifetime_is_at_most_sixty_seconds(app, signed_in_flow):
    signed_in_flow.code()
    with app.app_context():
        row = db.session.scalar(db.select(AuthorizationCode))
        assert (row.expires_at - row.created_at).total_seconds() <= 60


def test_code_of_another_client_is_refused(signed_in_flow, make_client, client):
    code, _ = signed_in_flow.code()
    other = make_client(first_party=True)
    response = CodeFlow(client, other).exchange(code)
    assert response.get_json()["error"] == "invalid_grant"


def test_wrong_client_secret_is_invalid_client(signed_in_flow):
    code, _ = signed_in_flow.code()
    raw = base64.b64encode(f"{signed_in_flow.rp.client_id}:wrong".encode()).decode()
    response = signed_in_flow.exchange(code, auth={"Authorization": f"Basic {raw}"})
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def refresh(client, rp, token):
    return client.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": token},
                       headers=rp.basic)


def test_refresh_rotation_and_reuse_detection_revokes_the_family(signed_in_flow):
    tokens = signed_in_flow.tokens(scope="openid profile offline_access")
    first_refresh = tokens["refresh_token"]
    rotated = refresh(signed_in_flow.client, signed_in_flow.rp, first_refresh)
    assert rotated.status_code == 200
    second = rotated.get_json()
    assert second["refresh_token"] != first_refresh
    assert "id_token" not in second or second["id_token"]
    # the old one again: reuse detected
    reuse = refresh(signed_in_flow.client, signed_in_flow.rp, first_refresh)
    assert reuse.get_json()["error"] == "invalid_grant"
    # the whole family is gone: the newest refresh and access tokens too
    assert refresh(signed_in_flow.client, signed_in_flow.rp, second["refresh_token"]).get_json()["error"] == "invalid_grant"
    auth = {"Authorization": f"Bearer {second['access_token']}"}
    assert signed_in_flow.client.get("/oauth/userinfo", headers=auth).status_code == 401


def test_refreshed_access_token_keeps_subject_and_scope(signed_in_flow):
    tokens = signed_in_flow.tokens(scope="openid profile offline_access")
    second = refresh(signed_in_flow.client, signed_in_flow.rp, tokens["refresh_token"]).get_json()
    keys = jwks(signed_in_flow.client)
    a = jwt.decode(tokens["access_token"], keys).claims
    b = jwt.decode(second["access_token"], keys).claims
    assert a["sub"] == b["sub"] and a["scope"] == b["scope"] and a["jti"] != b["jti"]
    assert b["auth_time"] == a["auth_time"]


def test_client_credentials_for_a_service_client(client, make_client):
    service = make_client(client_type="service", scope="openid", redirect_uris=[])
    response = client.post("/oauth/token", data={"grant_type": "client_credentials"}, headers=service.basic)
    assert response.status_code == 200
    body = response.get_json()
    assert "refresh_token" not in body and "id_token" not in body
    claims = jwt.decode(body["access_token"], jwks(client)).claims
    assert claims["sub"] == service.client_id and claims["client_id"] == service.client_id


def test_client_credentials_refused_for_a_web_client(client, rp):
    response = client.post("/oauth/token", data={"grant_type": "client_credentials"}, headers=rp.basic)
    assert response.status_code == 400
    assert response.get_json()["error"] == "unauthorized_client"


def test_client_secret_post(client, make_client, user):
    from ..conftest import DEFAULT_PASSWORD
    from ..helpers import login

    rp = make_client(first_party=True, token_endpoint_auth_method="client_secret_post")
    login(client, user.username, DEFAULT_PASSWORD)
    flow = CodeFlow(client, rp)
    code, _ = flow.code()
    response = client.post("/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri,
        "client_id": rp.client_id, "client_secret": rp.client_secret, "code_verifier": flow.verifier})
    assert response.status_code == 200, response.data
    # basic is not this client's method
    code2, _ = flow.code()
    assert flow.exchange(code2).status_code == 401


def test_private_key_jwt_client_authentication(client, make_client, user):
    import time
    import secrets as pysecrets

    from joserfc.jwk import RSAKey

    from ..conftest import DEFAULT_PASSWORD
    from ..helpers import login

    key = RSAKey.generate_key(2048, private=True)
    public = {"keys": [{**key.as_dict(private=False), "kid": "rp-key-1", "alg": "RS256", "use": "sig"}]}
    rp = make_client(first_party=True, token_endpoint_auth_method="private_key_jwt", jwks=public)
    assert rp.client_secret is None
    login(client, user.username, DEFAULT_PASSWORD)
    flow = CodeFlow(client, rp)
    code, _ = flow.code()
    now = int(time.time())
    assertion = jwt.encode({"alg": "RS256", "kid": "rp-key-1"}, {
        "iss": rp.client_id, "sub": rp.client_id, "aud": "http://localhost/oauth/token",
        "iat": now, "exp": now + 60, "jti": pysecrets.token_hex(8)}, key)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion, "code_verifier": flow.verifier}
    assert client.post("/oauth/token", data=data).status_code == 200
    # the same assertion again is a replay
    code2, _ = flow.code()
    data.update(code=code2, code_verifier=flow.verifier)
    replay = client.post("/oauth/token", data=data)
    assert replay.get_json() == {"error": "invalid_client", "error_description": "JWT ID is used before."}


def test_unsupported_grant_type(client, rp):
    response = client.post("/oauth/token", data={"grant_type": "password"}, headers=rp.basic)
    assert response.get_json()["error"] == "unsupported_grant_type"


def test_refresh_with_openid_returns_a_fresh_id_token(signed_in_flow):
    tokens = signed_in_flow.tokens(scope="openid profile offline_access")
    keys = jwks(signed_in_flow.client)
    first = jwt.decode(tokens["id_token"], keys).claims
    assert first["nonce"]
    response = refresh(signed_in_flow.client, signed_in_flow.rp, tokens["refresh_token"])
    assert response.status_code == 200
    body = response.get_json()
    assert "id_token" in body
    token = jwt.decode(body["id_token"], keys)
    claims = token.claims
    assert token.header["kid"] and claims["iss"] == "http://localhost"
    assert claims["aud"] == [signed_in_flow.rp.client_id]
    assert claims["sub"] == first["sub"] and claims["auth_time"] == first["auth_time"]
    assert claims["acr"] == first["acr"] and claims["amr"] == first["amr"] and claims["sid"] == first["sid"]
    assert "nonce" not in claims
    assert claims["name"] == first["name"]  # the claims of the granted scope, as at login
    assert claims["iat"] >= first["iat"]


def test_refresh_without_openid_returns_no_id_token(client, make_client, user):
    rp = make_client(first_party=True, scope="profile offline_access")
    assert login(client, user.username, DEFAULT_PASSWORD).status_code == 302
    tokens = CodeFlow(client, rp).tokens(scope="profile offline_access", nonce=None)
    assert "id_token" not in tokens
    body = refresh(client, rp, tokens["refresh_token"]).get_json()
    assert "access_token" in body and "id_token" not in body
