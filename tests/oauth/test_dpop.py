"""DPoP (RFC 9449): sender-constrained tokens, driven over HTTP the way a mobile app (a public
client) does it — every proof built and signed with joserfc here, as a client would."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import warnings

import pytest
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from ..conftest import DEFAULT_PASSWORD
from ..helpers import login, query_params
from .conftest import CodeFlow, pkce_pair

ISSUER = "http://localhost"  # the testing configuration's issuer
TOKEN_URL = ISSUER + "/oauth/token"
USERINFO_URL = ISSUER + "/oauth/userinfo"
ALGS = ["ES256", "PS256", "RS256", "Ed25519", "EdDSA"]


def _b64_sha256(value: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(value.encode()).digest()).rstrip(b"=").decode()


class DPoPKey:
    """The client's key pair and the proofs it signs (RFC 9449 §4.2)."""

    def __init__(self, alg: str = "ES256") -> None:
        self.alg = alg
        if alg == "ES256":
            self.key = ECKey.generate_key("P-256")
        elif alg in ("RS256", "PS256"):
            self.key = RSAKey.generate_key(2048)
        else:
            self.key = OKPKey.generate_key("Ed25519")

    @property
    def jkt(self) -> str:
        return self.key.thumbprint()

    def proof(self, method: str = "POST", url: str = TOKEN_URL, *, access_token: str | None = None,
              nonce: str | None = None, iat: float | None = None, header: dict | None = None,
              sign_with=None, **claims) -> str:
        protected = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.key.as_dict(private=False)}
        protected.update(header or {})
        body = {"jti": secrets.token_urlsafe(16), "htm": method, "htu": url, "iat": int(iat or time.time())}
        if access_token is not None:
            body["ath"] = _b64_sha256(access_token)
        if nonce is not None:
            body["nonce"] = nonce
        body.update(claims)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SecurityWarning)  # joserfc's note on "EdDSA" (RFC 9864)
            return jwt.encode(protected, body, sign_with or self.key, algorithms=[protected["alg"]])


@pytest.fixture
def app_rp(make_client):
    """The exam service's mobile app: a public client (no secret, PKCE)."""
    return make_client(first_party=True, client_type="public")


@pytest.fixture
def app_flow(client, app_rp, user):
    assert login(client, user.username, DEFAULT_PASSWORD).status_code == 302
    return CodeFlow(client, app_rp)


@pytest.fixture
def resource_server(make_client):
    """A service client allowed to introspect (a resource server of the bureau)."""
    return make_client(client_type="service", scope="openid", redirect_uris=[])


def _code(flow: CodeFlow, **params) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    code, _ = flow.code(code_challenge=challenge, code_challenge_method="S256",
                        scope="openid profile offline_access", **params)
    return code, verifier


def _exchange(flow: CodeFlow, code: str, verifier: str, proof: str | None):
    return flow.exchange(code, verifier=verifier, auth={"DPoP": proof} if proof else {})


def _refresh(client, rp, refresh_token: str, proof: str | None):
    headers = {"DPoP": proof} if proof else {}
    return client.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token,
                                              "client_id": rp.client_id}, headers=headers)


def _userinfo(client, access_token: str, proof: str | None, scheme: str = "DPoP"):
    headers = {"Authorization": f"{scheme} {access_token}"}
    if proof:
        headers["DPoP"] = proof
    return client.get("/oauth/userinfo", headers=headers)


def _claims(token: str) -> dict:
    import json

    return json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))


def _dpop_tokens(flow: CodeFlow, key: DPoPKey) -> dict:
    code, verifier = _code(flow)
    response = _exchange(flow, code, verifier, key.proof())
    assert response.status_code == 200, response.data.decode()
    return response.get_json()


def _challenge(response) -> str:
    assert response.status_code == 401, response.data.decode()
    return response.headers["WWW-Authenticate"]


# -- the happy path ----------------------------------------------------------------------------------
def test_code_flow_refresh_and_userinfo_bound_to_the_apps_key(client, app_flow, app_rp, resource_server):
    key = DPoPKey()
    tokens = _dpop_tokens(app_flow, key)
    assert tokens["token_type"] == "DPoP"
    assert _claims(tokens["access_token"])["cnf"] == {"jkt": key.jkt}

    info = _userinfo(client, tokens["access_token"],
                     key.proof("GET", USERINFO_URL, access_token=tokens["access_token"]))
    assert info.status_code == 200, info.data.decode()
    assert info.get_json()["preferred_username"] == "zhangsan"

    introspected = client.post("/oauth/introspect", data={"token": tokens["access_token"]},
                               headers=resource_server.basic).get_json()
    assert introspected["active"] is True and introspected["token_type"] == "DPoP"
    assert introspected["cnf"] == {"jkt": key.jkt}

    refreshed = _refresh(client, app_rp, tokens["refresh_token"], key.proof())
    assert refreshed.status_code == 200, refreshed.data.decode()
    again = refreshed.get_json()
    assert again["token_type"] == "DPoP" and _claims(again["access_token"])["cnf"] == {"jkt": key.jkt}
    # the rotated refresh token is bound to the same key
    assert _refresh(client, app_rp, again["refresh_token"], DPoPKey().proof()).get_json()["error"] == "invalid_grant"
    assert _refresh(client, app_rp, again["refresh_token"], key.proof()).status_code == 200


def test_without_a_proof_tokens_stay_bearer(client, app_flow):
    code, verifier = _code(app_flow)
    tokens = _exchange(app_flow, code, verifier, None).get_json()
    assert tokens["token_type"] == "Bearer" and "cnf" not in _claims(tokens["access_token"])
    assert _userinfo(client, tokens["access_token"], None, scheme="Bearer").status_code == 200
    # a Bearer token is not a DPoP token: the DPoP scheme needs a bound one
    refused = _userinfo(client, tokens["access_token"],
                        DPoPKey().proof("GET", USERINFO_URL, access_token=tokens["access_token"]))
    assert 'error="invalid_token"' in _challenge(refused)


@pytest.mark.parametrize("alg", ALGS)
def test_every_advertised_algorithm_is_accepted(client, resource_server, alg):
    key = DPoPKey(alg)
    response = client.post("/oauth/token", data={"grant_type": "client_credentials", "scope": "openid"},
                           headers={**resource_server.basic, "DPoP": key.proof()})
    assert response.status_code == 200, response.data.decode()
    assert response.get_json()["token_type"] == "DPoP"
    assert _claims(response.get_json()["access_token"])["cnf"]["jkt"] == key.jkt


def test_discovery_advertises_exactly_the_accepted_algorithms(client):
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert meta["dpop_signing_alg_values_supported"] == ALGS


# -- proofs that are refused -------------------------------------------------------------------------
def test_a_replayed_proof_is_refused(client, app_flow, app_rp):
    key = DPoPKey()
    code, verifier = _code(app_flow)
    proof = key.proof()
    tokens = _exchange(app_flow, code, verifier, proof).get_json()
    replayed = _refresh(client, app_rp, tokens["refresh_token"], proof)
    assert replayed.status_code == 400
    assert replayed.get_json()["error"] == "invalid_dpop_proof" and "used before" in replayed.get_json()["error_description"]

    at = tokens["access_token"]
    at_userinfo = key.proof("GET", USERINFO_URL, access_token=at)
    assert _userinfo(client, at, at_userinfo).status_code == 200
    assert 'error="invalid_dpop_proof"' in _challenge(_userinfo(client, at, at_userinfo))


@pytest.mark.parametrize("change, says", [
    ({"url": ISSUER + "/oauth/userinfo"}, "htu"),
    ({"url": "https://localhost/oauth/token"}, "htu"),
    ({"method": "GET"}, "htm"),
    ({"iat_offset": -120}, "iat"),  # IDP_DPOP_IAT_WINDOW is 60 s
    ({"iat_offset": 120}, "iat"),
    ({"header": {"typ": "JWT"}}, "typ"),
    ({"header": {"alg": "HS256"}, "sign_with": OctKey.generate_key(256)}, "alg"),
    ({"jti": ""}, "jti"),
])
def test_a_wrong_proof_is_refused_and_the_code_survives(app_flow, change, says):
    key = DPoPKey()
    code, verifier = _code(app_flow)
    change = dict(change)
    if "iat_offset" in change:  # relative to now, not to when the tests were collected
        change["iat"] = time.time() + change.pop("iat_offset")
    proof = key.proof(change.pop("method", "POST"), change.pop("url", TOKEN_URL), **change)
    refused = _exchange(app_flow, code, verifier, proof)
    assert refused.status_code == 400
    assert refused.get_json()["error"] == "invalid_dpop_proof"
    assert says in refused.get_json()["error_description"]
    # checked before the code is spent: a correct proof still redeems it
    assert _exchange(app_flow, code, verifier, key.proof()).status_code == 200


def test_a_proof_with_a_private_key_or_signed_by_another_key_is_refused(client, resource_server):
    key = DPoPKey()
    leaked = key.proof(header={"jwk": key.key.as_dict(private=True)})
    forged = key.proof(sign_with=ECKey.generate_key("P-256"))
    short_rsa = DPoPKey("RS256")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)  # joserfc warns of the short key, rightly
        short_rsa.key = RSAKey.generate_key(1024)
    for proof, says in ((leaked, "public key"), (forged, "signature"), (short_rsa.proof(), "too short")):
        response = client.post("/oauth/token", data={"grant_type": "client_credentials", "scope": "openid"},
                               headers={**resource_server.basic, "DPoP": proof})
        assert response.status_code == 400 and response.get_json()["error"] == "invalid_dpop_proof"
        assert says in response.get_json()["error_description"]


def test_userinfo_wants_a_proof_that_hashes_the_token(client, app_flow):
    key = DPoPKey()
    tokens = _dpop_tokens(app_flow, key)
    at = tokens["access_token"]
    no_proof = _userinfo(client, at, None)
    assert 'error="invalid_dpop_proof"' in _challenge(no_proof)
    assert 'algs="ES256 PS256 RS256 Ed25519 EdDSA"' in no_proof.headers["WWW-Authenticate"]
    missing_ath = _userinfo(client, at, key.proof("GET", USERINFO_URL))
    assert 'error="invalid_dpop_proof"' in _challenge(missing_ath) and "ath" in missing_ath.get_json()["error_description"]
    wrong_ath = _userinfo(client, at, key.proof("GET", USERINFO_URL, access_token=at + "x"))
    assert "ath" in wrong_ath.get_json()["error_description"]
    other_key = _userinfo(client, at, DPoPKey().proof("GET", USERINFO_URL, access_token=at))
    assert 'error="invalid_dpop_proof"' in _challenge(other_key) and "bound" in other_key.get_json()["error_description"]
    wrong_method = _userinfo(client, at, key.proof("POST", USERINFO_URL, access_token=at))
    assert "htm" in wrong_method.get_json()["error_description"]
    assert _userinfo(client, at, key.proof("GET", USERINFO_URL, access_token=at)).status_code == 200


def test_a_bound_token_presented_as_bearer_is_refused(client, app_flow):
    key = DPoPKey()
    at = _dpop_tokens(app_flow, key)["access_token"]
    refused = _userinfo(client, at, key.proof("GET", USERINFO_URL, access_token=at), scheme="Bearer")
    challenge = _challenge(refused)
    assert challenge.startswith("DPoP ") and 'error="invalid_token"' in challenge
    assert refused.get_json()["error"] == "invalid_token"


# -- refresh tokens of a public client -----------------------------------------------------------------
def test_a_public_clients_refresh_token_needs_its_key(client, app_flow, app_rp):
    key = DPoPKey()
    refresh_token = _dpop_tokens(app_flow, key)["refresh_token"]
    for proof in (None, DPoPKey().proof()):
        refused = _refresh(client, app_rp, refresh_token, proof)
        assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
    # refused before rotation: the holder of the key still refreshes (no reuse alarm went off)
    assert _refresh(client, app_rp, refresh_token, key.proof()).status_code == 200


def test_a_confidential_clients_refresh_token_is_not_key_bound(client, make_client, user):
    rp = make_client(first_party=True)
    assert login(client, user.username, DEFAULT_PASSWORD).status_code == 302
    flow = CodeFlow(client, rp)
    code, verifier = _code(flow)
    tokens = flow.exchange(code, verifier=verifier, auth={**rp.basic, "DPoP": DPoPKey().proof()}).get_json()
    assert tokens["token_type"] == "DPoP"
    # its secret already constrains the refresh token (RFC 9449 §5); without a proof: a Bearer token
    plain = client.post("/oauth/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                        headers=rp.basic)
    assert plain.status_code == 200 and plain.get_json()["token_type"] == "Bearer"


def test_a_client_that_must_use_dpop_gets_nothing_without_a_proof(client, make_client, user):
    rp = make_client(first_party=True, client_type="public", dpop_bound_access_tokens=True)
    assert login(client, user.username, DEFAULT_PASSWORD).status_code == 302
    flow = CodeFlow(client, rp)
    code, verifier = _code(flow)
    refused = _exchange(flow, code, verifier, None)
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_dpop_proof"
    assert _exchange(flow, code, verifier, DPoPKey().proof()).get_json()["token_type"] == "DPoP"


# -- server nonces -------------------------------------------------------------------------------------
def test_nonce_challenge_at_the_token_endpoint_and_userinfo(app, client, app_flow):
    app.config["DPOP_REQUIRE_NONCE"] = True
    key = DPoPKey()
    code, verifier = _code(app_flow)
    challenged = _exchange(app_flow, code, verifier, key.proof())
    assert challenged.status_code == 400 and challenged.get_json()["error"] == "use_dpop_nonce"
    nonce = challenged.headers["DPoP-Nonce"]
    wrong = _exchange(app_flow, code, verifier, key.proof(nonce="not-the-servers"))
    assert wrong.get_json()["error"] == "use_dpop_nonce"
    issued = _exchange(app_flow, code, verifier, key.proof(nonce=nonce))
    assert issued.status_code == 200, issued.data.decode()
    assert issued.headers["DPoP-Nonce"]  # the nonce to use next
    at = issued.get_json()["access_token"]

    at_userinfo = _userinfo(client, at, key.proof("GET", USERINFO_URL, access_token=at))
    assert 'error="use_dpop_nonce"' in _challenge(at_userinfo)
    nonce = at_userinfo.headers["DPoP-Nonce"]
    assert _userinfo(client, at, key.proof("GET", USERINFO_URL, access_token=at, nonce=nonce)).status_code == 200


def test_nonces_expire(app, client, resource_server, monkeypatch):
    app.config.update(DPOP_REQUIRE_NONCE=True, DPOP_NONCE_LIFETIME=300)
    key = DPoPKey()
    form = {"grant_type": "client_credentials", "scope": "openid"}
    nonce = client.post("/oauth/token", data=form, headers={**resource_server.basic, "DPoP": key.proof()}
                        ).headers["DPoP-Nonce"]
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 2 * 300)  # two windows on
    stale = client.post("/oauth/token", data=form,
                        headers={**resource_server.basic, "DPoP": key.proof(nonce=nonce, iat=now + 600)})
    assert stale.get_json()["error"] == "use_dpop_nonce" and stale.headers["DPoP-Nonce"] != nonce


# -- dpop_jkt: the code bound at the authorization request -------------------------------------------
def test_dpop_jkt_binds_the_code_to_the_key(app_flow):
    key = DPoPKey()
    code, verifier = _code(app_flow, dpop_jkt=key.jkt)
    for proof in (None, DPoPKey().proof()):
        refused = _exchange(app_flow, code, verifier, proof)
        assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
    issued = _exchange(app_flow, code, verifier, key.proof())
    assert issued.status_code == 200 and _claims(issued.get_json()["access_token"])["cnf"]["jkt"] == key.jkt


def test_a_malformed_dpop_jkt_is_refused_to_the_redirect_uri(app_flow):
    response = app_flow.authorize(dpop_jkt="not a thumbprint")
    assert response.status_code == 302
    got = query_params(response.headers["Location"])
    assert got["error"] == "invalid_request" and "dpop_jkt" in got["error_description"] and "code" not in got


def _push(client, rp, headers=None, **params):
    verifier, challenge = pkce_pair()
    form = {"response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
            "scope": "openid profile", "state": "s1", "code_challenge": challenge, "code_challenge_method": "S256"}
    form.update(params)
    return client.post("/oauth/par", data=form, headers={**rp.basic, **(headers or {})}), verifier


def test_a_proof_sent_to_par_binds_the_code(client, rp, user):
    key = DPoPKey()
    par_url = ISSUER + "/oauth/par"
    mismatch, _ = _push(client, rp, {"DPoP": key.proof(url=par_url)}, dpop_jkt=DPoPKey().jkt)
    assert mismatch.status_code == 400 and mismatch.get_json()["error"] == "invalid_dpop_proof"

    pushed, verifier = _push(client, rp, {"DPoP": key.proof(url=par_url)})
    assert pushed.status_code == 201, pushed.data.decode()
    assert login(client, user.username, DEFAULT_PASSWORD).status_code == 302
    response = client.get("/oauth/authorize", query_string={"client_id": rp.client_id,
                                                            "request_uri": pushed.get_json()["request_uri"]})
    code = query_params(response.headers["Location"])["code"]
    flow = CodeFlow(client, rp)
    wrong = flow.exchange(code, verifier=verifier, auth={**rp.basic, "DPoP": DPoPKey().proof()})
    assert wrong.get_json()["error"] == "invalid_grant"
    right = flow.exchange(code, verifier=verifier, auth={**rp.basic, "DPoP": key.proof()})
    assert right.status_code == 200 and right.get_json()["token_type"] == "DPoP"


def test_over_a_real_server_the_proof_names_the_published_url(live_server):
    import requests

    from idp.services.admin.clients import ClientSpec, create_client

    with live_server.app.app_context():
        service, secret = create_client(ClientSpec(name="考试成绩服务", client_type="service", scope="openid"))
        client_id = service.client_id
    meta = requests.get(f"{live_server.url}/.well-known/openid-configuration", timeout=10).json()
    key = DPoPKey()
    form = {"grant_type": "client_credentials", "scope": "openid"}
    issued = requests.post(meta["token_endpoint"], data=form, auth=(client_id, secret), timeout=10,
                           headers={"DPoP": key.proof(url=meta["token_endpoint"])})
    assert issued.status_code == 200, issued.text
    assert issued.json()["token_type"] == "DPoP"
    # the proof must name the URL the provider publishes, not another name of the same host
    elsewhere = meta["token_endpoint"].replace("127.0.0.1", "localhost")
    refused = requests.post(meta["token_endpoint"], data=form, auth=(client_id, secret), timeout=10,
                            headers={"DPoP": key.proof(url=elsewhere)})
    assert refused.status_code == 400 and "htu" in refused.json()["error_description"]
    introspected = requests.post(meta["introspection_endpoint"], data={"token": issued.json()["access_token"]},
                                 auth=(client_id, secret), timeout=10).json()
    assert introspected["token_type"] == "DPoP" and introspected["cnf"] == {"jkt": key.jkt}


def test_htu_is_compared_without_query_case_or_default_port(client, resource_server):
    key = DPoPKey()
    form = {"grant_type": "client_credentials", "scope": "openid"}
    same = key.proof(url="HTTP://LocalHost:80/oauth/token?ignored=1#too")
    assert client.post("/oauth/token", data=form, headers={**resource_server.basic, "DPoP": same}).status_code == 200
    other_port = key.proof(url="http://localhost:8080/oauth/token")
    refused = client.post("/oauth/token", data=form, headers={**resource_server.basic, "DPoP": other_port})
    assert refused.status_code == 400 and "htu" in refused.get_json()["error_description"]


def test_two_dpop_headers_are_refused(client, resource_server):
    key = DPoPKey()
    headers = [*resource_server.basic.items(), ("DPoP", key.proof()), ("DPoP", key.proof())]
    refused = client.post("/oauth/token", data={"grant_type": "client_credentials", "scope": "openid"},
                          headers=headers)
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_dpop_proof"
    assert "More than one" in refused.get_json()["error_description"]
