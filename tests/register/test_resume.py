"""A citizen sent by a relying system registers and lands back there signed in."""

from __future__ import annotations

import base64
import json

from idp.services.admin.clients import ClientSpec, create_client

from ..helpers import query_params
from ..oauth.conftest import CodeFlow, RegisteredClient, pkce_pair
from .conftest import CITIZENS

REDIRECT_URI = "https://exam.example.test/callback"


def _claims(jwt: str) -> dict:
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _exam_service(app) -> RegisteredClient:
    with app.app_context():
        client, secret = create_client(
            ClientSpec(name="考生服务系统", redirect_uris=[REDIRECT_URI], scope="openid profile phone realname",
                       first_party=True),
        )
        return RegisteredClient(client.client_id, secret, REDIRECT_URI)


def test_register_from_a_relying_system_returns_there_signed_in(app, client, wizard):
    rp = _exam_service(app)
    flow = CodeFlow(client, rp)
    verifier, challenge = pkce_pair()
    response = flow.authorize(state="exam-state", code_challenge=challenge, code_challenge_method="S256")
    assert response.headers["Location"] == "/login"
    assert '<a href="/register">立即注册</a>' in client.get("/login").data.decode()

    registered = wizard.register(CITIZENS["demo"], username="fromexam1")
    assert registered.status_code == 302
    # 注册成功 is a page of its own: the advice on 密保问题, and the way back to the relying system
    assert registered.headers["Location"] == "/register/done"
    done = client.get("/register/done").data.decode()
    assert "注册成功" in done and "fromexam1" in done
    assert "返回考生服务系统" in done and 'href="/register/continue"' in done
    assert "密保工具" in done and 'href="/account/security-questions"' in done
    resume = client.get("/register/continue").headers["Location"]
    assert resume.startswith("/oauth/authorize?") and f"client_id={rp.client_id}" in resume
    # signed in with how the citizen proved themself
    with client.session_transaction() as sess:
        assert sess["amr"] == ["pwd", "sms", "bank"]

    final = client.get(resume)
    assert final.status_code == 302
    assert final.headers["Location"].startswith(REDIRECT_URI)
    params = query_params(final.headers["Location"])
    assert params["state"] == "exam-state"
    tokens = flow.exchange(params["code"], verifier=verifier)
    assert tokens.status_code == 200, tokens.data.decode()
    claims = _claims(tokens.get_json()["id_token"])
    assert claims["amr"] == ["pwd", "sms", "bank"]
    assert rp.client_id in (claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]])
    assert claims["sub"]


def test_without_a_pending_request_registration_does_not_sign_in(client, wizard):
    assert wizard.register().headers["Location"] == "/register/done"
    assert client.get("/account/").status_code == 302


def test_a_protected_page_that_sent_the_citizen_to_login_is_resumed(client, wizard):
    assert client.get("/account/").headers["Location"] == "/login"  # remembers /account/
    registered = wizard.register(username="resumed1")
    assert registered.headers["Location"] == "/register/done"
    assert ">继续</a>" in client.get("/register/done").data.decode()
    assert client.get("/register/continue").headers["Location"] == "/account/"
    home = client.get("/account/")
    assert home.status_code == 200 and "resumed1" in home.data.decode()
