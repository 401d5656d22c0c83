"""Pushed authorization requests (RFC 9126) and signed request objects (RFC 9101)."""

from __future__ import annotations

import re
import secrets
import time
from urllib.parse import parse_qsl, urlsplit

import requests
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from idp.services.accounts.records import NewAccount, create_account
from idp.services.admin.clients import ClientSpec, create_client

from ..conftest import DEFAULT_PASSWORD
from ..helpers import CAPTCHA, form_fields, login, query_params
from .conftest import REDIRECT_URI, pkce_pair

URN = "urn:ietf:params:oauth:request_uri:"
LIVE_REDIRECT = "http://127.0.0.1:9/callback"  # never contacted: the test reads the redirect itself


def test_authlib_client_pushes_then_the_browser_completes_the_flow(live_server):
    with live_server.app.app_context():
        create_account(NewAccount(username="par00001", password=DEFAULT_PASSWORD, name="李娜",
                                  id_type="resident_id", id_number="440305199203157894",
                                  phone="13700137000"), real_name_verified=True)
        client, secret = create_client(ClientSpec(name="推送授权", redirect_uris=[LIVE_REDIRECT], first_party=True,
                                                  scope="openid profile",
                                                  require_pushed_authorization_requests=True))
        client_id = client.client_id

    meta = requests.get(f"{live_server.url}/.well-known/openid-configuration", timeout=10).json()
    assert meta["pushed_authorization_request_endpoint"] == f"{live_server.url}/oauth/par"
    oauth = OAuth2Session(client_id, secret, scope="openid profile", redirect_uri=LIVE_REDIRECT,
                          code_challenge_method="S256", token_endpoint_auth_method="client_secret_basic")
    verifier = secrets.token_urlsafe(48)
    url, state = oauth.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier,
                                                nonce="n-1")
    form = dict(parse_qsl(urlsplit(url).query))
    pushed = oauth.post(meta["pushed_authorization_request_endpoint"], data=form,
                        auth=oauth.client_auth("client_secret_basic"), withhold_token=True, timeout=10)
    assert pushed.status_code == 201, pushed.text
    body = pushed.json()
    assert body["request_uri"].startswith(URN) and body["expires_in"] == 90

    browser = requests.Session()
    # the client must push: the same request in the query is refused, on a page, not redirected
    plain = browser.get(url, allow_redirects=False, timeout=10)
    assert plain.status_code == 400
    short = f"{meta['authorization_endpoint']}?client_id={client_id}&request_uri={body['request_uri']}"
    to_login = browser.get(short, allow_redirects=False, timeout=10)
    assert to_login.status_code == 302
    fields = form_fields(browser.get(f"{live_server.url}/login", timeout=10).text)
    fields.update(username="par00001", password=DEFAULT_PASSWORD, captcha=CAPTCHA)
    resumed = browser.post(f"{live_server.url}/login", data=fields, allow_redirects=False, timeout=10)
    callback = browser.get(live_server.url + resumed.headers["Location"], allow_redirects=False, timeout=10)
    assert callback.status_code == 302, re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", callback.text))[:800]
    redirect_to = callback.headers["Location"]
    assert redirect_to.startswith(LIVE_REDIRECT) and "code=" in redirect_to, redirect_to
    token = oauth.fetch_token(meta["token_endpoint"], authorization_response=redirect_to,
                              code_verifier=verifier, state=state)
    assert token["id_token"]

    # single use: the same request_uri, even in the browser that used it, gives nothing more
    again = browser.get(short, allow_redirects=False, timeout=10)
    assert again.status_code == 400
    assert "code=" not in again.headers.get("Location", "")


def _push(client, rp, **params):
    verifier, challenge = pkce_pair()
    form = {"response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
            "scope": "openid profile", "state": "s1", "code_challenge": challenge, "code_challenge_method": "S256"}
    form.update(params)
    return client.post("/oauth/par", data={k: v for k, v in form.items() if v is not None}, headers=rp.basic), verifier


def test_a_pushed_request_is_claimed_by_the_first_browser(app, client, rp, user):
    pushed, _ = _push(client, rp)
    request_uri = pushed.get_json()["request_uri"]
    assert login(client, user.username, DEFAULT_PASSWORD).status_code == 302
    other = app.test_client()
    assert other.get("/oauth/authorize", query_string={"client_id": rp.client_id, "request_uri": request_uri}).status_code == 302
    # another browser (the one that logged in, here) finds it taken
    taken = client.get("/oauth/authorize", query_string={"client_id": rp.client_id, "request_uri": request_uri})
    assert taken.status_code == 400


def test_pushed_parameters_replace_the_query(client, rp, user):
    pushed, verifier = _push(client, rp, state="pushed-state")
    assert login(client, user.username, DEFAULT_PASSWORD).status_code == 302
    response = client.get("/oauth/authorize", query_string={
        "client_id": rp.client_id, "request_uri": pushed.get_json()["request_uri"], "state": "from-the-query",
        "redirect_uri": "https://evil.example.test/cb"})
    assert response.status_code == 302
    got = query_params(response.headers["Location"])
    assert response.headers["Location"].startswith(REDIRECT_URI)
    assert got["state"] == "pushed-state" and "code" in got


def test_par_refuses_bad_requests(client, rp, make_client):
    assert _push(client, rp, redirect_uri="https://other.example.test/cb")[0].status_code == 400
    assert _push(client, rp, request_uri=URN + "x")[0].status_code == 400
    unauthenticated = client.post("/oauth/par", data={"client_id": rp.client_id, "response_type": "code",
                                                      "redirect_uri": rp.redirect_uri})
    assert unauthenticated.status_code in (400, 401)
    assert unauthenticated.get_json()["error"] == "invalid_client"


def test_unknown_and_foreign_request_uris(client, rp, make_client):
    other = make_client(first_party=True)
    pushed, _ = _push(client, rp)
    foreign = client.get("/oauth/authorize", query_string={"client_id": other.client_id,
                                                           "request_uri": pushed.get_json()["request_uri"]})
    assert foreign.status_code == 400
    fetched = client.get("/oauth/authorize", query_string={"client_id": rp.client_id,
                                                           "request_uri": "https://rp.example.test/req.jwt"},
                         headers={"Accept": "application/json"})
    assert fetched.status_code == 400 and fetched.get_json()["error"] == "request_uri_not_supported"
    unknown = client.get("/oauth/authorize", query_string={"client_id": rp.client_id, "request_uri": URN + "nope"},
                         headers={"Accept": "application/json"})
    assert unknown.get_json()["error"] == "invalid_request_uri"


# -- signed request objects -----------------------------------------------------------------------
def _jar_client(make_client):
    key = ECKey.generate_key("P-256", parameters={"kid": "rp-1"})
    public = {"keys": [key.as_dict(private=False)]}
    rp = make_client(first_party=True, token_endpoint_auth_method="private_key_jwt", jwks=public)
    return rp, key


def _request_object(app, rp, key, **claims) -> str:
    now = int(time.time())
    verifier, challenge = pkce_pair()
    body = {"iss": rp.client_id, "aud": app.config["ISSUER"], "exp": now + 60, "iat": now,
            "client_id": rp.client_id, "response_type": "code", "redirect_uri": rp.redirect_uri,
            "scope": "openid profile", "state": "signed-state", "nonce": "n1",
            "code_challenge": challenge, "code_challenge_method": "S256"}
    body.update(claims)
    return jwt.encode({"alg": "ES256", "kid": "rp-1"}, body, key)


def test_a_signed_request_object_is_the_only_source(app, client, make_client, user):
    rp, key = _jar_client(make_client)
    assert login(client, user.username, DEFAULT_PASSWORD).status_code == 302
    response = client.get("/oauth/authorize", query_string={
        "client_id": rp.client_id, "request": _request_object(app, rp, key), "state": "unsigned"})
    assert response.status_code == 302, response.data.decode()[:400]
    got = query_params(response.headers["Location"])
    assert got["state"] == "signed-state" and "code" in got


def test_request_objects_that_are_refused(app, client, make_client, user):
    rp, key = _jar_client(make_client)
    stranger = ECKey.generate_key("P-256", parameters={"kid": "rp-1"})
    assert login(client, user.username, DEFAULT_PASSWORD).status_code == 302
    for token in (_request_object(app, rp, stranger),  # not its key
                  _request_object(app, rp, key, aud="https://elsewhere.example.test"),
                  _request_object(app, rp, key, exp=int(time.time()) - 3600),
                  _request_object(app, rp, key, iss="someone-else")):
        response = client.get("/oauth/authorize", query_string={"client_id": rp.client_id, "request": token},
                              headers={"Accept": "application/json"})
        assert response.status_code == 400
        assert response.get_json()["error"] == "invalid_request_object"


def test_a_request_object_can_be_pushed(app, client, make_client, user):
    rp, key = _jar_client(make_client)
    assertion_claims = {"iss": rp.client_id, "sub": rp.client_id, "aud": app.config["ISSUER"] + "/oauth/token",
                        "exp": int(time.time()) + 60, "jti": secrets.token_urlsafe(8)}
    assertion = jwt.encode({"alg": "ES256", "kid": "rp-1"}, assertion_claims, key)
    pushed = client.post("/oauth/par", data={
        "client_id": rp.client_id, "request": _request_object(app, rp, key),
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion})
    assert pushed.status_code == 201, pushed.data.decode()
    assert login(client, user.username, DEFAULT_PASSWORD).status_code == 302
    response = client.get("/oauth/authorize", query_string={"client_id": rp.client_id,
                                                            "request_uri": pushed.get_json()["request_uri"]})
    assert query_params(response.headers["Location"])["state"] == "signed-state"


def test_discovery_advertises_par_and_request_objects(client):
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert meta["request_parameter_supported"] is True
    assert meta["request_uri_parameter_supported"] is False  # only PAR's own URNs
    assert "ES256" in meta["request_object_signing_alg_values_supported"]
    assert meta["pushed_authorization_request_endpoint"].endswith("/oauth/par")


# -- a request object's jti is single use ---------------------------------------------------------
def _authorize_with_object(client, rp, token):
    return client.get("/oauth/authorize", query_string={"client_id": rp.client_id, "request": token},
                      headers={"Accept": "application/json"})


def test_a_request_object_with_a_jti_gives_one_code(app, client, make_client, user):
    rp, key = _jar_client(make_client)
    assert login(client, user.username, DEFAULT_PASSWORD).status_code == 302
    token = _request_object(app, rp, key, jti="req-" + secrets.token_hex(8))
    first = _authorize_with_object(client, rp, token)
    assert "code" in query_params(first.headers["Location"])
    again = _authorize_with_object(client, rp, token)
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_request_object"
    assert "already been used" in again.get_json()["error_description"]
    # a second browser, signed in as someone else, cannot use it either
    other = app.test_client()
    assert _authorize_with_object(other, rp, token).status_code == 400
    # another jti is another request
    fresh = _authorize_with_object(client, rp, _request_object(app, rp, key, jti="req-" + secrets.token_hex(8),
                                                                nonce="n2"))
    assert "code" in query_params(fresh.headers["Location"])


def test_the_browser_that_presented_it_keeps_it_through_consent(app, client, user):
    key = ECKey.generate_key("P-256", parameters={"kid": "rp-1"})
    with app.app_context():
        client_row, _ = create_client(ClientSpec(name="第三方系统", redirect_uris=[REDIRECT_URI], scope="openid profile",
                                                 token_endpoint_auth_method="private_key_jwt",
                                                 jwks={"keys": [key.as_dict(private=False)]}))
        rp = type("RP", (), {"client_id": client_row.client_id, "redirect_uri": REDIRECT_URI})()
    assert login(client, user.username, DEFAULT_PASSWORD).status_code == 302
    token = _request_object(app, rp, key, jti="consent-" + secrets.token_hex(8))
    consent = client.get("/oauth/authorize", query_string={"client_id": rp.client_id, "request": token})
    assert consent.status_code == 200 and "同意" in consent.data.decode()
    # a replay from elsewhere while the consent page is open is refused ...
    assert _authorize_with_object(app.test_client(), rp, token).status_code == 400
    # ... the consent form (which posts the same request) goes through, once
    fields = form_fields(consent.data)
    fields["decision"] = "allow"
    action = re.search(r'<form method="post" action="([^"]+)"', consent.data.decode()).group(1)
    answered = client.post(action.replace("&amp;", "&"), data=fields)
    assert answered.status_code == 302 and "code" in query_params(answered.headers["Location"])
    assert client.post(action.replace("&amp;", "&"), data=fields).status_code == 400


def test_a_pushed_request_object_jti_is_single_use(app, client, make_client):
    rp, key = _jar_client(make_client)
    token = _request_object(app, rp, key, jti="par-" + secrets.token_hex(8))

    def push(request_object):
        assertion = jwt.encode({"alg": "ES256", "kid": "rp-1"}, {
            "iss": rp.client_id, "sub": rp.client_id, "aud": app.config["ISSUER"] + "/oauth/token",
            "exp": int(time.time()) + 60, "jti": secrets.token_urlsafe(8)}, key)
        return client.post("/oauth/par", data={
            "client_id": rp.client_id, "request": request_object,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion})

    assert push(token).status_code == 201
    replayed = push(token)
    assert replayed.status_code == 400 and replayed.get_json()["error"] == "invalid_request_object"


def test_a_request_object_must_not_live_long(app, client, make_client, user):
    rp, key = _jar_client(make_client)
    longest = app.config["REQUEST_OBJECT_MAX_LIFETIME"]
    assert login(client, user.username, DEFAULT_PASSWORD).status_code == 302
    now = int(time.time())
    for claims in ({"exp": now + longest + 120}, {"iat": now - longest, "exp": now + 120}, {"exp": None}):
        token = _request_object(app, rp, key, **claims)
        if claims["exp"] is None:
            body = jwt.decode(token, key).claims
            body.pop("exp")
            token = jwt.encode({"alg": "ES256", "kid": "rp-1"}, body, key)
        refused = _authorize_with_object(client, rp, token)
        assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_request_object", claims
    ok = _authorize_with_object(client, rp, _request_object(app, rp, key, exp=now + longest - 5))
    assert "code" in query_params(ok.headers["Location"])
