"""userinfo, revocation, introspection, discovery and JWKS."""

from __future__ import annotations

from ..helpers import login
from ..conftest import DEFAULT_PASSWORD
from .conftest import CodeFlow


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_userinfo_get_and_post_with_claims_by_scope(signed_in_flow):
    tokens = signed_in_flow.tokens(scope="openid profile phone realname")
    for method in ("get", "post"):
        response = getattr(signed_in_flow.client, method)("/oauth/userinfo", headers=bearer(tokens["access_token"]))
        assert response.status_code == 200
        info = response.get_json()
        assert info["name"] == "张三"
        assert info["preferred_username"] == "zhangsan"
        assert info["gender"] == "male" and info["birthdate"] == "1985-12-12"
        assert info["phone_number"] == "+8613800130001" and info["phone_number_verified"] is True
        assert info["real_name_verified"] is True
        assert info["id_type"] == "resident_id" and info["id_number"] == "440303198512124562"


def test_the_id_token_carries_the_realname_claims_when_granted(signed_in_flow):
    from joserfc import jwt
    from joserfc.jwk import KeySet

    tokens = signed_in_flow.tokens(scope="openid profile realname")
    keys = KeySet.import_key_set(signed_in_flow.client.get("/.well-known/jwks.json").get_json())
    claims = jwt.decode(tokens["id_token"], keys).claims
    assert claims["real_name_verified"] is True
    assert (claims["id_type"], claims["id_number"]) == ("resident_id", "440303198512124562")
    assert "phone_number" not in claims  # phone not asked


def test_userinfo_gives_only_what_the_scope_grants(signed_in_flow):
    tokens = signed_in_flow.tokens(scope="openid")
    info = signed_in_flow.client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).get_json()
    assert info == {"sub": info["sub"], "user_type": "personal"}


def test_userinfo_without_or_with_a_bad_token(client):
    missing = client.get("/oauth/userinfo")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].lower().startswith("bearer")
    bad = client.get("/oauth/userinfo", headers=bearer("not.a.token"))
    assert bad.status_code == 401
    assert bad.get_json()["error"] == "invalid_token"


def test_userinfo_refuses_a_token_without_openid(client, make_client):
    service = make_client(client_type="service", scope="profile", redirect_uris=[])
    token = client.post("/oauth/token", data={"grant_type": "client_credentials"}, headers=service.basic).get_json()
    response = client.get("/oauth/userinfo", headers=bearer(token["access_token"]))
    assert response.status_code == 403
    assert response.get_json()["error"] == "insufficient_scope"


def test_revoking_an_access_token(signed_in_flow):
    tokens = signed_in_flow.tokens()
    rp = signed_in_flow.rp
    response = signed_in_flow.client.post("/oauth/revoke", data={"token": tokens["access_token"]}, headers=rp.basic)
    assert response.status_code == 200
    assert signed_in_flow.client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 401
    # revoking an unknown token is not an error (RFC 7009 §2.2)
    assert signed_in_flow.client.post("/oauth/revoke", data={"token": "unknown"}, headers=rp.basic).status_code == 200


def test_revoking_a_refresh_token_revokes_its_access_tokens(signed_in_flow):
    tokens = signed_in_flow.tokens(scope="openid offline_access")
    rp = signed_in_flow.rp
    signed_in_flow.client.post("/oauth/revoke", data={"token": tokens["refresh_token"],
                                                      "token_type_hint": "refresh_token"}, headers=rp.basic)
    assert signed_in_flow.client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 401
    again = signed_in_flow.client.post("/oauth/token", data={"grant_type": "refresh_token",
                                                             "refresh_token": tokens["refresh_token"]}, headers=rp.basic)
    assert again.get_json()["error"] == "invalid_grant"


def test_revocation_needs_client_authentication(signed_in_flow):
    tokens = signed_in_flow.tokens()
    response = signed_in_flow.client.post("/oauth/revoke", data={"token": tokens["access_token"]})
    assert response.status_code in (400, 401)
    assert response.get_json()["error"] == "invalid_client"
    assert signed_in_flow.client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 200


def test_introspection(signed_in_flow, make_client, client):
    tokens = signed_in_flow.tokens(scope="openid profile offline_access")
    rp = signed_in_flow.rp
    active = client.post("/oauth/introspect", data={"token": tokens["access_token"]}, headers=rp.basic).get_json()
    assert active["active"] is True
    assert active["client_id"] == rp.client_id and active["username"] == "zhangsan"
    assert active["scope"] == "openid profile offline_access" and active["token_type"] == "Bearer"
    refresh = client.post("/oauth/introspect", data={"token": tokens["refresh_token"]}, headers=rp.basic).get_json()
    assert refresh["active"] is True and refresh["token_type"] == "refresh_token"
    # another relying system may not look at this one's tokens
    other = make_client(first_party=True)
    assert client.post("/oauth/introspect", data={"token": tokens["access_token"]},
                       headers=other.basic).get_json() == {"active": False}
    # a resource server (service client) may
    resource_server = make_client(client_type="service", scope="openid", redirect_uris=[])
    assert client.post("/oauth/introspect", data={"token": tokens["access_token"]},
                       headers=resource_server.basic).get_json()["active"] is True
    client.post("/oauth/revoke", data={"token": tokens["access_token"]}, headers=rp.basic)
    assert client.post("/oauth/introspect", data={"token": tokens["access_token"]},
                       headers=rp.basic).get_json() == {"active": False}


def test_discovery_lists_endpoints_that_all_answer(client):
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert meta["issuer"] == "http://localhost"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
                 "revocation_endpoint", "introspection_endpoint", "end_session_endpoint"):
        path = meta[name].removeprefix("http://localhost")
        get = client.get(path)
        post = client.post(path)
        assert get.status_code != 404 and post.status_code != 404, name
        assert get.status_code < 500 and post.status_code < 500, name


def test_discovery_document_validates_against_the_spec(client):
    from authlib.oidc.discovery import OpenIDProviderMetadata

    OpenIDProviderMetadata(client.get("/.well-known/openid-configuration").get_json()).validate()


def test_jwks_publishes_public_keys_only(client):
    keys = client.get("/.well-known/jwks.json").get_json()["keys"]
    assert keys
    for key in keys:
        assert key["kid"] and key["alg"] in ("RS256", "ES256") and key["use"] == "sig"
        assert "d" not in key and "p" not in key


def test_jwks_is_cached_no_longer_than_a_rotated_key_takes_to_sign(app, client):
    # another process's rotation is picked up within SIGNING_KEYS_RECHECK_SECONDS and the new
    # key signs from then on: a JWKS cached longer would miss it
    wait = app.config["SIGNING_KEYS_RECHECK_SECONDS"]
    assert client.get("/.well-known/jwks.json").headers["Cache-Control"] == f"public, max-age={wait}"
    assert wait <= 5


def test_key_rotation_keeps_the_old_key_published(app, signed_in_flow, tmp_path):
    from idp.oauth.keys import KeyStore, key_store
    import shutil

    # rotate in a private copy of the keys so other tests keep theirs
    shutil.copytree(app.config["KEYS_DIR"], tmp_path / "keys")
    with app.app_context():
        store = KeyStore(tmp_path / "keys" / "signing", key_store().publish_for)
        app.extensions["idp_keys"] = store
        old = store.current("RS256").kid
        es256 = store.current("ES256").kid
        new = store.rotate("RS256")
    kids = {k["kid"] for k in signed_in_flow.client.get("/.well-known/jwks.json").get_json()["keys"]}
    assert {old, new.kid, es256} <= kids  # the other algorithm's key is not retired by this rotation
    tokens = signed_in_flow.tokens()
    from .test_token import header

    assert header(tokens["id_token"])["kid"] == new.kid
    assert header(tokens["id_token"])["alg"] == "RS256"
