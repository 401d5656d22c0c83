"""The registration wizard over HTTP: every step, branch and message of the wizard."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from idp.extensions import db, redis_store
from idp.models import AuditEvent, PrivacyConsent, User
from idp.services.identity import pii

from ..conftest import DEFAULT_PASSWORD
from ..helpers import login
from .conftest import CITIZENS, OLD_PHONE_NOW, field_errors, page_fields

IDENTITY_MISMATCH = "人员姓名或证件类型或证件号与银行登记不匹配"
PHONE_MISMATCH = "手机号与银行预留手机号不一致，请更换银行卡验证或去对应银行网点修改预留手机号"


def users_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User))


def audit_events(app, event: str = "register") -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.event == event).order_by(AuditEvent.id)))


# -- the pages -------------------------------------------------------------------------------------
def test_login_page_links_to_registration(client):
    html = client.get("/login").data.decode()
    assert '<a href="/register">立即注册</a>' in html


def test_registration_starts_with_or_without_a_trailing_slash(client):
    for url in ("/register", "/register/"):
        response = client.get(url)
        assert response.status_code == 302 and response.headers["Location"] == "/register/login-info"


def test_step_bar_and_labelled_fields_of_step_one(wizard, client):
    wizard.start()
    page = client.get("/register/login-info")
    html = page.data.decode()
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    bar = re.search(r'<ol class="steps".*?</ol>', html, re.S).group(0).replace("<wbr>", "")  # a break after the verb
    assert re.findall(r">([^<>\s][^<>]*)</li>", bar) == ["填写登录信息", "填写身份信息", "填写验证信息", "注册成功"]
    assert 'aria-current="step">填写登录信息' in bar
    for label, name in (("用户名", "username"), ("密码", "password"), ("确认密码", "confirm"), ("验证码", "captcha")):
        assert f'<label for="{name}">{label}</label>' in html
    assert "下一步" in html
    assert '/static/js/register.js' in html
    assert "<script>" not in html  # CSP: no inline scripts


def test_steps_cannot_be_reached_before_the_ones_they_need(wizard, client):
    # no flow at all: back to the start, no scary message
    first = client.get("/register/verification")
    assert first.headers["Location"] == "/register"
    wizard.start()
    assert client.get("/register/verification").headers["Location"] == "/register/login-info"
    assert client.get("/register/identity").headers["Location"] == "/register/login-info"
    assert client.get("/register/done").headers["Location"] == "/register/login-info"
    assert wizard.login_info().status_code == 302
    assert client.get("/register/verification").headers["Location"] == "/register/identity"
    # posting to a later step is refused the same way
    assert client.post("/register/verification", data={"submit": "1"}).status_code == 400  # no CSRF token
    page = client.get("/register/identity")
    fields = page_fields(page.data)
    fields.update(bank_code="CCB", card_number="6217009722818662011", phone="13800138000", submit="1")
    assert client.post("/register/verification", data=fields).headers["Location"] == "/register/identity"


def test_flow_lives_in_redis_encrypted_and_expires(app, wizard, client):
    wizard.start()
    wizard.login_info(username="expiring1")
    wizard.identity()
    with app.app_context():
        keys = redis_store.keys("flow:register:*")
        assert len(keys) == 1
        blob = redis_store.get(keys[0])
        assert b"440304199003072136" not in blob and "王小明".encode() not in blob and b"expiring1" not in blob
        assert 0 < redis_store.ttl(keys[0]) <= 30 * 60
        redis_store.delete(keys[0])  # what the expiry does
    response = client.get("/register/verification")
    assert response.headers["Location"] == "/register"
    assert "页面已超时，请重新填写" in client.get("/register", follow_redirects=True).data.decode()


# -- step 1: 填写登录信息 ------------------------------------------------------------------------------
def test_username_taken_is_refused_case_insensitively(wizard, make_user):
    make_user(username="Taken2026")
    wizard.start()
    response = wizard.login_info(username="taken2026")
    assert response.status_code == 400
    assert "用户名已被使用" in field_errors(response.data)
    fields = page_fields(response.data)
    assert fields["username"] == "taken2026"  # kept
    assert fields["password"] == fields["confirm"] == fields["captcha"] == ""  # secrets never echoed


def test_username_format(wizard):
    wizard.start()
    for bad in ("abc", "1abc", "ab-cd", "a" * 21):
        response = wizard.login_info(username=bad)
        assert response.status_code == 400
        assert "用户名须为4–20位字母、数字或下划线，并以字母开头" in field_errors(response.data), bad


def test_password_policy_violations_are_listed_precisely(wizard):
    wizard.start()
    response = wizard.login_info(username="policy2026", password="policy2026")
    errors = field_errors(response.data)
    assert "密码须至少包含大写字母、小写字母、数字、符号中的三种" in errors
    assert "密码不能包含用户名" in errors
    response = wizard.login_info(username="policy2026", password="Ab1!")
    assert "密码长度须为8–32位" in field_errors(response.data)
    response = wizard.login_info(username="policy2026", password="1qaz@WSX")
    assert field_errors(response.data) == ["密码过于常见，请更换"]


def test_confirm_must_match(wizard):
    wizard.start()
    response = wizard.login_info(confirm="Kaoshi#2026no")
    assert response.status_code == 400
    assert "两次输入的密码不一致" in field_errors(response.data)


def test_wrong_captcha(wizard):
    wizard.start()
    response = wizard.login_info(captcha="NOPE")
    assert response.status_code == 400
    assert "验证码错误或已失效，请重新输入" in field_errors(response.data)


def test_no_plaintext_password_waits_in_the_flow(app, wizard):
    wizard.start()
    wizard.login_info(username="secret2026")
    with app.app_context():
        from idp.flows.registration import REGISTRATION

        with app.test_request_context():
            from flask import session

            key = redis_store.keys("flow:register:*")[0].decode()
            session["flow:register"] = key.rsplit(":", 1)[1]
            flow = REGISTRATION.load()
    assert DEFAULT_PASSWORD not in repr(flow.data)
    assert flow.data["password_hash"].startswith("$argon2id$")


# -- step 2: 填写身份信息 ------------------------------------------------------------------------------
def test_identity_fields_and_prefill_hint(wizard, client):
    wizard.start()
    wizard.login_info()
    html = client.get("/register/identity").data.decode()
    for label, name in (("姓名", "name"), ("证件类型", "id_type"), ("证件号", "id_number"), ("出生日期", "birthdate")):
        assert f'<label for="{name}">{label}</label>' in html
    assert "<legend>性别</legend>" in html
    for id_type in ("居民身份证", "港澳居民来往内地通行证", "台湾居民来往大陆通行证", "港澳台居民居住证",
                    "外国人永久居留身份证", "护照"):
        assert f">{id_type}</option>" in html
    assert 'type="date"' in html


def test_document_already_registered(wizard, make_user):
    make_user(username="first2026", id_number=CITIZENS["demo"].id_number)
    wizard.start()
    wizard.login_info(username="second2026")
    response = wizard.identity()
    assert response.status_code == 400
    html = response.data.decode()
    assert "证件已被使用" in field_errors(html)
    assert "忘记用户名？" in html and "通过预留手机号码找回" in html
    assert page_fields(html)["id_number"] == CITIZENS["demo"].id_number


def test_document_taken_check_ignores_case_of_the_check_letter(wizard, make_user):
    make_user(username="first2026", id_number="44030619950620341X")
    wizard.start()
    wizard.login_info(username="second2026")
    response = wizard.identity(name="张三", id_number="44030619950620341x", gender="M", birthdate="1995-06-20")
    assert "证件已被使用" in field_errors(response.data)


def test_resident_id_check_digit(wizard):
    wizard.start()
    wizard.login_info()
    response = wizard.identity(id_number="440304199003072137")
    assert response.status_code == 400
    assert "证件号校验位不正确，请核对证件号" in field_errors(response.data)
    response = wizard.identity(id_number="44030419900307213")
    assert "居民身份证号码须为18位，最后一位可以是数字或X" in field_errors(response.data)


def test_birthdate_and_gender_must_agree_with_the_number(wizard):
    wizard.start()
    wizard.login_info()
    response = wizard.identity(birthdate="1990-03-08")
    assert "出生日期与证件号不一致" in field_errors(response.data)
    response = wizard.identity(gender="F")
    assert "性别与证件号不一致" in field_errors(response.data)
    assert page_fields(response.data)["gender"] == "F"  # what the citizen chose is kept


def test_birthdate_and_gender_taken_from_the_number_without_javascript(wizard, client):
    wizard.start()
    wizard.login_info()
    response = wizard.identity(gender="", birthdate="")
    assert response.status_code == 302
    # going back shows what the number said
    fields = page_fields(client.get("/register/identity").data)
    assert fields["birthdate"] == "1990-03-07" and fields["gender"] == "M"


def test_other_document_types_need_gender_and_birthdate(wizard, citizens):
    wizard.start()
    wizard.login_info()
    hk = citizens["hk"]
    response = wizard.identity(hk, gender="", birthdate="")
    assert response.status_code == 400
    assert "请选择性别" in field_errors(response.data)
    response = wizard.identity(hk, gender="M", birthdate="")
    assert "请输入正确的出生日期" in field_errors(response.data)
    response = wizard.identity(hk, id_number="X1234567")
    assert "港澳居民来往内地通行证号码须为H或M加8位（或10位）数字" in field_errors(response.data)
    response = wizard.identity(hk, gender="M", birthdate="1980-01-01")
    assert response.status_code == 302


def test_name_rules(wizard):
    wizard.start()
    wizard.login_info()
    response = wizard.identity(name="王小明1")
    assert "姓名只能包含文字和间隔号（·），请按证件上的姓名填写" in field_errors(response.data)
    response = wizard.identity(name="")
    assert "请输入姓名" in field_errors(response.data)


def test_back_keeps_what_was_typed(wizard, client):
    wizard.start()
    wizard.login_info(username="backward1")
    # 上一步 from step 2 with a half-typed identity: nothing is validated, everything is kept
    response = wizard.post("/register/identity", button="back", name="王小明", id_number="4403041990")
    assert response.headers["Location"] == "/register/login-info"
    step1 = page_fields(client.get("/register/login-info").data)
    assert step1["username"] == "backward1" and step1["password"] == ""
    assert "已设置密码，不修改可留空" in client.get("/register/login-info").data.decode()
    # 下一步 again without retyping the password keeps the one already set
    response = wizard.login_info(username="backward1", password="", confirm="")
    assert response.headers["Location"] == "/register/identity"
    step2 = page_fields(client.get("/register/identity").data)
    assert step2["name"] == "王小明" and step2["id_number"] == "4403041990"


def test_changing_the_username_needs_the_password_again(wizard):
    wizard.start()
    wizard.login_info(username="backward1")
    response = wizard.login_info(username="backward2", password="", confirm="")
    assert response.status_code == 400
    assert "修改了用户名，请重新输入密码" in field_errors(response.data)


# -- step 3: 填写验证信息 ------------------------------------------------------------------------------
def test_verification_page(wizard, client):
    wizard.through_identity()
    html = client.get("/register/verification").data.decode()
    for label, name in (("银行", "bank_code"), ("银行账号", "card_number"), ("手机号码", "phone"), ("短信验证码", "sms_code")):
        assert f'<label for="{name}">{label}</label>' in html
    banks = re.findall(r'<option value="[A-Z]+">([^<]+)</option>', html)
    assert banks == ["建设银行", "工商银行", "中国银行", "农业银行", "招商银行", "平安银行", "深圳农村商业银行",
                     "邮储银行", "交通银行", "中信银行", "光大银行", "民生银行"]
    assert "发送短信验证" in html and "上一步" in html and "下一步" in html


def test_full_registration_without_javascript(app, wizard, client):
    demo = CITIZENS["demo"]
    wizard.through_identity(demo, username="WangXM2026")
    sent = wizard.send_sms(demo.phone, bank_code=demo.bank_code, card_number=demo.card_number)
    assert sent.status_code == 200
    assert "短信验证码已发送至138****8000，5分钟内有效" in sent.data.decode()
    kept = page_fields(sent.data)
    assert kept["card_number"] == demo.card_number and kept["bank_code"] == "CCB" and kept["sms_code"] == ""
    response = wizard.verification(demo)
    assert response.status_code == 302
    assert response.headers["Location"] == "/register/done"
    done = client.get("/register/done").data.decode()
    assert "注册成功" in done and "WangXM2026" in done and "立即登录" in done
    assert 'aria-current="step">注册成功' in done
    # not signed in: the citizen logs in, and the login page offers the new username
    assert client.get("/account/").status_code == 302
    assert page_fields(client.get("/login").data)["username"] == "WangXM2026"
    assert login(client, "wangxm2026", DEFAULT_PASSWORD).status_code == 302
    home = client.get("/account/").data.decode()
    assert "王小明" in home and "已通过银行实名认证" in home and "**** **** **** 2011" in home
    with app.app_context():
        user = db.session.scalar(select(User))
        assert user.real_name_verified and user.phone_verified
        assert (user.gender, user.birthdate.isoformat(), user.bank_code) == ("M", "1990-03-07", "CCB")
        assert user.card_last4 == "2011"
        for column in (user.id_number_enc, user.phone_enc, user.card_enc):
            assert demo.id_number.encode() not in column and demo.phone.encode() not in column
        assert pii.cipher().decrypt("id_number", user.id_number_enc) == demo.id_number
        assert pii.cipher().decrypt("card", user.card_enc) == demo.card_number
        assert user.id_number_hash == pii.cipher().lookup_hash("id_number", demo.id_number)
    # the flow kept nothing personal once finished
    with app.app_context():
        assert len(redis_store.keys("flow:register:*")) == 1


def test_after_success_the_wizard_starts_afresh(wizard, client):
    assert wizard.register().status_code == 302
    assert client.get("/register/identity").headers["Location"] == "/register"
    assert client.get("/register").headers["Location"] == "/register/login-info"
    assert page_fields(client.get("/register/login-info").data)["username"] == ""


def test_identity_mismatch_then_fix_through_back(app, wizard, client):
    demo = CITIZENS["demo"]
    wizard.through_identity(demo)
    # the citizen typed a wrong name in step 2
    assert wizard.identity(demo, name="王晓明").status_code == 302
    wizard.send_sms(demo.phone, bank_code=demo.bank_code, card_number=demo.card_number)
    response = wizard.verification(demo)
    assert response.status_code == 400
    html = response.data.decode()
    assert IDENTITY_MISMATCH in field_errors(html)
    assert "请点击“上一步”" in html
    assert users_count(app) == 0
    # 上一步 keeps step 3's data; fix the name; step 3 needs no second SMS for the same phone
    back = wizard.post("/register/verification", button="back", bank_code=demo.bank_code,
                       card_number=demo.card_number, phone=demo.phone)
    assert back.headers["Location"] == "/register/identity"
    assert page_fields(client.get("/register/identity").data)["name"] == "王晓明"
    assert wizard.identity(demo).status_code == 302
    again = page_fields(client.get("/register/verification").data)
    assert (again["bank_code"], again["card_number"], again["phone"]) == ("CCB", demo.card_number, demo.phone)
    response = wizard.verification(demo, code="")
    assert response.status_code == 302, field_errors(response.data)
    assert users_count(app) == 1
    reasons = [(e.outcome, e.details.get("reason")) for e in audit_events(app)]
    assert reasons == [("failure", "identity_mismatch"), ("success", None)]


def test_phone_mismatch(app, wizard, citizens):
    old = citizens["old_phone"]
    wizard.through_identity(old)
    wizard.send_sms(OLD_PHONE_NOW, bank_code=old.bank_code, card_number=old.card_number)
    response = wizard.verification(old, phone=OLD_PHONE_NOW)
    assert response.status_code == 400
    assert PHONE_MISMATCH in field_errors(response.data)
    assert users_count(app) == 0
    # the number the bank has works (after its own SMS code)
    wizard.send_sms(old.phone, bank_code=old.bank_code, card_number=old.card_number)
    assert wizard.verification(old).status_code == 302
    assert users_count(app) == 1


def test_credit_card_refused(app, wizard, citizens):
    credit = citizens["credit"]
    wizard.through_identity(credit)
    # refused at 发送短信验证 by the card lookup: no code is spent on a card the bank would refuse
    sent = wizard.send_sms(credit.phone, bank_code=credit.bank_code, card_number=credit.card_number)
    assert "该卡不是借记卡，不能用于实名认证，请使用所列银行的借记卡或深圳金融社保卡" in field_errors(sent.data)
    assert wizard.verification(credit, code="123456").status_code == 400  # no code was sent
    assert users_count(app) == 0


def test_unknown_card_and_wrong_bank_refused(app, wizard, citizens):
    demo = citizens["demo"]
    wizard.through_identity(demo)
    wizard.send_sms(demo.phone, bank_code=demo.bank_code, card_number=demo.card_number)
    message = "所选银行未查询到该银行账号，请核对银行和银行账号，或使用所列银行的借记卡或深圳金融社保卡"
    response = wizard.verification(demo, bank_code="ICBC")  # right card, wrong bank
    assert message in field_errors(response.data)
    response = wizard.verification(demo, code="", card_number="6217000000000000004")
    assert message in field_errors(response.data)
    assert users_count(app) == 0


def test_inactive_card_refused(app, wizard, citizens):
    inactive = citizens["inactive"]
    wizard.through_identity(inactive)
    sent = wizard.send_sms(inactive.phone, bank_code=inactive.bank_code, card_number=inactive.card_number)
    assert "该银行卡状态异常（未激活、已挂失或已销户），请使用所列银行的其他有效借记卡或深圳金融社保卡" in field_errors(sent.data)
    assert users_count(app) == 0


def test_card_number_format_and_luhn(wizard):
    demo = CITIZENS["demo"]
    wizard.through_identity(demo)
    wizard.send_sms(demo.phone)
    response = wizard.verification(demo, card_number="6217 0097 2281 8662 012")  # UnionPay: Luhn enforced
    assert "银行账号校验位不正确，请核对银行账号" in field_errors(response.data)
    response = wizard.verification(demo, card_number="12345")
    assert "银行账号须为13–19位数字" in field_errors(response.data)
    response = wizard.verification(demo, bank_code="")
    assert "请选择银行" in field_errors(response.data)


def test_domestic_card_without_luhn_warns_and_the_bank_decides(app, wizard, citizens):
    old = citizens["no_luhn"]
    wizard.through_identity(old)
    sent = wizard.send_sms(old.phone, bank_code=old.bank_code, card_number=old.card_number)
    assert "银行账号校验位异常，请仔细核对；是否可用以银行核验结果为准" in sent.data.decode()
    assert wizard.verification(old).status_code == 302
    assert users_count(app) == 1


def test_names_with_rare_characters_and_middle_dot_are_kept_exactly(app, wizard, citizens):
    for n, key in enumerate(("rare_astral", "middle_dot", "rare_bmp")):
        citizen = citizens[key]
        wizard.client = app.test_client()
        assert wizard.register(citizen, username=f"rare{n}2026").status_code == 302
        login(wizard.client, f"rare{n}2026", DEFAULT_PASSWORD)
        assert citizen.name in wizard.client.get("/account/").data.decode()
    with app.app_context():
        names = set(db.session.scalars(select(User.name)))
    assert names == {"杨𠮷", "买买提·艾力", "刘䶮"}
    assert any(len(n) == 2 and ord(n[1]) > 0xFFFF for n in names)  # one code point, not a surrogate pair


def test_hong_kong_and_taiwan_residents(app, wizard, citizens):
    assert wizard.register(citizens["hk"], username="hkres2026").status_code == 302
    wizard.client = app.test_client()
    assert wizard.register(citizens["tw"], username="twres2026").status_code == 302
    with app.app_context():
        assert set(db.session.scalars(select(User.id_type))) == {"hk_macao_permit", "hmt_residence_permit"}


# -- SMS in the wizard ---------------------------------------------------------------------------
def test_code_must_be_requested_first(wizard):
    demo = CITIZENS["demo"]
    wizard.through_identity(demo)
    response = wizard.verification(demo, code="123456")
    assert response.status_code == 400
    assert "请先点击“发送短信验证”获取短信验证码" in field_errors(response.data)


def test_wrong_code_then_too_many_tries(app, wizard):
    demo = CITIZENS["demo"]
    wizard.through_identity(demo)
    wizard.send_sms(demo.phone)
    right = wizard.outbox_code(demo.phone)
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(4):
        response = wizard.verification(demo, code=wrong)
        assert "短信验证码错误或已失效" in field_errors(response.data)
        assert page_fields(response.data)["sms_code"] == ""
    response = wizard.verification(demo, code=wrong)
    assert "短信验证码错误次数过多，请重新获取" in field_errors(response.data)
    response = wizard.verification(demo, code=right)  # spent: even the right code fails now
    assert "短信验证码错误或已失效" in field_errors(response.data)
    assert users_count(app) == 0
    assert [e.details["reason"] for e in audit_events(app)][-1] == "sms_code_invalid"


def test_empty_code(wizard):
    demo = CITIZENS["demo"]
    wizard.through_identity(demo)
    wizard.send_sms(demo.phone)
    response = wizard.verification(demo, code="")
    assert "请输入短信验证码" in field_errors(response.data)


def test_code_is_bound_to_the_phone_it_was_sent_to(wizard):
    demo = CITIZENS["demo"]
    wizard.through_identity(demo)
    wizard.send_sms("13900139999")
    code = wizard.outbox_code("13900139999")
    response = wizard.verification(demo, code=code)  # the form now says another phone
    assert "请先点击“发送短信验证”获取短信验证码" in field_errors(response.data)


def test_resend_waits_sixty_seconds(wizard):
    demo = CITIZENS["demo"]
    wizard.through_identity(demo)
    assert wizard.send_sms(demo.phone).status_code == 200
    again = wizard.send_sms(demo.phone)
    assert again.status_code == 429
    assert re.search(r"短信验证码已发送，请(59|60)秒后再重新获取", again.data.decode())


def test_invalid_phone_for_sms(wizard):
    wizard.through_identity()
    response = wizard.send_sms("12345")
    assert response.status_code == 400
    assert "请输入正确的11位手机号码" in field_errors(response.data)


def test_sms_json_endpoint(wizard, client):
    demo = CITIZENS["demo"]
    wizard.through_identity(demo)
    token = page_fields(client.get("/register/verification").data)["csrf_token"]
    response = client.post("/register/sms", data={"phone": demo.phone, "csrf_token": token},
                           headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.get_json() == {"sent": True, "message": "短信验证码已发送至138****8000，5分钟内有效",
                                   "resend_after": 60}
    again = client.post("/register/sms", data={"phone": demo.phone, "csrf_token": token})
    assert again.status_code == 429
    assert again.get_json()["error"] == "SmsResendTooSoon" and again.get_json()["retry_after"] in (59, 60)
    bad = client.post("/register/sms", data={"phone": "1234", "csrf_token": token})
    assert bad.status_code == 400 and bad.get_json()["field"] == "phone"
    # without the CSRF token: refused
    assert client.post("/register/sms", data={"phone": demo.phone}).status_code == 400


def test_sms_json_endpoint_needs_the_earlier_steps(wizard, client):
    wizard.start()
    token = page_fields(client.get("/register/login-info").data)["csrf_token"]
    response = client.post("/register/sms", data={"phone": "13800138000", "csrf_token": token})
    assert response.status_code == 409
    assert response.get_json()["message"] == "请先完成前面的注册步骤"


def test_no_more_codes_once_the_registration_is_done(wizard, client):
    assert wizard.register().status_code == 302
    token = page_fields(client.get("/login").data)["csrf_token"]
    response = client.post("/register/sms", data={"phone": "13900139001", "csrf_token": token})
    assert response.status_code == 400 and response.get_json()["error"] == "flow_expired"
    assert client.get("/dev/sms-outbox.json", query_string={"phone": "13900139001"}).get_json()["messages"] == []


def test_sms_budget_per_flow(app, wizard):
    from limits import parse

    wizard.through_identity()
    budget = parse(app.config["FLOW_SMS_LIMIT"]).amount
    phones = [f"1390013{n:04d}" for n in range(budget + 1)]
    for phone in phones[:-1]:
        assert wizard.send_sms(phone).status_code == 200
    response = wizard.send_sms(phones[-1])
    assert response.status_code == 429
    assert "本次注册获取短信验证码的次数过多，请稍后重新注册" in field_errors(response.data)


def test_bank_check_budget_per_flow(app, wizard):
    demo = CITIZENS["demo"]
    wizard.through_identity(demo)
    wizard.send_sms(demo.phone)
    assert wizard.verification(demo, card_number="6217000000000000004").status_code == 400
    for _ in range(4):
        assert wizard.verification(demo, code="", card_number="6217000000000000004").status_code == 400
    response = wizard.verification(demo, code="")
    assert response.status_code == 429
    assert "银行核验次数过多，请稍后重新注册" in field_errors(response.data)
    assert users_count(app) == 0
    reasons = [e.details["reason"] for e in audit_events(app)]
    assert reasons == ["card_not_found"] * 5 + ["too_many_bank_checks"]


# -- races -----------------------------------------------------------------------------------------
def test_race_on_the_username_loses_cleanly(app, wizard, citizens):
    other = type(wizard)(app.test_client())
    wizard.through_identity(citizens["demo"], username="racer2026")
    other.through_identity(citizens["lina"], username="Racer2026")
    wizard.send_sms(citizens["demo"].phone)
    other.send_sms(citizens["lina"].phone)
    assert wizard.verification(citizens["demo"]).status_code == 302
    response = other.verification(citizens["lina"])
    assert response.status_code == 400
    assert "用户名已被使用" in response.data.decode()
    assert users_count(app) == 1


def test_race_on_the_document_loses_cleanly(app, wizard, citizens):
    """Two browsers register the same person: both pass step 2 (nobody holds the document yet)
    and prove the phone; the second to finish gets 证件已被使用 and nothing is saved for it."""
    demo = citizens["demo"]
    other = type(wizard)(app.test_client())
    wizard.through_identity(demo, username="first2026")
    other.through_identity(demo, username="second2026")
    unknown_card = "6217000000000000004"
    wizard.send_sms(demo.phone)
    assert "所选银行未查询到该银行账号" in wizard.verification(demo, card_number=unknown_card).data.decode()
    with app.app_context():
        redis_store.delete(*redis_store.keys("sms:resend:*"))  # a minute later
    other.send_sms(demo.phone)
    assert "所选银行未查询到该银行账号" in other.verification(demo, card_number=unknown_card).data.decode()
    assert wizard.verification(demo, code="").status_code == 302
    response = other.verification(demo, code="")
    assert response.status_code == 400
    assert "证件已被使用" in field_errors(response.data)
    assert users_count(app) == 1


# -- audit -------------------------------------------------------------------------------------------
def test_audit_has_every_outcome_and_no_personal_data(app, wizard, citizens):
    old = citizens["old_phone"]
    wizard.through_identity(old, username="audited2026")
    wizard.send_sms(OLD_PHONE_NOW, bank_code=old.bank_code, card_number=old.card_number)
    wizard.verification(old, phone=OLD_PHONE_NOW)
    wizard.send_sms(old.phone)
    wizard.verification(old)
    with app.app_context():
        events = list(db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
        dump = repr([(e.event, e.outcome, e.actor, e.subject, e.details) for e in events])
    register = [(e.outcome, e.details.get("reason"), e.details.get("channel")) for e in events if e.event == "register"]
    assert register == [("failure", "phone_mismatch", "web"), ("success", None, "web")]
    assert [e.event for e in events].count("sms.sent") == 2
    for secret in (old.id_number, old.phone, OLD_PHONE_NOW, old.card_number, old.name, old.card_number[-8:]):
        assert secret not in dump


# -- live username check -----------------------------------------------------------------------------
def test_username_check_endpoint(client, make_user):
    make_user(username="Occupied1")
    assert client.get("/register/username-check?username=occupied1").get_json() == {
        "username": "occupied1", "available": False, "reason": "taken", "message": "用户名已被使用"}
    free = client.get("/register/username-check?username=freshname1").get_json()
    assert free["available"] is True and free["message"] == "用户名可以使用"
    bad = client.get("/register/username-check?username=1bad").get_json()
    assert bad["available"] is False and bad["reason"] == "invalid"


def test_username_check_is_rate_limited(keys_dir):
    from ..conftest import clean_external_db, make_app

    app = make_app(keys_dir, USERNAME_CHECK_LIMIT="3 per minute")
    try:
        client = app.test_client()
        for _ in range(3):
            assert client.get("/register/username-check?username=abcd1").status_code == 200
        limited = client.get("/register/username-check?username=abcd1", headers={"Accept": "application/json"})
        assert limited.status_code == 429
        assert limited.get_json()["error_description"] == "操作过于频繁，请稍后再试。"
    finally:
        clean_external_db(app)


def test_sms_sends_are_limited_per_ip_across_both_buttons(keys_dir):
    from ..conftest import clean_external_db, make_app
    from .conftest import Wizard

    app = make_app(keys_dir, SMS_IP_LIMIT="2 per hour")
    try:
        wizard = Wizard(app.test_client())
        wizard.through_identity()
        assert wizard.send_sms("13900130001").status_code == 200  # the form's button
        token = page_fields(wizard.client.get("/register/verification").data)["csrf_token"]
        json_send = wizard.client.post("/register/sms", data={"phone": "13900130002", "csrf_token": token},
                                       headers={"Accept": "application/json"})
        assert json_send.status_code == 200  # the script's endpoint shares the budget
        limited = wizard.client.post("/register/sms", data={"phone": "13900130003", "csrf_token": token},
                                     headers={"Accept": "application/json"})
        assert limited.status_code == 429
        assert wizard.client.post("/register/verification", data={
            "csrf_token": token, "send_sms": "1", "phone": "13900130004"}).status_code == 429
        # submitting the step is not an SMS send and is not limited by it
        assert wizard.verification(code="123456", phone="13900130001").status_code == 400
    finally:
        clean_external_db(app)


# -- the separate consent for the bank card (PIPL Art. 29) -----------------------------------------------
def _bank_calls(app) -> int:
    with app.app_context():
        from idp.services.verification.bank import bank_verifier

        verifier = bank_verifier()
        return verifier.session.get_adapter(verifier.url).app.calls


def test_step_3_asks_for_the_card_consent_unticked_with_the_notice_linked(wizard, client):
    wizard.through_identity()
    html = client.get("/register/verification").data.decode()
    box = re.search(r'<input[^>]*name="consent"[^>]*>', html).group(0)
    assert 'type="checkbox"' in box and "checked" not in box
    assert 'href="/privacy"' in html and "仅用于银行实名核验" in html


def test_without_the_consent_nothing_goes_to_the_bank(app, wizard, client):
    demo = CITIZENS["demo"]
    wizard.through_identity(demo)
    wizard.send_sms(demo.phone, bank_code=demo.bank_code, card_number=demo.card_number, consent=None)
    before = _bank_calls(app)
    response = wizard.verification(demo, consent=None)
    assert response.status_code == 400
    assert "请阅读《个人信息保护告知》并勾选同意后继续" in field_errors(response.data)
    assert _bank_calls(app) == before and users_count(app) == 0
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PrivacyConsent)) == 0
    # the code was not spent on the refusal: ticking the box is all it takes
    response = wizard.verification(demo)
    assert response.status_code == 302, field_errors(response.data)
    assert users_count(app) == 1


def test_the_card_consent_is_recorded_with_the_notice_version_and_held_by_the_account(app, wizard):
    app.config["PRIVACY_NOTICE_VERSION"] = "2026-12-test"
    assert wizard.register().status_code == 302
    with app.app_context():
        user = db.session.scalar(select(User))
        [consent] = db.session.scalars(select(PrivacyConsent)).all()
        assert (consent.user_id, consent.flow_ref) == (user.id, None)
        assert (consent.purpose, consent.notice_version) == ("bank_card_realname", "2026-12-test")
    assert [e.details.get("purpose") for e in audit_events(app, "privacy.consent_given")] == ["bank_card_realname"]
    assert len(audit_events(app, "privacy.consent_claimed")) == 1


# -- the card lookup: a card the bank would refuse is refused before a code is spent ---------------------
def _sandbox(app):
    with app.app_context():
        from idp.services.verification.bank import bank_verifier

        verifier = bank_verifier()
        return verifier.session.get_adapter(verifier.url).app


def _outbox(client, phone: str) -> list:
    return client.get("/dev/sms-outbox.json", query_string={"phone": phone}).get_json()["messages"]


def test_credit_and_inactive_cards_are_refused_at_send_before_an_sms(app, wizard, client, citizens):
    for key, message in (("credit", "该卡不是借记卡"), ("inactive", "该银行卡状态异常")):
        card = citizens[key]
        client.get("/register?restart=1")
        wizard.through_identity(card, username=f"card{key}")
        sent = wizard.send_sms(card.phone, bank_code=card.bank_code, card_number=card.card_number)
        assert sent.status_code == 400
        html = sent.data.decode()
        assert any(message in e for e in field_errors(html))
        assert "短信验证码已发送" not in html  # red and green never together
        assert _outbox(client, card.phone) == []
    assert _sandbox(app).calls == 0 and _sandbox(app).lookups == 2


def test_a_debit_card_passes_the_lookup_and_the_code_is_sent(app, wizard, client, citizens):
    demo = citizens["demo"]
    wizard.through_identity(demo)
    sent = wizard.send_sms(demo.phone, bank_code=demo.bank_code, card_number=demo.card_number)
    assert sent.status_code == 200 and "短信验证码已发送" in sent.data.decode()
    assert not field_errors(sent.data)
    assert _sandbox(app).lookups == 1 and len(_outbox(client, demo.phone)) == 1


def test_without_the_consent_the_card_is_not_looked_up(app, wizard, client, citizens):
    credit = citizens["credit"]
    wizard.through_identity(credit)
    sent = wizard.send_sms(credit.phone, bank_code=credit.bank_code, card_number=credit.card_number, consent=None)
    assert sent.status_code == 200
    assert _sandbox(app).lookups == 0


def test_the_json_send_button_refuses_a_credit_card_too(app, wizard, client, citizens):
    credit = citizens["credit"]
    wizard.through_identity(credit)
    token = page_fields(client.get("/register/verification").data)["csrf_token"]
    answer = client.post("/register/sms", data={"phone": credit.phone, "bank_code": credit.bank_code,
                                               "card_number": credit.card_number, "consent": "y",
                                               "csrf_token": token})
    assert answer.status_code == 400 and "该卡不是借记卡" in answer.get_json()["message"]
    assert _outbox(client, credit.phone) == []


def test_the_card_lookup_is_signed_like_a_verification(app):
    from idp.services.verification.bank import CARD_LOOKUP_PATH, CardKind, bank_verifier

    with app.app_context():
        verifier = bank_verifier()
        assert verifier.lookup_card("CCB", CITIZENS["demo"].card_number) is CardKind.DEBIT
        assert verifier.lookup_card("ICBC", CITIZENS["demo"].card_number) is CardKind.UNKNOWN
        unsigned = verifier.session.post(verifier.lookup_url, json={"request_id": "x", "bank": "CCB",
                                                                    "card_number": "1"})
        assert unsigned.status_code == 401 and verifier.lookup_path == CARD_LOOKUP_PATH
