"""手机号已停用? (the guide's FAQ 10): from the SMS step of either recovery, a bank card whose
reserved phone is the new number plus an SMS code to it replace the registered phone; the
interrupted recovery then goes on at its SMS step."""

from __future__ import annotations

from idp.extensions import db, redis_store
from idp.models import User
from idp.services.identity import pii

from ..conftest import DEFAULT_PASSWORD
from ..helpers import login
from .conftest import (
    CITIZENS,
    NEW_PASSWORD,
    STOPPED_PHONE,
    Recovery,
    audit_events,
    field_errors,
    make_citizen_account,
    outbox,
    outbox_code,
    page_fields,
    stored_user,
    wrong,
)

DEMO = CITIZENS["demo"]  # his bank now holds 13800138000; he registered with STOPPED_PHONE
IDENTITY_MISMATCH = "人员姓名或证件类型或证件号与银行登记不匹配"
PHONE_MISMATCH = "手机号与银行预留手机号不一致，请更换银行卡验证或去对应银行网点修改预留手机号"
UNAVAILABLE = "银行核验服务暂不可用，请稍后再试"


def _registered_phone(app, user_id: int) -> str:
    with app.app_context():
        user = db.session.get(User, user_id)
        return pii.cipher().decrypt("phone", user.phone_enc)


def test_username_recovery_continues_with_the_new_phone(app, client, recovery):
    account = make_citizen_account(app, DEMO, "wangxm", phone=STOPPED_PHONE)
    recovery.username_identity()
    assert "139****9901" not in client.get("/recovery/username/sms").data.decode()  # shown once proven

    page = client.get("/recovery/phone/username")
    html = page.data.decode()
    assert page.status_code == 200 and "更换手机号" in html
    for label, name in (("银行", "bank_code"), ("银行账号", "card_number"), ("新手机号码", "phone"),
                        ("短信验证码", "sms_code")):
        assert f'<label for="{name}">{label}</label>' in html
    assert "发送短信验证" in html and '<a class="button" href="/recovery/username/sms">上一步</a>' in html
    assert 'aria-current="step">验证<wbr>手机校验码' in html  # a line may break after the verb

    sent = recovery.phone_change_send("username", DEMO.phone)
    assert "短信验证码已发送至138****8000，5分钟内有效" in sent.data.decode()
    changed = recovery.phone_change("username", DEMO)
    assert changed.status_code == 302 and changed.headers["Location"] == "/recovery/username/sms"

    page = client.get("/recovery/username/sms").data.decode()
    assert "手机号码已更换为138****8000，请继续完成验证" in page
    assert "短信验证码将发送至您注册时填写的手机号码138****8000" in page
    assert _registered_phone(app, account.id) == DEMO.phone
    with app.app_context():
        assert db.session.get(User, account.id).phone_hash == pii.cipher().lookup_hash("phone", DEMO.phone)
    [event] = audit_events(app, "phone.changed")
    assert event.subject == account.sub and event.details == {"channel": "recovery"}

    # the recovery goes on: the code and then the username go to the new phone
    recovery.username_send()
    done = recovery.username_code(outbox_code(client, DEMO.phone))
    assert done.headers["Location"] == "/recovery/username/done"
    assert "wangxm" in outbox(client, DEMO.phone)[0]["text"]
    assert outbox(client, STOPPED_PHONE) == []


def test_password_recovery_continues_with_the_new_phone(app, client, recovery):
    account = make_citizen_account(app, DEMO, "wangxm", phone=STOPPED_PHONE)
    recovery.password_username("wangxm")
    recovery.method("id_sms")
    # the new number is not the registered one yet: it gets a code but does not pass
    recovery.send_id_sms(DEMO.phone)
    refused = recovery.id_and_phone()
    assert "手机号码须为注册时填写的手机号码" in field_errors(refused.data)[0]

    assert 'aria-current="step">验证身份' in client.get("/recovery/phone/password").data.decode()
    recovery.phone_change_send("password", DEMO.phone)
    changed = recovery.phone_change("password", DEMO)
    assert changed.headers["Location"] == "/recovery/password/verify/id"
    assert "手机号码已更换为138****8000" in client.get("/recovery/password/verify/id").data.decode()

    with app.app_context():  # a minute later (the code sent above set a resend cooldown)
        redis_store.delete(*redis_store.keys("sms:resend:recovery:*"))
    recovery.send_id_sms(DEMO.phone)
    assert recovery.id_and_phone().headers["Location"] == "/recovery/password/reset"
    assert recovery.reset().headers["Location"] == "/recovery/password/done"
    assert login(app.test_client(), "wangxm", NEW_PASSWORD).status_code == 302
    assert _registered_phone(app, account.id) == DEMO.phone


def test_a_card_of_someone_else_does_not_change_the_phone(app, client, recovery):
    account = make_citizen_account(app, DEMO, "wangxm", phone=STOPPED_PHONE)
    lina = CITIZENS["lina"]  # her card, her reserved phone: the bank does not know 王小明 by it
    recovery.username_identity()
    recovery.phone_change_send("username", lina.phone)
    response = recovery.phone_change("username", lina)
    assert response.status_code == 400
    assert IDENTITY_MISMATCH in field_errors(response.data)
    kept = page_fields(response.data)
    assert (kept["card_number"], kept["phone"], kept["sms_code"]) == (lina.card_number, lina.phone, "")
    assert _registered_phone(app, account.id) == STOPPED_PHONE
    [failure] = audit_events(app, "phone.change")
    assert (failure.outcome, failure.details["reason"]) == ("failure", "identity_mismatch")


def test_a_phone_the_bank_does_not_hold_for_the_card(app, client, recovery):
    account = make_citizen_account(app, DEMO, "wangxm", phone=STOPPED_PHONE)
    recovery.username_identity()
    recovery.phone_change_send("username", "13800138099")
    response = recovery.phone_change("username", DEMO, phone="13800138099")
    assert PHONE_MISMATCH in field_errors(response.data)
    assert _registered_phone(app, account.id) == STOPPED_PHONE


def test_credit_card_unknown_card_and_bad_input(app, client, recovery):
    chenjing = CITIZENS["chenjing"]
    make_citizen_account(app, chenjing, "chenjing", phone=STOPPED_PHONE)
    recovery.username_identity(chenjing)
    recovery.phone_change_send("username", chenjing.phone)
    credit = CITIZENS["credit"]
    response = recovery.phone_change("username", chenjing, card_number=credit.card_number)
    assert "该卡不是借记卡，不能用于实名认证，请使用所列银行的借记卡或深圳金融社保卡" in field_errors(response.data)
    assert "请选择银行" in field_errors(recovery.phone_change("username", chenjing, bank_code="", code="").data)
    assert "银行账号校验位不正确，请核对银行账号" in field_errors(
        recovery.phone_change("username", chenjing, card_number="6214830567340678842", code="").data)


def test_sms_code_is_required_and_checked(app, client, recovery):
    account = make_citizen_account(app, DEMO, "wangxm", phone=STOPPED_PHONE)
    recovery.username_identity()
    not_sent = recovery.phone_change("username", DEMO, code="123456")
    assert "请先点击“发送短信验证”获取短信验证码" in field_errors(not_sent.data)
    recovery.phone_change_send("username", DEMO.phone)
    code = outbox_code(client, DEMO.phone)
    assert "短信验证码错误或已失效" in field_errors(recovery.phone_change("username", DEMO, code=wrong(code)).data)
    again = recovery.phone_change_send("username", DEMO.phone)
    assert again.status_code == 429 and "秒后再重新获取" in again.data.decode()
    assert _registered_phone(app, account.id) == STOPPED_PHONE


def test_bank_down_changes_nothing(app_with_bank_down):
    app = app_with_bank_down
    client = app.test_client()
    recovery = Recovery(client)
    account = make_citizen_account(app, DEMO, "wangxm", phone=STOPPED_PHONE)
    recovery.username_identity()
    recovery.phone_change_send("username", DEMO.phone)
    response = recovery.phone_change("username", DEMO)
    assert response.status_code == 503
    assert UNAVAILABLE in field_errors(response.data)
    assert _registered_phone(app, account.id) == STOPPED_PHONE
    [event] = audit_events(app, "phone.change")
    assert (event.outcome, event.details["reason"]) == ("error", "bank_unavailable")


def test_only_from_an_sms_step(app, client, recovery):
    make_citizen_account(app, DEMO, "wangxm", phone=STOPPED_PHONE)
    assert client.get("/recovery/phone/username").headers["Location"] == "/recovery/username/sms"
    assert client.get("/recovery/phone/password").headers["Location"] == "/recovery/password/verify/id"
    assert client.get("/recovery/phone/elsewhere").status_code == 404
    recovery.password_username("wangxm")  # not yet at 验证身份 with 证件号码+手机验证码
    assert client.get("/recovery/phone/password").headers["Location"] == "/recovery/password/verify/id"
    recovery.method("questions")
    assert client.get("/recovery/phone/password").status_code == 302


def test_unknown_account_is_told_only_after_the_phone_is_proven(app, client, recovery):
    recovery.username_identity(CITIZENS["lina"])  # nobody registered her
    recovery.phone_change_send("username", CITIZENS["lina"].phone)
    response = recovery.phone_change("username", CITIZENS["lina"])
    assert "未找到与所填信息一致的账号，请返回核对后重试" in field_errors(response.data)


def test_changing_the_phone_leaves_the_password_and_sessions_alone(app, client, recovery):
    account = make_citizen_account(app, DEMO, "wangxm", phone=STOPPED_PHONE)
    elsewhere = app.test_client()
    assert login(elsewhere, "wangxm", DEFAULT_PASSWORD).status_code == 302
    recovery.username_identity()
    recovery.phone_change_send("username", DEMO.phone)
    recovery.phone_change("username", DEMO)
    assert elsewhere.get("/account/").status_code == 200
    assert login(app.test_client(), "wangxm", DEFAULT_PASSWORD).status_code == 302
    assert stored_user(app, account.id).phone_verified


def test_the_link_sits_on_the_sms_page_of_both_recoveries_and_nowhere_else(client, recovery, demo_account):
    """The guide's FAQ 10: 手机号已停用？ is on the 验证手机校验码 page of 忘记用户名 and of 忘记密码
    (its 证件号码+手机验证码 page), the same link and the same advice under the code field."""
    note = "如该手机号码已停用，请先到银行将银行卡预留手机号码改为新号码，再点击“手机号已停用？”更换手机号"
    pages = {}
    assert "手机号已停用" not in client.get("/recovery/username").data.decode()
    recovery.username_identity()
    pages["username"] = client.get("/recovery/username/sms").data.decode()
    assert "手机号已停用" not in client.get("/recovery/password").data.decode()
    recovery.password_username("wangxm")
    assert "手机号已停用" not in client.get("/recovery/password/method").data.decode()
    recovery.method("id_sms")
    pages["password"] = client.get("/recovery/password/verify/id").data.decode()
    for origin, page in pages.items():
        link = f'<p class="stopped-phone"><a href="/recovery/phone/{origin}">手机号已停用？</a></p>'
        assert page.count("手机号已停用？</a>") == 1 and link in page, origin
        assert page.index('name="sms_code"') < page.index(link) < page.rindex('name="submit"'), origin
        assert note in page, origin


# -- the card lookup: a card the bank would refuse is refused before a code is spent ---------------------
def _sandbox(app):
    with app.app_context():
        from idp.services.verification.bank import bank_verifier

        verifier = bank_verifier()
        return verifier.session.get_adapter(verifier.url).app


def test_a_credit_or_inactive_card_is_refused_before_a_code_is_sent(app, client, recovery):
    make_citizen_account(app, DEMO, "wangxm", phone=STOPPED_PHONE)
    recovery.username_identity()
    for key, message in (("credit", "该卡不是借记卡"), ("inactive", "该银行卡状态异常")):
        card = CITIZENS[key]
        refused = recovery.post("/recovery/phone/username", button="send_sms", phone=DEMO.phone,
                                bank_code=card.bank_code, card_number=card.card_number)
        html = refused.data.decode()
        assert refused.status_code == 400 and any(message in e for e in field_errors(html))
        assert "短信验证码已发送" not in html  # red and green never together
    assert outbox(client, DEMO.phone) == []
    assert _sandbox(app).lookups == 2 and _sandbox(app).calls == 0
    assert [e.details["reason"] for e in audit_events(app, "phone.change")] == ["card_not_debit", "card_inactive"]

    # the JSON button asks the same
    token = page_fields(client.get("/recovery/phone/username").data)["csrf_token"]
    credit = CITIZENS["credit"]
    answer = client.post("/recovery/phone/username/sms", data={
        "phone": DEMO.phone, "bank_code": credit.bank_code, "card_number": credit.card_number, "csrf_token": token})
    assert answer.status_code == 400 and "该卡不是借记卡" in answer.get_json()["message"]
    assert outbox(client, DEMO.phone) == []

    # his own debit card passes the lookup: the code goes, and the change completes
    sent = recovery.post("/recovery/phone/username", button="send_sms", phone=DEMO.phone,
                         bank_code=DEMO.bank_code, card_number=DEMO.card_number)
    assert sent.status_code == 200 and "短信验证码已发送至138****8000" in sent.data.decode()
    assert _sandbox(app).lookups == 4
    changed = recovery.phone_change("username", DEMO)
    assert changed.headers["Location"] == "/recovery/username/sms"


def test_without_a_card_typed_the_code_goes_without_a_lookup(app, client, recovery):
    make_citizen_account(app, DEMO, "wangxm", phone=STOPPED_PHONE)
    recovery.username_identity()
    sent = recovery.post("/recovery/phone/username", button="send_sms", phone=DEMO.phone, card_number="")
    assert sent.status_code == 200 and _sandbox(app).lookups == 0
