from __future__ import annotations

from idp.extensions import db
from idp.models import AuditEvent, SecurityAnswer

from ..conftest import DEFAULT_PASSWORD
from ..helpers import CAPTCHA, form_fields, login, submit_form

NEW_PASSWORD = "Renshe#2027new"


def change(client, current, new, confirm=None, captcha=CAPTCHA):
    return submit_form(client, "/account/password", {
        "current_password": current, "new_password": new,
        "confirm_password": new if confirm is None else confirm, "captcha": captcha})


def test_change_password_logs_out_everywhere(app, logged_in, user, signed_in_elsewhere):
    response = change(logged_in, DEFAULT_PASSWORD, NEW_PASSWORD)
    assert response.status_code == 200
    assert "密码修改成功" in response.data.decode()
    assert f'<span class="who">{user.username}</span>' not in response.data.decode()  # the header too
    assert logged_in.get("/account/").status_code == 302  # 系统返回未登录的状态
    assert signed_in_elsewhere.get("/account/").status_code == 302
    assert login(logged_in, user.username, DEFAULT_PASSWORD).status_code == 400
    assert login(logged_in, user.username, NEW_PASSWORD).status_code == 302
    with app.app_context():
        assert db.session.scalar(db.select(AuditEvent).filter_by(event="password.changed"))


def test_new_password_must_differ_from_current(logged_in):
    response = change(logged_in, DEFAULT_PASSWORD, DEFAULT_PASSWORD)
    assert response.status_code == 400
    assert "新密码不能与原密码一致" in response.data.decode()


def test_change_password_errors(logged_in):
    assert "当前密码错误" in change(logged_in, "Wrong#pass2026", NEW_PASSWORD).data.decode()
    assert "两次输入的新密码不一致" in change(logged_in, DEFAULT_PASSWORD, NEW_PASSWORD, "Other#pass2026").data.decode()
    # the messages themselves, not the field hint or the label present on every render
    assert "密码须至少包含大写字母、小写字母、数字、符号中的三种" in change(
        logged_in, DEFAULT_PASSWORD, "alllowercase").data.decode()
    assert "验证码错误或已失效，请重新输入" in change(logged_in, DEFAULT_PASSWORD, NEW_PASSWORD, captcha="XXXX").data.decode()
    page = change(logged_in, "Wrong#pass2026", NEW_PASSWORD)
    assert all(v == "" for k, v in form_fields(page.data).items() if "password" in k)  # secrets not kept
    assert logged_in.get("/account/").status_code == 200  # nothing changed, still logged in


def test_change_password_revokes_tokens(logged_in, user, app):
    from ..oauth.conftest import CodeFlow, RegisteredClient  # noqa: F401
    from idp.services.admin.clients import ClientSpec, create_client

    with app.app_context():
        client, secret = create_client(ClientSpec(name="rp", redirect_uris=["https://rp.example.test/cb"],
                                                  scope="openid offline_access", first_party=True))
        rp = RegisteredClient(client.client_id, secret, "https://rp.example.test/cb")
    tokens = CodeFlow(logged_in, rp).tokens(scope="openid offline_access")
    change(logged_in, DEFAULT_PASSWORD, NEW_PASSWORD)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert logged_in.get("/oauth/userinfo", headers=bearer).status_code == 401
    refreshed = logged_in.post("/oauth/token", data={"grant_type": "refresh_token",
                                                     "refresh_token": tokens["refresh_token"]}, headers=rp.basic)
    assert refreshed.get_json()["error"] == "invalid_grant"


def questions(client, current=DEFAULT_PASSWORD, q=("mother_name", "birthplace", "first_pet"),
              a=("李梅", "深圳", "旺财")):
    data = {"current_password": current}
    for i in range(3):
        data[f"question_{i + 1}"] = q[i]
        data[f"answer_{i + 1}"] = a[i]
    return submit_form(client, "/account/security-questions", data, follow_redirects=True)


def test_set_security_questions(app, logged_in, user):
    page = logged_in.get("/account/security-questions").data.decode()
    assert "您尚未设置密保问题" in page
    response = questions(logged_in)
    assert "密保问题已保存" in response.data.decode()
    assert "您母亲的姓名是？" in response.data.decode()
    with app.app_context():
        stored = list(db.session.scalars(db.select(SecurityAnswer).filter_by(user_id=user.id)))
        assert len(stored) == 3
        assert all(s.answer_hash.startswith("$argon2id$") and "李梅" not in s.answer_hash for s in stored)
        from idp.services.accounts.security import check_security_answers

        from idp.models import User

        u = db.session.get(User, user.id)
        assert check_security_answers(u, [" 李梅 ", "深圳", "旺财"])
        assert not check_security_answers(u, ["李梅", "北京", "旺财"])
    # replacing needs the current password too
    assert "当前密码错误" in questions(logged_in, current="Wrong#pass2026").data.decode()


def test_security_questions_must_be_distinct(logged_in):
    response = questions(logged_in, q=("mother_name", "mother_name", "first_pet"))
    assert "请选择三个不同的密保问题" in response.data.decode()


def test_sessions_page_lists_and_revokes_other_logins(logged_in, signed_in_elsewhere):
    page = logged_in.get("/account/sessions")
    html = page.data.decode()
    assert "本机" in html and "下线" in html
    fields = form_fields(html, 0)
    assert logged_in.post("/account/sessions/revoke", data=fields).status_code == 302
    assert signed_in_elsewhere.get("/account/").status_code == 302
    assert logged_in.get("/account/").status_code == 200


def test_authorised_systems_can_be_revoked(app, logged_in, user):
    from ..oauth.conftest import CodeFlow, RegisteredClient
    from idp.services.admin.clients import ClientSpec, create_client

    with app.app_context():
        client, secret = create_client(ClientSpec(name="第三方服务", redirect_uris=["https://rp.example.test/cb"],
                                                  scope="openid profile", first_party=False))
        rp = RegisteredClient(client.client_id, secret, "https://rp.example.test/cb")
    flow = CodeFlow(logged_in, rp)
    consent_page = flow.authorize()
    action = "/oauth/authorize?" + consent_page.request.query_string.decode()
    logged_in.post(action, data={"decision": "allow", "csrf_token": form_fields(consent_page.data)["csrf_token"]})
    html = logged_in.get("/account/sessions").data.decode()
    assert "第三方服务" in html
    revoke_form = [f for f in (form_fields(html, i) for i in range(html.count("<form"))) if "client_id" in f][0]
    logged_in.post("/account/authorisations/revoke", data=revoke_form)
    assert "第三方服务" not in logged_in.get("/account/sessions").data.decode()
    assert flow.authorize().status_code == 200  # consent asked again
