"""单位用户 recovery over HTTP: 忘记用户名 by the unit's name and code (the username goes by SMS to
the handler's phone; an unknown unit gets the same pages and no SMS), 忘记密码 by the code and
the handler's phone code or by 密保问题."""

from __future__ import annotations

from idp.extensions import db
from idp.models import SecurityAnswer
from idp.services.identity import passwords

from ..helpers import CAPTCHA, submit_form
from ..recovery.conftest import (
    NEW_PASSWORD,
    STOPPED_PHONE,
    Recovery,
    audit_events,
    field_errors,
    outbox,
    outbox_code,
    page_fields,
    without_tokens,
    wrong,
)
from ..register.conftest import CITIZENS
from .conftest import make_unit_account, unit

DEMO_UNIT = unit(demo=True)
HANDLER = CITIZENS["lina"]
IDENTITY_NOT_MATCHED = "证件类型、证件号或手机号码与注册信息不一致（手机号码须为注册时填写的手机号码）"


def unit_identity(client, u=DEMO_UNIT, **overrides):
    data = dict(user_type="unit", unit_name=u.unit_name, unit_id_type=u.unit_id_type, uscc=u.uscc, captcha=CAPTCHA)
    data.update(overrides)
    return submit_form(client, "/recovery/username?type=unit", {**data, "submit": "1"})


def unit_login(client, username: str, password: str):
    return submit_form(client, "/login?type=unit", {"username": username, "password": password, "captcha": CAPTCHA})


# -- 忘记用户名 --------------------------------------------------------------------------------------
def test_the_unit_form_of_forgotten_username(client):
    page = client.get("/recovery/username?type=unit")
    html = page.data.decode()
    for label, name in (("单位名称", "unit_name"), ("证件类型", "unit_id_type"), ("统一社会信用代码", "uscc"),
                        ("验证码", "captcha")):
        assert f'<label for="{name}">{label}</label>' in html
    assert '<option selected value="uscc">统一社会信用代码</option>' in html
    assert page_fields(page.data)["user_type"] == "unit"
    assert 'name="id_number"' not in html and 'name="name"' not in html
    assert "经办人手机号码" in html
    # the personal form offers the switch (JavaScript loads the other form at once)
    personal = client.get("/recovery/username").data.decode()
    assert 'data-switch="/recovery/username?type=unit"' in personal and 'name="id_number"' in personal


def test_choosing_unit_without_javascript_shows_the_unit_form_and_checks_nothing(app, client):
    page = client.get("/recovery/username")
    fields = page_fields(page.data)
    fields.update(name="李娜", user_type="unit", id_type="resident_id", id_number=HANDLER.id_number,
                  captcha=CAPTCHA, submit="1")
    response = client.post("/recovery/username", data=fields)
    html = response.data.decode()
    assert response.status_code == 200
    assert 'name="uscc"' in html and 'name="id_number"' not in html
    assert "field-error" not in html and "alert-error" not in html
    assert audit_events(app, "recovery.lookup") == []
    # and back again
    fields = page_fields(response.data)
    fields.update(user_type="personal", submit="1")
    back = client.post("/recovery/username", data=fields)
    assert back.status_code == 200 and 'name="id_number"' in back.data.decode()


def test_unit_username_goes_by_sms_to_the_handler(app, client, unit_account):
    response = unit_identity(client)
    assert response.status_code == 302 and response.headers["Location"] == "/recovery/username/sms"
    page = client.get("/recovery/username/sms").data.decode()
    assert "若您填写的信息与注册信息一致，短信验证码将发送至注册时填写的手机号码" in page
    assert HANDLER.phone not in page and "****" not in page
    recovery = Recovery(client)
    sent = recovery.username_send()
    assert sent.status_code == 200
    done = recovery.username_code(outbox_code(client, HANDLER.phone))
    assert done.headers["Location"] == "/recovery/username/done"
    html = client.get("/recovery/username/done").data.decode()
    assert "找回用户名成功" in html and "unit_demo" not in html
    [username_sms, code_sms] = outbox(client, HANDLER.phone)  # newest first
    assert "unit_demo" in username_sms["text"] and DEMO_UNIT.unit_name in username_sms["text"]
    assert "单位用户名" in username_sms["text"]
    lookups = audit_events(app, "recovery.lookup")
    assert [(e.outcome, e.details["user_type"]) for e in lookups] == [("success", "unit")]
    assert audit_events(app, "recovery.username_sent")[0].subject == unit_account.sub
    for event in lookups:
        assert HANDLER.phone not in str(event.details) and DEMO_UNIT.uscc not in str(event.details)


def test_unknown_unit_gets_the_same_pages_and_no_sms(app, unit_account):
    """A registered unit, a unit nobody registered, a registered code under another name, and a
    personal account's holder: the same answers on every page; only the first gets an SMS."""
    other = unit(uscc="91440300MA5F00002D")
    cases = [
        {},
        {"unit_name": other.unit_name, "uscc": other.uscc},
        {"unit_name": "深圳市鹏城示例科技股份有限公司"},
    ]
    answers = []
    for overrides in cases:
        client = app.test_client()
        first = unit_identity(client, **overrides)
        sms_page = client.get("/recovery/username/sms")
        sent = Recovery(client).username_send()
        wrong_code = Recovery(client).username_code("000000" if overrides else wrong(outbox_code(client, HANDLER.phone)))
        answers.append((first.status_code, first.headers.get("Location"), without_tokens(sms_page.data),
                        sent.status_code, without_tokens(sent.data), wrong_code.status_code,
                        field_errors(wrong_code.data)))
    assert len(set(map(str, answers))) == 1, answers
    assert answers[0][:2] == (302, "/recovery/username/sms")
    # one SMS: the code to the registered unit's handler; none for the others
    every = app.test_client().get("/dev/sms-outbox.json").get_json()["messages"]
    assert [m["phone"] for m in every] == [HANDLER.phone]
    outcomes = [(e.outcome, e.details.get("reason")) for e in audit_events(app, "recovery.lookup")]
    assert outcomes == [("success", None)] + [("failure", "no_match")] * 2
    skipped = [e for e in audit_events(app, "sms.sent") if e.outcome == "skipped"]
    assert len(skipped) == 2


def test_a_unit_handler_typed_as_a_person_finds_no_account(app, unit_account):
    # the handler's own document, typed as a person, finds no personal account (none exists)
    response = Recovery(app.test_client()).username_identity(HANDLER)
    assert response.headers["Location"] == "/recovery/username/sms"
    assert audit_events(app, "recovery.lookup")[-1].details["reason"] == "no_match"


def test_unit_identity_format_errors(client, unit_account):
    bad = DEMO_UNIT.uscc[:-1] + ("0" if DEMO_UNIT.uscc[-1] != "0" else "1")
    response = unit_identity(client, uscc=bad)
    assert response.status_code == 400
    assert "统一社会信用代码格式不正确，请核对（18位，含校验码）" in field_errors(response.data)
    assert page_fields(response.data)["unit_name"] == DEMO_UNIT.unit_name  # the form keeps the input
    response = unit_identity(client, unit_name="")
    assert response.status_code == 400 and "请输入单位名称" in field_errors(response.data)
    response = unit_identity(client, unit_id_type="org_code")
    assert response.status_code == 400 and "请选择证件类型" in field_errors(response.data)
    response = unit_identity(client, captcha="WRONG1")
    assert response.status_code == 400 and "验证码错误或已失效" in response.data.decode()


def test_back_from_the_sms_step_shows_the_unit_form_as_typed(client, unit_account):
    unit_identity(client, uscc=DEMO_UNIT.uscc.lower())
    fields = page_fields(client.get("/recovery/username").data)
    assert fields["user_type"] == "unit" and fields["unit_name"] == DEMO_UNIT.unit_name
    assert fields["uscc"].upper() == DEMO_UNIT.uscc


# -- 忘记密码 ----------------------------------------------------------------------------------------
def test_unit_password_reset_by_code_and_handler_phone(app, client, unit_account):
    recovery = Recovery(client)
    assert recovery.password_username("unit_demo").headers["Location"] == "/recovery/password/method"
    assert recovery.method("id_sms").headers["Location"] == "/recovery/password/verify/id"
    page = client.get("/recovery/password/verify/id").data.decode()
    assert '<option value="uscc">统一社会信用代码</option>' in page and "单位用户请选择" in page
    assert recovery.send_id_sms(HANDLER.phone).status_code == 200
    code = outbox_code(client, HANDLER.phone)
    # the handler's personal document is not the unit's
    response = recovery.id_and_phone(HANDLER, code=code)
    assert response.status_code == 400 and IDENTITY_NOT_MATCHED in response.data.decode()
    # a malformed code says so on 证件号
    response = recovery.id_and_phone(HANDLER, code=code, id_type="uscc", id_number=DEMO_UNIT.uscc[:-1] + "0")
    assert "统一社会信用代码格式不正确，请核对（18位，含校验码）" in field_errors(response.data)
    response = recovery.id_and_phone(HANDLER, code=code, id_type="uscc", id_number=DEMO_UNIT.uscc.lower())
    assert response.headers["Location"] == "/recovery/password/reset", field_errors(response.data)
    assert recovery.reset().headers["Location"] == "/recovery/password/done"
    assert unit_login(app.test_client(), "unit_demo", NEW_PASSWORD).status_code == 302
    outcomes = [(e.outcome, e.details.get("method")) for e in audit_events(app, "recovery.verify")]
    assert outcomes[-1] == ("success", "id_sms")


def test_a_code_does_not_recover_a_personal_account(app, client, unit_account, make_user):
    make_user(username="lina_p", name=HANDLER.name, id_number=HANDLER.id_number, phone=HANDLER.phone)
    recovery = Recovery(client)
    recovery.password_username("lina_p")
    recovery.method("id_sms")
    recovery.send_id_sms(HANDLER.phone)
    response = recovery.id_and_phone(HANDLER, id_type="uscc", id_number=DEMO_UNIT.uscc)
    assert response.status_code == 400 and IDENTITY_NOT_MATCHED in response.data.decode()


def test_unit_password_reset_by_security_questions(app, client, unit_account):
    with app.app_context():
        for position, (question, answer) in enumerate(
                (("mother_name", "王芳"), ("birthplace", "深圳"), ("first_pet", "小白")), start=1):
            db.session.add(SecurityAnswer(user_id=unit_account.id, position=position, question=question,
                                          answer_hash=passwords.hash_password(answer)))
        db.session.commit()
    recovery = Recovery(client)
    recovery.password_username("unit_demo")
    assert recovery.method("questions").headers["Location"] == "/recovery/password/verify/questions"
    page = client.get("/recovery/password/verify/questions").data.decode()
    assert "您母亲的姓名是？" in page
    assert "密保问题答案不正确" in field_errors(recovery.answers("王芳", "北京", "小白").data)
    assert recovery.answers("王芳", "深圳", "小白").headers["Location"] == "/recovery/password/reset"
    assert recovery.reset().headers["Location"] == "/recovery/password/done"
    assert unit_login(app.test_client(), "unit_demo", NEW_PASSWORD).status_code == 302
    # and the unit tab only
    assert submit_form(app.test_client(), "/login", {"username": "unit_demo", "password": NEW_PASSWORD,
                                                     "captcha": CAPTCHA}).status_code != 302


def test_stopped_phone_for_a_unit_checks_the_handler_at_the_bank(app, client):
    """手机号已停用? from the unit's SMS step: the new phone is proven by the bank with the
    handler's name and document (a unit has no personal document of its own)."""
    user = make_unit_account(app, phone=STOPPED_PHONE)
    unit_identity(client)
    recovery = Recovery(client)
    other = CITIZENS["demo"]  # another person's card: the bank refuses it for the handler
    recovery.phone_change_send("username", other.phone)
    refused = recovery.phone_change("username", other)
    assert refused.status_code == 400
    assert "人员姓名或证件类型或证件号与银行登记不匹配" in refused.data.decode()
    recovery.phone_change_send("username", HANDLER.phone)
    changed = recovery.phone_change("username", HANDLER, code=outbox_code(client, HANDLER.phone))
    assert changed.headers["Location"] == "/recovery/username/sms", field_errors(changed.data)
    assert [e.subject for e in audit_events(app, "phone.changed")] == [user.sub]
    # the username now goes to the new phone
    recovery.username_send()
    assert recovery.username_code(outbox_code(client, HANDLER.phone)).headers["Location"] == "/recovery/username/done"
    assert "unit_demo" in outbox(client, HANDLER.phone)[0]["text"]
