"""Protocol endpoints are called by clients, not browsers: no server-side session is loaded or
saved for them, no session cookie is set, and they still answer as before."""

from __future__ import annotations

from idp.extensions import redis_store

from .test_resources import bearer


def _session_keys(app) -> list:
    with app.app_context():
        return list(redis_store.scan_iter("session:*"))


def test_protocol_endpoints_set_no_cookie_and_store_no_session(app, make_client, make_user):
    # a fresh test client per call: no cookie jar, every request is a first visit
    service = make_client(client_type="service", scope="openid", redirect_uris=[])
    rp = make_client(first_party=True)
    user = make_user()
    calls = [
        ("get", "/.well-known/openid-configuration", {}, {}),
        ("get", "/.well-known/jwks.json", {}, {}),
        ("post", "/oauth/token", {"grant_type": "client_credentials"}, service.basic),
    ]
    answers = []
    for method, path, data, headers in calls:
        response = getattr(app.test_client(), method)(path, data=data, headers=headers)
        assert response.status_code == 200, (path, response.data[:300])
        assert "Set-Cookie" not in response.headers, path
        answers.append(response)
    token = answers[-1].get_json()["access_token"]
    with app.app_context():
        from idp.models import Client, User
        from idp.extensions import db
        from idp.oauth.access_tokens import issue_access_token

        user_token = issue_access_token(db.session.get(Client, db.session.scalar(
            db.select(Client.id).filter_by(client_id=rp.client_id))), db.session.get(User, user.id), "openid profile", {})
    more = [
        ("get", "/oauth/userinfo", {}, bearer(user_token), 200),
        ("post", "/oauth/userinfo", {}, bearer(user_token), 200),
        ("get", "/oauth/userinfo", {}, bearer("not.a.token"), 401),
        ("post", "/oauth/introspect", {"token": token}, service.basic, 200),
        ("post", "/oauth/revoke", {"token": token}, service.basic, 200),
        ("post", "/oauth/token", {"grant_type": "client_credentials"}, {"Authorization": "Basic eDp5"}, 401),
    ]
    for method, path, data, headers, status in more:
        response = getattr(app.test_client(), method)(path, data=data, headers=headers)
        assert response.status_code == status, (path, response.data[:300])
        assert "Set-Cookie" not in response.headers, path
    assert _session_keys(app) == []
    # the security headers are still there, and the protocol answers stay uncached
    assert answers[2].headers["X-Content-Type-Options"] == "nosniff"
    assert answers[2].headers["Cache-Control"] == "no-store"
    assert answers[0].headers["Cache-Control"].startswith("public, max-age=")
    assert answers[0].headers["Access-Control-Allow-Origin"] == "*"


def test_a_browser_page_still_gets_its_session(app):
    client = app.test_client()
    response = client.get("/login")
    assert response.status_code == 200
    assert "idp_session=" in response.headers.get("Set-Cookie", "")
    assert _session_keys(app)


def test_discovery_follows_a_key_rotation(app):
    client = app.test_client()
    before = client.get("/.well-known/jwks.json").get_json()
    with app.app_context():
        from idp.oauth.keys import key_store

        key_store().rotate("RS256")
    after = client.get("/.well-known/jwks.json").get_json()
    assert len(after["keys"]) == len(before["keys"]) + 1


def test_discovery_and_jwks_answered_before_flask_are_the_same_bytes(app):
    """The second GET of each document is answered from the first one's bytes (no request
    context): same status, headers and body; still counted in the metrics; a rotated key and the
    TLS scheme each get an answer of their own."""
    from idp.metrics import REQUESTS

    def counted(endpoint: str) -> float:
        return REQUESTS.labels(endpoint, "GET", "200")._value.get()

    client = app.test_client()
    for path, endpoint in (("/.well-known/openid-configuration", "oauth.discovery"),
                           ("/.well-known/jwks.json", "oauth.jwks")):
        first = client.get(path)
        before = counted(endpoint)
        app.view_functions[endpoint], view = (lambda: ("the view ran", 500)), app.view_functions[endpoint]
        try:
            second = client.get(path)
        finally:
            app.view_functions[endpoint] = view
        assert first.status_code == second.status_code == 200
        assert second.data == first.data
        assert sorted(second.headers.items()) == sorted(first.headers.items())
        assert counted(endpoint) == before + 1
        tls = client.get(path, base_url="https://localhost")
        assert tls.status_code == 200 and tls.data == first.data
        assert "Strict-Transport-Security" in tls.headers  # the TLS answer is not the plain one
        assert "Strict-Transport-Security" not in second.headers
    # another method still goes through the app
    assert client.post("/.well-known/jwks.json").status_code == 405
    before = client.get("/.well-known/jwks.json").get_json()
    with app.app_context():
        from idp.oauth.keys import key_store

        key_store().rotate("RS256")
    assert len(client.get("/.well-known/jwks.json").get_json()["keys"]) == len(before["keys"]) + 1
