from __future__ import annotations

import pytest

from idp.extensions import db
from idp.models import Client

from ..conftest import DEFAULT_PASSWORD
from ..helpers import form_fields, login, query_params
from .conftest import CodeFlow, pkce_pair


def test_unknown_client_gets_an_error_page_not_a_redirect(flow):
    flow.rp.client_id = "no-such-client"
    response = flow.authorize()
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "未知的应用系统" in response.data.decode()


def test_unregistered_redirect_uri_gets_an_error_page(flow):
    flow.rp.redirect_uri = "https://evil.example.test/steal"
    response = flow.authorize()
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "回调地址未登记" in response.data.decode()


def test_disabled_client_is_refused(app, flow):
    with app.app_context():
        client = db.session.scalar(db.select(Client).filter_by(client_id=flow.rp.client_id))
        client.enabled = False
        db.session.commit()
    response = flow.authorize()
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_without_session_the_user_logs_in_then_returns_to_the_request(flow, user):
    response = flow.authorize(state="abc")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    after_login = login(flow.client, user.username, DEFAULT_PASSWORD)
    assert after_login.status_code == 302
    assert after_login.headers["Location"].startswith("/oauth/authorize?")
    final = flow.client.get(after_login.headers["Location"])
    assert final.status_code == 302
    params = query_params(final.headers["Location"])
    assert final.headers["Location"].startswith(flow.rp.redirect_uri)
    assert params["state"] == "abc"
    assert params["iss"] == "http://localhost"
    assert len(params["code"]) >= 40


def test_prompt_none_without_session_is_login_required(flow):
    response = flow.authorize(prompt="none", state="s1")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("https://rp.example.test/callback?")
    params = query_params(response.headers["Location"])
    assert params["error"] == "login_required"
    assert params["state"] == "s1"
    assert params["iss"] == "http://localhost"


def test_prompt_none_with_session_issues_a_code(signed_in_flow):
    code, params = signed_in_flow.code(prompt="none")
    assert code and params["iss"] == "http://localhost"


def test_prompt_login_forces_a_new_login(signed_in_flow, user):
    response = signed_in_flow.authorize(prompt="login")
    assert response.headers["Location"] == "/login"
    after = login(signed_in_flow.client, user.username, DEFAULT_PASSWORD)
    resumed = after.headers["Location"]
    assert "prompt" not in resumed  # the fresh login satisfied it
    final = signed_in_flow.client.get(resumed)
    assert "code=" in final.headers["Location"]


def test_max_age_exceeded_requires_login(signed_in_flow):
    with signed_in_flow.client.session_transaction() as sess:
        sess["auth_time"] -= 600
    assert signed_in_flow.authorize(max_age="60").headers["Location"] == "/login"
    code, _ = signed_in_flow.code(max_age="3600")
    assert code


def test_max_age_with_prompt_none_is_login_required(signed_in_flow):
    with signed_in_flow.client.session_transaction() as sess:
        sess["auth_time"] -= 600
    response = signed_in_flow.authorize(max_age="60", prompt="none")
    assert query_params(response.headers["Location"])["error"] == "login_required"


def test_login_hint_prefills_the_username(flow):
    flow.authorize(login_hint="wangwu")
    page = flow.client.get("/login")
    assert form_fields(page.data)["username"] == "wangwu"


def test_public_client_must_use_pkce(client, make_client, user):
    public = make_client(client_type="public", redirect_uris=["http://127.0.0.1:8765/cb"], first_party=True)
    login(client, user.username, DEFAULT_PASSWORD)
    flow = CodeFlow(client, public)
    response = flow.authorize(code_challenge=None, code_challenge_method=None)
    params = query_params(response.headers["Location"])
    assert params["error"] == "invalid_request"
    assert "PKCE" in params["error_description"]
    _, challenge = pkce_pair()
    plain = flow.authorize(code_challenge=challenge, code_challenge_method="plain")
    assert query_params(plain.headers["Location"])["error"] == "invalid_request"
    ok = flow.authorize(code_challenge=challenge, code_challenge_method="S256")
    assert "code" in query_params(ok.headers["Location"])


def test_consent_page_for_third_party_systems_is_remembered(client, make_client, user):
    third = make_client(name="第三方服务", first_party=False)
    login(client, user.username, DEFAULT_PASSWORD)
    flow = CodeFlow(client, third)
    page = flow.authorize(scope="openid profile phone")
    assert page.status_code == 200
    html = page.data.decode()
    assert "授权确认" in html and "第三方服务" in html and "手机号码" in html
    # prompt=none cannot show the page
    none = flow.authorize(scope="openid profile phone", prompt="none")
    assert query_params(none.headers["Location"])["error"] == "consent_required"
    # consent without CSRF is refused
    action = "/oauth/authorize?" + page.request.query_string.decode()
    assert client.post(action, data={"decision": "allow"}).status_code == 400
    allowed = client.post(action, data={"decision": "allow", "csrf_token": form_fields(html)["csrf_token"]})
    assert "code" in query_params(allowed.headers["Location"])
    # remembered: no page the second time, for the same or fewer scopes
    again = flow.authorize(scope="openid profile")
    assert again.status_code == 302 and "code=" in again.headers["Location"]
    # prompt=consent asks again
    assert flow.authorize(scope="openid", prompt="consent").status_code == 200


def test_consent_its_event_and_the_code_are_one_transaction(app, client, make_client, user, monkeypatch):
    from idp.models import AuditEvent, AuthorizationCode, Consent
    from idp.oauth.grants import AuthorizationCodeGrant

    third = make_client(name="第三方服务", first_party=False)
    login(client, user.username, DEFAULT_PASSWORD)
    page = CodeFlow(client, third).authorize(scope="openid profile")
    action = "/oauth/authorize?" + page.request.query_string.decode()
    csrf_token = form_fields(page.data)["csrf_token"]

    def recorded() -> tuple[int, int, int]:
        with app.app_context():
            return (db.session.query(Consent).filter_by(client_id=third.client_id).count(),
                    db.session.query(AuditEvent).filter_by(event="consent", client_id=third.client_id).count(),
                    db.session.query(AuthorizationCode).filter_by(client_id=third.client_id).count())

    def no_code(self, code, request):
        raise RuntimeError("the code could not be saved")

    with monkeypatch.context() as patch:
        patch.setattr(AuthorizationCodeGrant, "save_authorization_code", no_code)
        with pytest.raises(RuntimeError):
            client.post(action, data={"decision": "allow", "csrf_token": csrf_token})
    assert recorded() == (0, 0, 0)  # no consent without its code and its event
    allowed = client.post(action, data={"decision": "allow", "csrf_token": csrf_token})
    assert "code" in query_params(allowed.headers["Location"])
    assert recorded() == (1, 1, 1)


def test_consent_denied_returns_access_denied(client, make_client, user):
    third = make_client(name="第三方服务", first_party=False)
    login(client, user.username, DEFAULT_PASSWORD)
    page = CodeFlow(client, third).authorize(state="s9")
    action = "/oauth/authorize?" + page.request.query_string.decode()
    denied = client.post(action, data={"decision": "deny", "csrf_token": form_fields(page.data)["csrf_token"]})
    params = query_params(denied.headers["Location"])
    assert params["error"] == "access_denied"
    assert params["state"] == "s9"


def test_scopes_are_limited_to_what_the_client_may_ask(signed_in_flow, make_client, client):
    limited = make_client(scope="openid profile", first_party=True)
    flow = CodeFlow(client, limited)
    tokens = flow.tokens(scope="openid profile realname phone")
    assert set(tokens["scope"].split()) == {"openid", "profile"}


def test_unsupported_response_type_is_redirected_with_error(signed_in_flow):
    response = signed_in_flow.authorize(response_type="token")
    assert query_params(response.headers["Location"])["error"] == "unsupported_response_type"
