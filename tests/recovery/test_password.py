"""忘记密码 over HTTP: 输入用户名 → 选择找回方式 → 验证身份 → 重置密码 → 重置成功, with both
methods (证件号码+手机验证码, 密保问题), every branch and message."""

from __future__ import annotations

import base64
import json
import re

from idp.extensions import db, redis_store
from idp.models import SecurityAnswer
from idp.services.identity import passwords
from idp.services.admin.clients import ClientSpec, create_client

from ..conftest import DEFAULT_PASSWORD
from ..helpers import login, query_params
from ..oauth.conftest import CodeFlow, RegisteredClient, pkce_pair
from .conftest import (
    CITIZENS,
    NEW_PASSWORD,
    Recovery,
    audit_events,
    expire_sms_codes,
    field_errors,
    outbox,
    outbox_code,
    page_fields,
    without_tokens,
    wrong,
)

DEMO = CITIZENS["demo"]
IDENTITY_NOT_MATCHED = "证件类型、证件号或手机号码与注册信息不一致（手机号码须为注册时填写的手机号码）"
OTHER_PHONE = "13700137999"


def set_questions(app, user, answers=("李梅", "深圳", "旺财"), questions=("mother_name", "birthplace", "first_pet")):
    with app.app_context():
        for position, (question, answer) in enumerate(zip(questions, answers), start=1):
            db.session.add(SecurityAnswer(user_id=user.id, position=position, question=question,
                                          answer_hash=passwords.hash_password(answer)))
        db.session.commit()


# -- 输入用户名 ------------------------------------------------------------------------------------
def test_first_step_page(client):
    html = client.get("/recovery/password").data.decode()
    bar = re.search(r'<ol class="steps".*?</ol>', html, re.S).group(0).replace("<wbr>", "")  # a break after the verb
    assert re.findall(r">([^<>\s][^<>]*)</li>", bar) == ["输入用户名", "选择找回方式", "验证身份", "重置密码", "重置成功"]
    assert '<label for="username">用户名</label>' in html and '<label for="captcha">验证码</label>' in html
    assert "下一步" in html


def test_unknown_username_is_answered_like_a_known_one(app, demo_account):
    known, unknown = Recovery(app.test_client()), Recovery(app.test_client())
    a = known.password_username("wangxm")
    b = unknown.password_username("nobody2026")
    assert (a.status_code, a.headers["Location"], a.data) == (b.status_code, b.headers["Location"], b.data)
    assert a.headers["Location"] == "/recovery/password/method"
    # 选择找回方式 and the 证件号码+手机验证码 page say nothing about the account either
    method_a = without_tokens(known.client.get("/recovery/password/method").data).replace("wangxm", "")
    method_b = without_tokens(unknown.client.get("/recovery/password/method").data).replace("nobody2026", "")
    assert method_a == method_b
    assert known.method("id_sms").headers["Location"] == unknown.method("id_sms").headers["Location"]
    assert without_tokens(known.client.get("/recovery/password/verify/id").data) == \
        without_tokens(unknown.client.get("/recovery/password/verify/id").data)
    outcomes = [(e.outcome, e.details.get("reason")) for e in audit_events(app, "recovery.lookup")]
    assert outcomes == [("success", None), ("failure", "no_match")]


def test_username_step_errors(client, recovery):
    assert "请输入用户名" in field_errors(recovery.password_username("").data)
    response = recovery.password_username("wangxm", captcha="XXXX")
    assert response.status_code == 400 and "验证码错误或已失效，请重新输入" in field_errors(response.data)
    assert page_fields(response.data)["username"] == "wangxm"
    assert client.get("/recovery/password/method").headers["Location"] == "/recovery/password"


# -- 证件号码+手机验证码 ---------------------------------------------------------------------------------
def test_reset_with_document_and_phone(app, client, recovery, demo_account):
    recovery.password_username("WangXM")  # usernames are case-insensitive
    page = client.get("/recovery/password/method").data.decode()
    assert "证件号码+手机验证码" in page and "密保问题" in page and "用户名" in page
    assert recovery.method("id_sms").headers["Location"] == "/recovery/password/verify/id"
    page = client.get("/recovery/password/verify/id").data.decode()
    for label, name in (("证件类型", "id_type"), ("证件号", "id_number"), ("手机号码", "phone"), ("动态验证", "sms_code")):
        assert f'<label for="{name}">{label}</label>' in page
    assert "发送短信验证" in page and '<a href="/recovery/phone/password">手机号已停用？</a>' in page
    assert '<a class="button" href="/recovery/password/method">上一步</a>' in page

    sent = recovery.send_id_sms(DEMO.phone, id_number=DEMO.id_number)
    assert "短信验证码已发送至138****8000，5分钟内有效" in sent.data.decode()
    assert page_fields(sent.data)["id_number"] == DEMO.id_number  # what was typed stays
    verified = recovery.id_and_phone()
    assert verified.headers["Location"] == "/recovery/password/reset"

    page = client.get("/recovery/password/reset").data.decode()
    assert 'value="wangxm" readonly' in page  # 用户名 shown
    for label, name in (("新密码", "new_password"), ("确认新密码", "confirm_password"), ("验证码", "captcha")):
        assert f'<label for="{name}">{label}</label>' in page
    done = recovery.reset()
    assert done.status_code == 302 and done.headers["Location"] == "/recovery/password/done"
    html = client.get("/recovery/password/done").data.decode()
    assert "重置成功" in html and 'href="/login"' in html
    assert page_fields(client.get("/login").data)["username"] == "wangxm"  # offered on the login page

    assert login(app.test_client(), "wangxm", DEFAULT_PASSWORD).status_code == 400
    assert login(app.test_client(), "wangxm", NEW_PASSWORD).status_code == 302
    [reset] = audit_events(app, "password.reset")
    assert reset.subject == demo_account.sub
    assert [(e.outcome, e.details.get("method")) for e in audit_events(app, "recovery.verify")] == [("success", "id_sms")]
    # the flow is over: its pages start again
    assert client.get("/recovery/password/reset").headers["Location"] == "/recovery/password"


def test_another_phone_receives_a_code_but_does_not_pass(app, client, recovery, demo_account):
    recovery.password_username("wangxm")
    recovery.method("id_sms")
    assert recovery.send_id_sms(OTHER_PHONE).status_code == 200
    assert outbox(client, OTHER_PHONE)  # the code arrives
    response = recovery.id_and_phone(phone=OTHER_PHONE)
    assert response.status_code == 400
    assert IDENTITY_NOT_MATCHED in field_errors(response.data)
    assert client.get("/recovery/password/reset").headers["Location"] == "/recovery/password/verify/id"
    [failure] = [e for e in audit_events(app, "recovery.verify") if e.outcome == "failure"]
    assert failure.details == {"reason": "identity_not_matched", "flow": "password", "method": "id_sms"}


def test_wrong_document_and_unknown_username_get_the_same_message(app, demo_account):
    known = Recovery(app.test_client())
    known.password_username("wangxm")
    known.method("id_sms")
    known.send_id_sms(DEMO.phone)
    a = known.id_and_phone(id_number=CITIZENS["lina"].id_number)

    unknown = Recovery(app.test_client())
    unknown.password_username("nobody2026")
    unknown.method("id_sms")
    with app.app_context():
        redis_store.delete(*redis_store.keys("sms:resend:*"))
    unknown.send_id_sms(DEMO.phone)
    b = unknown.id_and_phone()
    assert field_errors(a.data) == field_errors(b.data) == [IDENTITY_NOT_MATCHED]
    # the phone proven in this flow stays proven: fixing the document needs no new code
    fixed = known.id_and_phone(code="")
    assert fixed.headers["Location"] == "/recovery/password/reset"


def test_sms_code_errors(app, client, recovery, demo_account):
    recovery.password_username("wangxm")
    recovery.method("id_sms")
    assert "请先点击“发送短信验证”获取短信验证码" in field_errors(recovery.id_and_phone(code="123456").data)
    recovery.send_id_sms(DEMO.phone)
    assert "请输入短信验证码" in field_errors(recovery.id_and_phone(code="").data)
    right = outbox_code(client, DEMO.phone)
    for _ in range(4):
        assert "短信验证码错误或已失效" in field_errors(recovery.id_and_phone(code=wrong(right)).data)
    assert "短信验证码错误次数过多，请重新获取" in field_errors(recovery.id_and_phone(code=wrong(right)).data)
    assert "短信验证码错误或已失效" in field_errors(recovery.id_and_phone(code=right).data)
    # a new code, five minutes later
    with app.app_context():
        redis_store.delete(*redis_store.keys("sms:resend:*"))
    recovery.send_id_sms(DEMO.phone)
    code = outbox_code(client, DEMO.phone)
    expire_sms_codes(app)
    assert "短信验证码已失效，请重新获取" in field_errors(recovery.id_and_phone(code=code).data)
    # a code for one phone does not prove another
    with app.app_context():
        redis_store.delete(*redis_store.keys("sms:resend:*"))
    recovery.send_id_sms(OTHER_PHONE)
    other_code = outbox_code(client, OTHER_PHONE)
    assert "请先点击“发送短信验证”获取短信验证码" in field_errors(recovery.id_and_phone(code=other_code).data)


def test_resend_cooldown_and_the_json_button(app, client, recovery, demo_account):
    recovery.password_username("wangxm")
    recovery.method("id_sms")
    assert recovery.send_id_sms(DEMO.phone).status_code == 200
    again = recovery.send_id_sms(DEMO.phone)
    assert again.status_code == 429
    assert re.search(r"短信验证码已发送，请(59|60)秒后再重新获取", again.data.decode())
    token = page_fields(client.get("/recovery/password/verify/id").data)["csrf_token"]
    json_again = client.post("/recovery/password/verify/id/sms", data={"phone": DEMO.phone, "csrf_token": token})
    assert json_again.status_code == 429 and json_again.get_json()["retry_after"] in (59, 60)
    sent = client.post("/recovery/password/verify/id/sms", data={"phone": OTHER_PHONE, "csrf_token": token})
    assert sent.get_json() == {"sent": True, "message": "短信验证码已发送至137****7999，5分钟内有效", "resend_after": 60}
    bad = client.post("/recovery/password/verify/id/sms", data={"phone": "123", "csrf_token": token})
    assert bad.status_code == 400 and bad.get_json()["message"] == "请输入正确的11位手机号码"
    invalid = recovery.send_id_sms("123")
    assert "请输入正确的11位手机号码" in field_errors(invalid.data)


def test_failures_are_limited_per_flow_and_per_account(app, client, recovery, demo_account):
    recovery.password_username("wangxm")
    recovery.method("id_sms")
    recovery.send_id_sms(DEMO.phone)
    recovery.id_and_phone(id_number=CITIZENS["lina"].id_number)  # proves the phone, one failure
    for _ in range(3):
        assert IDENTITY_NOT_MATCHED in field_errors(recovery.id_and_phone(id_number=CITIZENS["lina"].id_number,
                                                                           code="").data)
    ended = recovery.id_and_phone(id_number=CITIZENS["lina"].id_number, code="")
    assert ended.headers["Location"] == "/recovery/password"
    assert "验证失败次数过多，请重新开始" in client.get("/recovery/password").data.decode()
    # five more in a new flow reach the daily limit of the account (10), for this name only
    recovery.password_username("wangxm")
    recovery.method("id_sms")
    with app.app_context():
        redis_store.delete(*redis_store.keys("sms:resend:*"))
    recovery.send_id_sms(DEMO.phone)
    recovery.id_and_phone(id_number=CITIZENS["lina"].id_number)
    for _ in range(3):
        recovery.id_and_phone(id_number=CITIZENS["lina"].id_number, code="")
    recovery.id_and_phone(id_number=CITIZENS["lina"].id_number, code="")
    recovery.password_username("WANGXM")
    recovery.method("id_sms")
    limited = recovery.id_and_phone(code="000000")
    assert limited.status_code == 429 and "验证失败次数过多，请24小时后再试" in field_errors(limited.data)


# -- 密保问题 ------------------------------------------------------------------------------------------
def test_no_security_questions_set(app, client, recovery, demo_account):
    recovery.password_username("wangxm")
    # not proven yet: asked three decoys like any other name, which never pass
    assert recovery.method("questions").headers["Location"] == "/recovery/password/verify/questions"
    assert "密保问题答案不正确" in field_errors(recovery.answers("李梅", "深圳", "旺财").data)
    # proven by 证件号码+手机验证码, the citizen is told
    assert recovery.method("id_sms").headers["Location"] == "/recovery/password/verify/id"
    recovery.send_id_sms(DEMO.phone)
    assert recovery.id_and_phone().headers["Location"] == "/recovery/password/reset"
    response = recovery.method("questions")
    assert response.status_code == 400
    assert "未设置密保，不能通过密保问题找回密码" in field_errors(response.data)
    assert client.get("/recovery/password/verify/questions").headers["Location"] == "/recovery/password/method"
    assert audit_events(app, "recovery.verify")[0].details["reason"] == "security_questions_not_set"


def test_reset_with_security_questions(app, client, recovery, demo_account):
    set_questions(app, demo_account)
    recovery.password_username("wangxm")
    assert recovery.method("questions").headers["Location"] == "/recovery/password/verify/questions"
    page = client.get("/recovery/password/verify/questions").data.decode()
    for i, question in enumerate(("您母亲的姓名是？", "您的出生地是？", "您养的第一个宠物的名字是？"), start=1):
        assert f'<label for="answer_{i}">{question}</label>' in page
    wrong_answers = recovery.answers("李梅", "北京", "旺财")
    assert wrong_answers.status_code == 400
    assert "密保问题答案不正确" in field_errors(wrong_answers.data)
    assert all(page_fields(wrong_answers.data)[f"answer_{i}"] == "" for i in (1, 2, 3))
    assert "请依次输入3个密保问题的答案" in field_errors(recovery.answers("李梅", "", "旺财").data)
    right = recovery.answers(" 李梅", "深圳", "旺财 ")
    assert right.headers["Location"] == "/recovery/password/reset"
    assert recovery.reset().headers["Location"] == "/recovery/password/done"
    assert login(app.test_client(), "wangxm", NEW_PASSWORD).status_code == 302
    outcomes = [(e.outcome, e.details.get("reason")) for e in audit_events(app, "recovery.verify")]
    assert outcomes == [("failure", "security_answers_wrong"), ("success", None)]


def test_unknown_username_gets_decoy_questions_that_never_pass(app, client, recovery):
    recovery.password_username("nobody2026")
    assert recovery.method("questions").headers["Location"] == "/recovery/password/verify/questions"
    labels = re.findall(r'<label for="answer_\d">([^<]+)</label>', client.get("/recovery/password/verify/questions")
                        .data.decode())
    assert len(set(labels)) == 3
    # the same three every time for this name
    Recovery(client).password_username("NoBody2026")
    Recovery(client).method("questions")
    again = re.findall(r'<label for="answer_\d">([^<]+)</label>', client.get("/recovery/password/verify/questions")
                       .data.decode())
    assert again == labels
    assert "密保问题答案不正确" in field_errors(recovery.answers("a", "b", "c").data)


def test_switching_method_starts_verification_over(client, recovery, demo_account, app):
    set_questions(app, demo_account)
    recovery.password_username("wangxm")
    recovery.method("id_sms")
    assert client.get("/recovery/password/verify/questions").headers["Location"] == "/recovery/password/verify/id"
    recovery.method("questions")
    assert client.get("/recovery/password/verify/id").headers["Location"] == "/recovery/password/verify/questions"
    assert client.get("/recovery/password/reset").headers["Location"] == "/recovery/password/verify/questions"


# -- 重置密码 -------------------------------------------------------------------------------------------
def test_reset_step_messages(app, client, recovery, demo_account):
    assert client.get("/recovery/password/reset").headers["Location"] == "/recovery/password"
    recovery.password_username("wangxm")
    assert client.get("/recovery/password/reset").headers["Location"] == "/recovery/password/method"
    recovery.method("id_sms")
    recovery.send_id_sms(DEMO.phone)
    recovery.id_and_phone()
    assert "两次输入的新密码不一致" in field_errors(recovery.reset(confirm="Other#pass2027").data)
    assert "新密码不能与原密码一致" in field_errors(recovery.reset(DEFAULT_PASSWORD).data)
    weak = field_errors(recovery.reset("wangxm12345").data)
    assert "密码须至少包含大写字母、小写字母、数字、符号中的三种" in weak and "密码不能包含用户名" in weak
    bad_captcha = recovery.reset(captcha="XXXX")
    assert "验证码错误或已失效，请重新输入" in field_errors(bad_captcha.data)
    kept = page_fields(bad_captcha.data)
    assert kept["new_password"] == kept["confirm_password"] == kept["captcha"] == ""  # secrets never sent back
    assert login(app.test_client(), "wangxm", DEFAULT_PASSWORD).status_code == 302  # nothing changed


def test_reset_ends_sessions_and_refresh_tokens(app, client, recovery, demo_account):
    elsewhere = app.test_client()
    assert login(elsewhere, "wangxm", DEFAULT_PASSWORD).status_code == 302
    with app.app_context():
        rp_client, secret = create_client(ClientSpec(name="考生服务系统", redirect_uris=["https://exam.example.test/cb"],
                                                     scope="openid offline_access", first_party=True))
        rp = RegisteredClient(rp_client.client_id, secret, "https://exam.example.test/cb")
    tokens = CodeFlow(elsewhere, rp).tokens(scope="openid offline_access")
    assert elsewhere.get("/account/").status_code == 200

    recovery.through_id_sms("wangxm")
    assert recovery.reset().headers["Location"] == "/recovery/password/done"

    assert elsewhere.get("/account/").headers["Location"] == "/login"
    refreshed = elsewhere.post("/oauth/token", data={"grant_type": "refresh_token",
                                                     "refresh_token": tokens["refresh_token"]}, headers=rp.basic)
    assert refreshed.get_json()["error"] == "invalid_grant"
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert elsewhere.get("/oauth/userinfo", headers=bearer).status_code == 401


def test_reset_from_a_relying_system_returns_there_signed_in(app, client, recovery, demo_account):
    with app.app_context():
        rp_client, secret = create_client(ClientSpec(name="考生服务系统", redirect_uris=["https://exam.example.test/cb"],
                                                     scope="openid profile", first_party=True))
        rp = RegisteredClient(rp_client.client_id, secret, "https://exam.example.test/cb")
    flow = CodeFlow(client, rp)
    verifier, challenge = pkce_pair()
    assert flow.authorize(state="exam-1", code_challenge=challenge,
                          code_challenge_method="S256").headers["Location"] == "/login"

    recovery.through_id_sms("wangxm")
    back = recovery.reset()
    assert back.status_code == 302
    resume = back.headers["Location"]
    assert resume.startswith("/oauth/authorize?") and f"client_id={rp.client_id}" in resume
    final = client.get(resume)
    params = query_params(final.headers["Location"])
    assert final.headers["Location"].startswith("https://exam.example.test/cb") and params["state"] == "exam-1"
    tokens = flow.exchange(params["code"], verifier=verifier).get_json()
    payload = tokens["id_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["amr"] == ["pwd", "sms"] and claims["sub"] == demo_account.sub


def test_reset_lifts_a_lockout(app, client, recovery, demo_account):
    other = app.test_client()
    for _ in range(5):
        login(other, "wangxm", "Wrong#pass2026")
    assert login(other, "wangxm", DEFAULT_PASSWORD).status_code == 400  # locked
    recovery.through_id_sms("wangxm")
    recovery.reset()
    assert login(other, "wangxm", NEW_PASSWORD).status_code == 302


def test_a_disabled_account_cannot_be_recovered(app, client, recovery, demo_account):
    from idp.models import User, UserStatus

    with app.app_context():
        db.session.get(User, demo_account.id).status = UserStatus.DISABLED
        db.session.commit()
    assert recovery.password_username("wangxm").headers["Location"] == "/recovery/password/method"
    recovery.method("id_sms")
    recovery.send_id_sms(DEMO.phone)
    assert IDENTITY_NOT_MATCHED in field_errors(recovery.id_and_phone().data)
