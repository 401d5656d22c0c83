"""忘记用户名 over HTTP: 验证身份 → 验证手机校验码 → 找回用户名成功, every branch and message."""

from __future__ import annotations

import re

from idp.extensions import redis_store

from ..conftest import make_app
from .conftest import (
    CAPTCHA,
    CITIZENS,
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


def test_login_page_links_to_both_recoveries(client):
    html = client.get("/login").data.decode()
    assert '<a href="/recovery/username">忘记用户名？</a>' in html
    assert '<a href="/recovery/password">忘记密码？</a>' in html


def test_first_step_page(client):
    page = client.get("/recovery/username")
    html = page.data.decode()
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    bar = re.search(r'<ol class="steps".*?</ol>', html, re.S).group(0).replace("<wbr>", "")  # a break after the verb
    assert re.findall(r">([^<>\s][^<>]*)</li>", bar) == ["验证身份", "验证手机校验码", "找回用户名成功"]
    assert 'aria-current="step">验证身份' in bar
    for label, name in (("姓名", "name"), ("证件类型", "id_type"), ("证件号", "id_number"), ("验证码", "captcha")):
        assert f'<label for="{name}">{label}</label>' in html
    assert "<legend>用户类型</legend>" in html and "个人用户" in html and "单位用户" in html
    assert "下一步" in html and "<script>" not in html


def test_username_found_and_sent_by_sms_not_shown(app, client, recovery, demo_account):
    response = recovery.username_identity()
    assert response.status_code == 302 and response.headers["Location"] == "/recovery/username/sms"

    page = client.get("/recovery/username/sms").data.decode()
    # the registered phone is not shown before a code sent to it comes back (same page as no match)
    assert "若您填写的信息与注册信息一致，短信验证码将发送至注册时填写的手机号码" in page
    assert "138****8000" not in page
    assert "发送短信验证" in page and '<label for="sms_code">动态验证</label>' in page
    assert '<a href="/recovery/phone/username">手机号已停用？</a>' in page
    assert DEMO.phone not in page

    sent = recovery.username_send()
    assert sent.status_code == 200
    assert "若您填写的信息与注册信息一致，短信验证码已发送至注册时填写的手机号码，5分钟内有效" in sent.data.decode()
    assert "138****8000" not in sent.data.decode()
    code = outbox_code(client, DEMO.phone)
    done = recovery.username_code(code)
    assert done.status_code == 302 and done.headers["Location"] == "/recovery/username/done"

    html = client.get("/recovery/username/done").data.decode()
    assert "找回用户名成功" in html and "138****8000" in html
    assert demo_account.username not in html  # the page never shows the username
    message = outbox(client, DEMO.phone)[0]
    assert "wangxm" in message["text"] and message["purpose"] == "recovery"

    assert [e.outcome for e in audit_events(app, "recovery.lookup")] == ["success"]
    assert [(e.outcome, e.details["method"]) for e in audit_events(app, "recovery.verify")] == [("success", "sms")]
    sent_events = audit_events(app, "recovery.username_sent")
    assert len(sent_events) == 1 and sent_events[0].subject == demo_account.sub
    for event in audit_events(app, "recovery.lookup") + sent_events:
        assert DEMO.phone not in str(event.details) and DEMO.id_number not in str(event.details)


def test_unknown_identity_is_answered_like_a_known_one(app, demo_account):
    """Same status, redirect and body on the first step whether or not the details match."""
    answers = []
    for details in (
        {},  # matches
        {"id_number": CITIZENS["lina"].id_number},  # a valid document nobody registered
        {"name": "王大明"},  # a registered document with another name
        {"id_type": "hk_macao_permit", "id_number": "H12345678"},  # another type of document
    ):
        response = Recovery(app.test_client()).username_identity(**details)
        answers.append((response.status_code, response.headers["Location"], response.data))
    assert len(set(answers)) == 1
    assert answers[0][:2] == (302, "/recovery/username/sms")
    outcomes = [(e.outcome, e.details.get("reason")) for e in audit_events(app, "recovery.lookup")]
    assert outcomes == [("success", None)] + [("failure", "no_match")] * 3


def test_no_match_sends_nothing_and_no_code_passes(app, client, recovery, demo_account):
    lina = CITIZENS["lina"]
    recovery.username_identity(lina)
    page = client.get("/recovery/username/sms").data.decode()
    assert "若您填写的信息与注册信息一致，短信验证码将发送至注册时填写的手机号码" in page
    sent = recovery.username_send()
    assert sent.status_code == 200
    assert "若您填写的信息与注册信息一致，短信验证码已发送至注册时填写的手机号码，5分钟内有效" in sent.data.decode()
    assert client.get("/dev/sms-outbox.json").get_json()["messages"] == []
    # the resend cooldown holds as for a real code
    again = recovery.username_send()
    assert again.status_code == 429
    assert re.search(r"短信验证码已发送，请(59|60)秒后再重新获取", again.data.decode())
    # any code is wrong, and the fifth wrong one spends the (never sent) code
    for _ in range(4):
        assert "短信验证码错误或已失效" in field_errors(recovery.username_code("123456").data)
    assert "短信验证码错误次数过多，请重新获取" in field_errors(recovery.username_code("123456").data)
    assert "短信验证码错误或已失效" in field_errors(recovery.username_code("123456").data)
    assert client.get("/recovery/username/done").headers["Location"] == "/recovery/username/sms"
    [skipped] = audit_events(app, "sms.sent")
    assert (skipped.outcome, skipped.details["reason"]) == ("skipped", "no_account")


def test_no_match_code_expires_like_a_real_one(app, client, recovery):
    recovery.username_identity(CITIZENS["lina"])
    recovery.username_send()
    expire_sms_codes(app)  # the decoy is kept like a real code: it expires like one
    assert "短信验证码已失效，请重新获取" in field_errors(recovery.username_code("123456").data)


def test_sms_code_wrong_expired_exhausted_and_not_requested(app, client, recovery, demo_account):
    recovery.username_identity()
    response = recovery.username_code("123456")
    assert response.status_code == 400
    assert "请先点击“发送短信验证”获取短信验证码" in field_errors(response.data)
    recovery.username_send()
    assert "请输入短信验证码" in field_errors(recovery.username_code("").data)
    right = outbox_code(client, DEMO.phone)
    for _ in range(4):
        response = recovery.username_code(wrong(right))
        assert "短信验证码错误或已失效" in field_errors(response.data)
        assert page_fields(response.data)["sms_code"] == ""  # a code is never sent back
    assert "短信验证码错误次数过多，请重新获取" in field_errors(recovery.username_code(wrong(right)).data)
    assert "短信验证码错误或已失效" in field_errors(recovery.username_code(right).data)  # spent

    # a fresh code, expired
    with app.app_context():
        redis_store.delete(*redis_store.keys("sms:resend:*"))
        redis_store.delete(*redis_store.keys("flow:recover_username:*"))
    recovery.username_identity()
    recovery.username_send()
    code = outbox_code(client, DEMO.phone)
    with app.app_context():
        for key in redis_store.keys("sms:code:recovery:*"):
            redis_store.hset(key, "expires_at", "0")
    assert "短信验证码已失效，请重新获取" in field_errors(recovery.username_code(code).data)
    failures = [e.details["reason"] for e in audit_events(app, "recovery.verify") if e.outcome == "failure"]
    assert failures[-1] == "sms_code_expired" and "sms_code_exhausted" in failures
    assert len([m for m in outbox(client, DEMO.phone) if "用户名为" in m["text"]]) == 0


def test_resend_waits_sixty_seconds(client, recovery, demo_account):
    recovery.username_identity()
    assert recovery.username_send().status_code == 200
    again = recovery.username_send()
    assert again.status_code == 429
    assert re.search(r"短信验证码已发送，请(59|60)秒后再重新获取", again.data.decode())
    assert len(outbox(client, DEMO.phone)) == 1


def test_bad_input_is_explained_and_kept(client, recovery, demo_account):
    response = recovery.username_identity(id_number="440304199003072137", captcha=CAPTCHA)
    assert response.status_code == 400
    assert "证件号校验位不正确，请核对证件号" in field_errors(response.data)
    kept = page_fields(response.data)
    assert kept["name"] == DEMO.name and kept["id_number"] == "440304199003072137" and kept["captcha"] == ""
    assert "请输入姓名" in field_errors(recovery.username_identity(name="").data)
    assert "姓名只能包含文字和间隔号（·），请按证件上的姓名填写" in field_errors(recovery.username_identity(name="王1").data)
    wrong_captcha = recovery.username_identity(captcha="XXXX")
    assert "验证码错误或已失效，请重新输入" in field_errors(wrong_captcha.data)
    assert client.get("/recovery/username/sms").headers["Location"] == "/recovery/username"


def test_steps_cannot_be_skipped_and_back_keeps_the_details(client, recovery, demo_account):
    assert client.get("/recovery/username/sms").headers["Location"] == "/recovery/username"
    assert client.get("/recovery/username/done").headers["Location"] == "/recovery/username"
    recovery.username_identity()
    assert client.get("/recovery/username/done").headers["Location"] == "/recovery/username/sms"
    page = client.get("/recovery/username/sms").data.decode()
    assert '<a class="button" href="/recovery/username">上一步</a>' in page
    back = page_fields(client.get("/recovery/username").data)
    assert (back["name"], back["id_number"], back["user_type"]) == (DEMO.name, DEMO.id_number, "personal")


def test_an_expired_flow_says_so(app, client, recovery, demo_account):
    recovery.username_identity()
    with app.app_context():
        redis_store.delete(*redis_store.keys("flow:recover_username:*"))
    response = client.get("/recovery/username/sms")
    assert response.headers["Location"] == "/recovery/username"
    assert "页面已超时，请重新填写" in client.get("/recovery/username").data.decode()


def test_flow_is_encrypted_in_redis(app, recovery, demo_account):
    recovery.username_identity()
    with app.app_context():
        [key] = redis_store.keys("flow:recover_username:*")
        blob = redis_store.get(key)
        assert DEMO.id_number.encode() not in blob and DEMO.name.encode() not in blob
        assert 0 < redis_store.ttl(key) <= 15 * 60


def test_first_step_is_limited_per_ip(keys_dir):
    app = make_app(keys_dir, RECOVERY_IP_LIMIT="3 per minute")
    recovery = Recovery(app.test_client())
    for _ in range(3):
        assert recovery.username_identity().status_code == 302
    limited = recovery.username_identity()
    assert limited.status_code == 429 and "操作过于频繁" in limited.data.decode()


def test_per_flow_sms_budget(app, client, recovery, demo_account):
    recovery.username_identity()
    for i in range(6):
        with app.app_context():
            redis_store.delete(*redis_store.keys("sms:resend:*") or ["-"])
        response = recovery.username_send()
        if i < 5:
            assert response.status_code == 200, i
    assert response.status_code == 429
    assert "本次找回获取短信验证码的次数过多，请稍后重新开始" in field_errors(response.data)


def test_unknown_identity_and_known_one_look_alike_until_the_sms_step(app, demo_account):
    known, unknown = Recovery(app.test_client()), Recovery(app.test_client())
    known.username_identity()
    unknown.username_identity(CITIZENS["lina"])
    known_page = without_tokens(known.client.get("/recovery/username").data)
    unknown_page = without_tokens(unknown.client.get("/recovery/username").data)
    # the back page shows each visitor what they typed, nothing about accounts
    assert known_page.replace(DEMO.name, "").replace(DEMO.id_number, "") == \
        unknown_page.replace(CITIZENS["lina"].name, "").replace(CITIZENS["lina"].id_number, "")
