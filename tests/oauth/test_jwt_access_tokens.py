"""RFC 9068 access tokens: issued and validated with Authlib's own generator and validator.

A client_credentials token is issued without a row in the tokens table; revoking it (rare)
writes the revocation record (its jti and expiry) and the Redis deny-list entry, and a Redis that
lost its data reloads the deny-list from PostgreSQL before accepting any token.  The signing
algorithm of access tokens is a setting (RS256, ES256); ID tokens keep the client's own.
"""

from __future__ import annotations

import time

import pytest
from joserfc import jwt
from sqlalchemy import func, select

from idp.extensions import db, redis_store
from idp.models import AuditEvent, Client, Token
from idp.services.audit.stream import Drainer

from .test_token import header, jwks


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def service(make_client):
    return make_client(client_type="service", scope="openid profile", redirect_uris=[])


def client_credentials(client, service, **data):
    return client.post("/oauth/token", data={"grant_type": "client_credentials", **data}, headers=service.basic)


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_client_credentials_token_verifies_against_the_jwks(app, client, service, alg):
    app.config["ACCESS_TOKEN_ALG"] = alg
    answer = client_credentials(client, service, scope="openid").get_json()
    token = answer["access_token"]
    head = header(token)
    assert head["typ"] == "at+jwt" and head["alg"] == alg
    published = {k["kid"]: k for k in client.get("/.well-known/jwks.json").get_json()["keys"]}
    assert published[head["kid"]]["alg"] == alg and published[head["kid"]]["use"] == "sig"
    claims = jwt.decode(token, jwks(client), algorithms=[alg]).claims
    now = time.time()
    assert claims["iss"] == "http://localhost" and claims["aud"] == "http://localhost"
    assert claims["sub"] == claims["client_id"] == service.client_id
    assert claims["scope"] == "openid" and claims["jti"]
    assert now - 5 <= claims["iat"] <= now and claims["exp"] == claims["iat"] + answer["expires_in"]
    assert "auth_time" not in claims and "amr" not in claims  # no login behind it
    # the provider's own validator accepts it: introspection says active
    assert client.post("/oauth/introspect", data={"token": token}, headers=service.basic).get_json()["active"]


def test_the_jwks_publishes_an_rsa_and_an_ec_key(client):
    keys = client.get("/.well-known/jwks.json").get_json()["keys"]
    by_alg = {k["alg"]: k for k in keys}
    assert by_alg["RS256"]["kty"] == "RSA" and by_alg["ES256"]["kty"] == "EC" and by_alg["ES256"]["crv"] == "P-256"
    assert all(k["kid"] and k["use"] == "sig" for k in keys)


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_a_users_token_in_either_algorithm_works_at_userinfo_and_id_tokens_keep_rs256(app, signed_in_flow, alg):
    app.config["ACCESS_TOKEN_ALG"] = alg
    tokens = signed_in_flow.tokens(scope="openid profile")
    keys = jwks(signed_in_flow.client)
    access = jwt.decode(tokens["access_token"], keys, algorithms=[alg])
    assert access.header["typ"] == "at+jwt"
    assert {"auth_time", "amr", "sid"} <= access.claims.keys()
    assert header(tokens["id_token"])["alg"] == "RS256"  # the client registered no other
    assert signed_in_flow.client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 200


def test_an_id_token_follows_the_clients_registered_algorithm(app, signed_in_flow):
    with app.app_context():
        row = db.session.scalar(select(Client).where(Client.client_id == signed_in_flow.rp.client_id))
        row.id_token_signed_response_alg = "ES256"
        db.session.commit()
    tokens = signed_in_flow.tokens()
    assert header(tokens["id_token"])["alg"] == "ES256"
    jwt.decode(tokens["id_token"], jwks(signed_in_flow.client), algorithms=["ES256"])
    assert header(tokens["access_token"])["alg"] == app.config["ACCESS_TOKEN_ALG"] == "RS256"


def test_client_credentials_writes_no_token_row_and_is_still_audited(app, client, service):
    tokens_before, events_before = count(app, Token), count(app, AuditEvent)
    for _ in range(3):
        assert client_credentials(client, service).status_code == 200
    assert count(app, Token) == tokens_before
    Drainer(app).drain()  # the events went to the audit buffer; the drainer writes them
    with app.app_context():
        issued = db.session.scalars(select(AuditEvent).where(AuditEvent.event == "token.issued")).all()
        assert len(issued) == 3 and count(app, AuditEvent) == events_before + 3
        assert {e.client_id for e in issued} == {service.client_id}
        assert all(e.details["grant_type"] == "client_credentials" and e.details["jti"] for e in issued)


def test_revoking_a_client_credentials_token_records_it_and_introspection_says_inactive(app, client, service):
    token = client_credentials(client, service).get_json()["access_token"]
    jti = jwt.decode(token, jwks(client)).claims["jti"]
    assert client.post("/oauth/revoke", data={"token": token}, headers=service.basic).status_code == 200
    assert client.post("/oauth/introspect", data={"token": token}, headers=service.basic).get_json() == {
        "active": False}
    with app.app_context():
        row = db.session.scalar(select(Token).where(Token.jti == jti))
        assert row is not None and row.revoked_at is not None and row.user_id is None
        assert row.client_id == service.client_id
        ttl = redis_store.ttl(f"revoked-jti:{jti}")
        assert 0 < ttl <= app.config["ACCESS_TOKEN_LIFETIME"]  # the deny-list entry expires with the token
    # revoking it again is harmless (RFC 7009) and writes nothing more
    assert client.post("/oauth/revoke", data={"token": token}, headers=service.basic).status_code == 200
    assert count(app, Token) == 1


def test_a_revoked_client_credentials_token_stays_refused_after_redis_lost_its_data(app, client, service):
    revoked = client_credentials(client, service).get_json()["access_token"]
    kept = client_credentials(client, service).get_json()["access_token"]
    client.post("/oauth/revoke", data={"token": revoked}, headers=service.basic)
    with app.app_context():
        redis_store.flushdb()  # a Redis restart without persistence: the marker is gone too
        assert redis_store.get("revocations:loaded") is None
    assert client.post("/oauth/introspect", data={"token": revoked}, headers=service.basic).get_json() == {
        "active": False}
    with app.app_context():
        assert redis_store.get("revocations:loaded") is not None  # reloaded before answering
        assert redis_store.exists(f"revoked-jti:{jwt.decode(revoked, jwks(client)).claims['jti']}")
    assert client.post("/oauth/introspect", data={"token": kept}, headers=service.basic).get_json()["active"]


def test_introspecting_a_users_token_needs_no_database(app, signed_in_flow, make_client):
    from sqlalchemy import event

    tokens = signed_in_flow.tokens(scope="openid profile offline_access")
    resource_server = make_client(client_type="service", scope="openid", redirect_uris=[])
    client = signed_in_flow.client
    client.post("/oauth/introspect", data={"token": tokens["access_token"]}, headers=resource_server.basic)
    with app.app_context():
        engine = db.engine

    def statements_of(token: str) -> tuple[dict, list]:
        seen = []
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            answer = client.post("/oauth/introspect", data={"token": token}, headers=resource_server.basic)
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        return answer.get_json(), seen

    answer, statements = statements_of(tokens["access_token"])
    assert answer["active"] and answer["username"] == "zhangsan" and answer["token_type"] == "Bearer"
    assert answer["sub"] and answer["aud"] == "http://localhost"
    assert statements == []
    # a refresh token is looked up in the database (and the listener sees it)
    answer, statements = statements_of(tokens["refresh_token"])
    assert answer["active"] and answer["token_type"] == "refresh_token" and statements


def test_a_token_signed_by_a_key_not_ours_or_of_another_type_is_refused(app, client, service):
    from joserfc.jwk import RSAKey

    token = client_credentials(client, service).get_json()["access_token"]
    claims = jwt.decode(token, jwks(client)).claims
    stranger = RSAKey.generate_key(2048, private=True)
    forged = jwt.encode({"alg": "RS256", "typ": "at+jwt", "kid": header(token)["kid"]}, claims, stranger)
    assert client.post("/oauth/introspect", data={"token": forged}, headers=service.basic).get_json() == {
        "active": False}
    with app.app_context():
        from idp.oauth.keys import key_store

        key = key_store().current("RS256")
        untyped = jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key.key)  # an ID token's shape
    assert client.get("/oauth/userinfo", headers=bearer(untyped)).status_code == 401


def test_a_claim_extension_adds_its_claims(app, client, service):
    with app.app_context():
        from idp.oauth.access_tokens import access_token_generator

        access_token_generator().claim_extensions.append(lambda subject: {"cnf": {"jkt": "thumbprint"}})
    token = client_credentials(client, service).get_json()["access_token"]
    assert jwt.decode(token, jwks(client)).claims["cnf"] == {"jkt": "thumbprint"}


# -- failed client authentication -----------------------------------------------------------------


@pytest.fixture
def strict(app):
    app.config.update(TOKEN_CLIENT_AUTH_FAILURES=3, TOKEN_CLIENT_AUTH_FAILURE_WINDOW=2)
    return app


def wrong(service):
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"{service.client_id}:wrong".encode()).decode()}


def test_failed_client_authentications_block_even_the_right_secret_until_the_window_passes(strict, client, service):
    for _ in range(3):
        failed = client.post("/oauth/token", data={"grant_type": "client_credentials"}, headers=wrong(service))
        assert failed.status_code == 401 and failed.get_json()["error"] == "invalid_client"
    blocked = client_credentials(client, service)
    assert blocked.status_code == 429
    assert blocked.get_json()["error"] == "invalid_client"
    assert 1 <= int(blocked.headers["Retry-After"]) <= 2
    # the same answer for a wrong secret: the block tells a guesser nothing
    again = client.post("/oauth/token", data={"grant_type": "client_credentials"}, headers=wrong(service))
    assert again.status_code == 429 and again.get_json() == blocked.get_json()
    # another address is not blocked
    elsewhere = client.post("/oauth/token", data={"grant_type": "client_credentials"}, headers=service.basic,
                            environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert elsewhere.status_code == 200
    time.sleep(2.2)
    assert client_credentials(client, service).status_code == 200


def test_successful_client_authentications_are_not_counted(strict, client, service):
    for _ in range(6):
        assert client_credentials(client, service).status_code == 200
    for _ in range(2):
        client.post("/oauth/token", data={"grant_type": "client_credentials"}, headers=wrong(service))
    assert client_credentials(client, service).status_code == 200  # two failures: under the limit


def test_the_limit_is_the_token_endpoints_only(strict, client, service):
    token = client_credentials(client, service).get_json()["access_token"]
    for _ in range(4):
        assert client.post("/oauth/introspect", data={"token": token}, headers=wrong(service)).status_code == 401
    assert client_credentials(client, service).status_code == 200


def test_introspection_and_userinfo_cost_one_redis_round_trip(app, signed_in_flow, make_client, monkeypatch):
    import redis

    tokens = signed_in_flow.tokens(scope="openid profile")
    resource_server = make_client(client_type="service", scope="openid", redirect_uris=[])
    client = signed_in_flow.client
    client.get("/oauth/userinfo", headers=bearer(tokens["access_token"]))  # the user's snapshot cached
    commands = []
    send = redis.Redis.execute_command

    def counted(self, *args, **options):
        commands.append(args[0])
        return send(self, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", counted)
    assert client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 200
    assert client.post("/oauth/introspect", data={"token": tokens["access_token"]},
                       headers=resource_server.basic).get_json()["active"]
    assert commands == ["MGET", "MGET"]


# -- a client's own tokens have no row: disabling it or removing a scope still ends them ---------


def introspect(client, token: str, by) -> dict:
    return client.post("/oauth/introspect", data={"token": token}, headers=by.basic).get_json()


def test_disabling_a_client_ends_its_client_credentials_tokens_for_good(app, client, service, make_client):
    from idp.services.admin.clients import disable_client, enable_client

    resource_server = make_client(client_type="service", scope="openid", redirect_uris=[])
    token = client_credentials(client, service).get_json()["access_token"]
    assert introspect(client, token, resource_server)["active"]
    time.sleep(1)  # iat has a resolution of one second
    with app.app_context():
        disable_client(service.client_id, reason="停止服务")
    assert introspect(client, token, resource_server) == {"active": False}
    with app.app_context():
        enable_client(service.client_id, reason="恢复服务")
    assert introspect(client, token, resource_server) == {"active": False}  # not brought back
    time.sleep(1)
    fresh = client_credentials(client, service).get_json()["access_token"]
    assert introspect(client, fresh, resource_server)["active"]


def test_removing_a_scope_ends_the_clients_own_tokens(app, client, service, make_client):
    from dataclasses import replace

    from idp.services.admin.clients import get_client, spec_of, update_client

    resource_server = make_client(client_type="service", scope="openid", redirect_uris=[])
    token = client_credentials(client, service, scope="openid profile").get_json()["access_token"]
    time.sleep(1)
    with app.app_context():
        spec = spec_of(get_client(service.client_id))
        update_client(service.client_id, replace(spec, scope="openid"), reason="收回权限")
    assert introspect(client, token, resource_server) == {"active": False}
