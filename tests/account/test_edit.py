"""变更用户信息 over HTTP: 姓名, 银行, 银行账号, 手机号码 change only through the bank check
(registration's messages); a new phone also needs an SMS code to it; 用户名, 证件类型, 证件号码 never
change; nothing is written unless every check passes."""

from __future__ import annotations

import re

import pytest

from idp.extensions import db, redis_store
from idp.models import User
from idp.services.accounts import profile_change
from idp.services.identity import pii

from ..conftest import DEFAULT_PASSWORD
from ..helpers import login
from ..recovery.conftest import app_with_bank_down  # noqa: F401  (fixture)
from ..recovery.conftest import (
    CITIZENS,
    STOPPED_PHONE,
    audit_events,
    expire_sms_codes,
    field_errors,
    make_citizen_account,
    outbox,
    outbox_code,
    page_fields,
    wrong,
)

DEMO = CITIZENS["demo"]
IDENTITY_MISMATCH = "人员姓名或证件类型或证件号与银行登记不匹配"
PHONE_MISMATCH = "手机号与银行预留手机号不一致，请更换银行卡验证或去对应银行网点修改预留手机号"
UNAVAILABLE = "银行核验服务暂不可用，请稍后再试"
OLD_CARD = "6222020200112233445"  # an ICBC card number on file that the bank does not know (any more)


def edit(client, button: str = "submit", **data):
    page = client.get("/account/edit")
    assert page.status_code == 200, page.headers.get("Location")
    fields = page_fields(page.data)
    fields.update(data)
    fields[button] = "1"
    return client.post("/account/edit", data=fields)


def sms_step(client, button: str = "submit", **data):
    page = client.get("/account/edit/sms")
    assert page.status_code == 200, page.headers.get("Location")
    fields = page_fields(page.data)
    fields.update(data)
    fields[button] = "1"
    return client.post("/account/edit/sms", data=fields)


def snapshot(app, user_id: int) -> dict:
    with app.app_context():
        user = db.session.get(User, user_id)
        box = pii.cipher()
        return {"name": user.name, "bank": user.bank_code, "card": box.decrypt("card", user.card_enc),
                "phone": box.decrypt("phone", user.phone_enc), "phone_hash": user.phone_hash,
                "id_number": box.decrypt("id_number", user.id_number_enc), "username": user.username}


def signed_in(app, client, user):
    assert login(client, user.username, DEFAULT_PASSWORD).status_code == 302
    return client


@pytest.fixture
def demo_on_old_phone(app, client):
    """王小明 signed in; his account still has the phone he registered with, his bank the new one."""
    user = make_citizen_account(app, DEMO, "wangxm", phone=STOPPED_PHONE)
    return signed_in(app, client, user), user


def test_needs_login(client):
    assert client.get("/account/edit").headers["Location"] == "/login"
    assert client.get("/account/edit/sms").headers["Location"] == "/login"


def test_the_page_offers_only_what_may_change(app, client):
    user = make_citizen_account(app, DEMO, "wangxm")
    signed_in(app, client, user)
    home = client.get("/account/").data.decode()
    assert '<a class="button primary" href="/account/edit">修改</a>' in home
    assert '<a href="/account/edit">修改</a>' in home  # the menu's 用户信息 group
    page = client.get("/account/edit").data.decode()
    assert "变更用户信息" in page
    for label, name in (("姓名", "name"), ("银行", "bank_code"), ("银行账号", "card_number"), ("手机号码", "phone")):
        assert f'<label for="{name}">{label}</label>' in page
    # 用户名, 证件类型, 证件号码 are shown (masked), never inputs
    assert "<dt>用户名</dt><dd>wangxm</dd>" in page and "<dt>证件类型</dt><dd>居民身份证</dd>" in page
    assert "<dt>证件号码</dt><dd>440***********2136</dd>" in page
    assert not re.search(r'name="(username|id_type|id_number)"', page)
    assert DEMO.id_number not in page and DEMO.card_number not in page and DEMO.phone not in page
    assert "不修改请留空（当前：**** **** **** 2011）" in page and "不修改请留空（当前：138****8000）" in page
    fields = page_fields(page)
    assert (fields["name"], fields["bank_code"], fields["card_number"], fields["phone"]) == (DEMO.name, "CCB", "", "")


def test_change_name_after_the_bank_agrees(app, client):
    user = make_citizen_account(app, DEMO, "wangxm", name="王晓明")  # the bank knows him as 王小明
    signed_in(app, client, user)
    response = edit(client, name="王小明")
    assert response.status_code == 302 and response.headers["Location"] == "/account/"
    home = client.get("/account/").data.decode()
    assert "用户信息修改成功" in home and "<dt>姓名</dt><dd>王小明</dd>" in home
    assert snapshot(app, user.id)["name"] == "王小明"
    [event] = audit_events(app, "profile.changed")
    assert event.details == {"fields": ["name"]} and event.subject == user.sub


def test_a_name_the_bank_does_not_know_changes_nothing(app, client):
    user = make_citizen_account(app, DEMO, "wangxm")
    signed_in(app, client, user)
    before = snapshot(app, user.id)
    response = edit(client, name="王大明")
    assert response.status_code == 400
    assert IDENTITY_MISMATCH in field_errors(response.data)
    assert "请检查填写的姓名是否与银行登记的一致" in response.data.decode()  # the hint under it
    assert page_fields(response.data)["name"] == "王大明"  # what was typed stays
    assert snapshot(app, user.id) == before
    [event] = audit_events(app, "profile.change")
    assert (event.outcome, event.details) == ("failure", {"reason": "identity_mismatch", "fields": ["name"]})


def test_change_bank_and_card(app, client):
    user = make_citizen_account(app, DEMO, "wangxm", bank_code="ICBC", card_number=OLD_CARD)
    signed_in(app, client, user)
    assert "更换银行时，请填写该银行的银行账号" in field_errors(edit(client, bank_code="CCB").data)
    response = edit(client, bank_code="CCB", card_number=DEMO.card_number)
    assert response.headers["Location"] == "/account/"
    home = client.get("/account/").data.decode()
    assert "<dt>银行</dt><dd>建设银行</dd>" in home and "**** **** **** 2011" in home
    after = snapshot(app, user.id)
    assert (after["bank"], after["card"]) == ("CCB", DEMO.card_number)
    assert audit_events(app, "profile.changed")[0].details == {"fields": ["bank", "card"]}


def test_card_outcomes_use_registration_messages(app, client):
    chenjing = CITIZENS["chenjing"]
    user = make_citizen_account(app, chenjing, "chenjing")
    signed_in(app, client, user)
    before = snapshot(app, user.id)
    credit = edit(client, card_number=CITIZENS["credit"].card_number)
    assert "该卡不是借记卡，不能用于实名认证，请使用所列银行的借记卡或深圳金融社保卡" in field_errors(credit.data)
    unknown = edit(client, card_number="6214830567340678858")
    assert "所选银行未查询到该银行账号，请核对银行和银行账号，或使用所列银行的借记卡或深圳金融社保卡" in field_errors(unknown.data)
    checksum = edit(client, card_number="6214830567340678842")
    assert "银行账号校验位不正确，请核对银行账号" in field_errors(checksum.data)
    assert "请选择银行" in field_errors(edit(client, bank_code="").data)
    assert "请输入正确的11位手机号码" in field_errors(edit(client, phone="1380013").data)
    assert snapshot(app, user.id) == before


def test_nothing_changed(app, client):
    user = make_citizen_account(app, DEMO, "wangxm")
    signed_in(app, client, user)
    response = edit(client, card_number=DEMO.card_number, phone=DEMO.phone)
    assert "您没有修改任何信息" in field_errors(response.data)
    assert audit_events(app, "profile.change") == []  # the bank was not asked


def test_change_phone_needs_the_bank_and_a_code_to_the_new_phone(app, demo_on_old_phone):
    client, user = demo_on_old_phone
    before = snapshot(app, user.id)
    response = edit(client, phone=DEMO.phone)
    assert response.status_code == 302 and response.headers["Location"] == "/account/edit/sms"
    assert snapshot(app, user.id) == before  # bank-verified, but not written before the SMS code

    page = client.get("/account/edit/sms").data.decode()
    assert "短信验证码将发送至新手机号码138****8000" in page and "发送短信验证" in page
    assert '<a class="button" href="/account/edit">上一步</a>' in page
    assert "请先点击“发送短信验证”获取短信验证码" in field_errors(sms_step(client, sms_code="123456").data)
    sent = sms_step(client, "send_sms")
    assert "短信验证码已发送至138****8000，5分钟内有效" in sent.data.decode()
    assert outbox(client, DEMO.phone)[0]["purpose"] == "profile"
    assert outbox(client, STOPPED_PHONE) == []
    again = sms_step(client, "send_sms")
    assert again.status_code == 429 and re.search(r"请(59|60)秒后再重新获取", again.data.decode())

    code = outbox_code(client, DEMO.phone)
    assert "请输入短信验证码" in field_errors(sms_step(client, sms_code="").data)
    assert "短信验证码错误或已失效" in field_errors(sms_step(client, sms_code=wrong(code)).data)
    assert snapshot(app, user.id) == before

    done = sms_step(client, sms_code=code)
    assert done.status_code == 302 and done.headers["Location"] == "/account/"
    home = client.get("/account/").data.decode()
    assert "用户信息修改成功" in home and "<dt>手机号码</dt><dd>138****8000</dd>" in home
    after = snapshot(app, user.id)
    assert after["phone"] == DEMO.phone
    with app.app_context():
        assert after["phone_hash"] == pii.cipher().lookup_hash("phone", DEMO.phone)
    assert (after["username"], after["id_number"]) == ("wangxm", DEMO.id_number)
    assert audit_events(app, "profile.changed")[0].details == {"fields": ["phone"]}
    assert client.get("/account/edit/sms").headers["Location"] == "/account/edit"  # the flow is over


def test_phone_code_expired_and_exhausted(app, demo_on_old_phone):
    client, user = demo_on_old_phone
    before = snapshot(app, user.id)
    edit(client, phone=DEMO.phone)
    sms_step(client, "send_sms")
    code = outbox_code(client, DEMO.phone)
    for _ in range(4):
        sms_step(client, sms_code=wrong(code))
    assert "短信验证码错误次数过多，请重新获取" in field_errors(sms_step(client, sms_code=wrong(code)).data)
    with app.app_context():
        redis_store.delete(*redis_store.keys("sms:resend:*"))
    sms_step(client, "send_sms")
    code = outbox_code(client, DEMO.phone)
    expire_sms_codes(app, "profile")
    assert "短信验证码已失效，请重新获取" in field_errors(sms_step(client, sms_code=code).data)
    assert snapshot(app, user.id) == before


def test_a_new_phone_the_bank_does_not_hold_is_refused_before_any_sms(app, demo_on_old_phone):
    client, user = demo_on_old_phone
    before = snapshot(app, user.id)
    response = edit(client, phone="13800138099")
    assert PHONE_MISMATCH in field_errors(response.data)
    assert page_fields(response.data)["phone"] == "13800138099"
    assert outbox(client, "13800138099") == []
    assert client.get("/account/edit/sms").headers["Location"] == "/account/edit"
    assert snapshot(app, user.id) == before


def test_back_from_the_sms_step_keeps_the_new_values(app, demo_on_old_phone):
    client, _ = demo_on_old_phone
    edit(client, phone=DEMO.phone)
    fields = page_fields(client.get("/account/edit").data)
    assert fields["phone"] == DEMO.phone


def test_bank_down_changes_nothing(app_with_bank_down):
    app = app_with_bank_down
    client = app.test_client()
    user = make_citizen_account(app, DEMO, "wangxm", name="王晓明")
    signed_in(app, client, user)
    before = snapshot(app, user.id)
    response = edit(client, name="王小明")
    assert response.status_code == 503
    assert UNAVAILABLE in field_errors(response.data)
    assert page_fields(response.data)["name"] == "王小明"
    assert snapshot(app, user.id) == before
    [event] = audit_events(app, "profile.change")
    assert (event.outcome, event.details["reason"]) == ("error", "bank_unavailable")


def test_bank_checks_are_limited_per_day(app, client):
    user = make_citizen_account(app, DEMO, "wangxm")
    signed_in(app, client, user)
    with app.app_context():
        per_day = profile_change.BANK_CHECKS.amount
    for _ in range(per_day):
        assert IDENTITY_MISMATCH in field_errors(edit(client, name="王大明").data)
    limited = edit(client, name="王大明")
    assert limited.status_code == 429 and "今日银行核验次数过多，请明天再试" in field_errors(limited.data)


def test_another_account_never_sees_a_pending_change(app, client):
    first = make_citizen_account(app, DEMO, "wangxm", phone=STOPPED_PHONE)
    signed_in(app, client, first)
    edit(client, phone=DEMO.phone)
    other = make_citizen_account(app, CITIZENS["lina"], "lina2026")
    signed_in(app, client, other)  # a login rotates the session
    assert client.get("/account/edit/sms").headers["Location"] == "/account/edit"
    assert page_fields(client.get("/account/edit").data)["name"] == CITIZENS["lina"].name


def test_a_pending_change_belongs_to_the_account_that_started_it(app):
    # the session-level check behind the test above: a login rotates the session anyway, so this
    # drives flow_of directly with a flow that names another account
    from idp.flows.profile_change import PROFILE_CHANGE, flow_of

    first = make_citizen_account(app, DEMO, "wangxm", phone=STOPPED_PHONE)
    other = make_citizen_account(app, CITIZENS["lina"], "lina2026")
    with app.test_request_context("/account/edit"):
        started = PROFILE_CHANGE.start()
        started.state.user_id = first.id
        started.save()
        assert flow_of(other) is None
        assert PROFILE_CHANGE.load() is None  # discarded, not just hidden
        again = PROFILE_CHANGE.start()
        again.state.user_id = first.id
        again.save()
        assert flow_of(first).id == again.id


# -- the card lookup: a new card the bank would refuse is refused without a four-element check ---------
def _sandbox(app):
    with app.app_context():
        from idp.services.verification.bank import bank_verifier

        verifier = bank_verifier()
        return verifier.session.get_adapter(verifier.url).app


def _bank_checks_used(app, user) -> int:
    with app.app_context():
        return profile_change.BANK_CHECKS.used(user.id)


def test_a_credit_or_inactive_new_card_is_refused_by_the_lookup(app, client):
    chenjing = CITIZENS["chenjing"]
    user = make_citizen_account(app, chenjing, "chenjing")
    signed_in(app, client, user)
    before = snapshot(app, user.id)
    for key, message in (("credit", "该卡不是借记卡"), ("inactive", "该银行卡状态异常")):
        card = CITIZENS[key]
        refused = edit(client, bank_code=card.bank_code, card_number=card.card_number)
        assert refused.status_code == 400 and any(message in e for e in field_errors(refused.data))
    assert _sandbox(app).lookups == 2 and _sandbox(app).calls == 0  # no four-element check was spent
    assert _bank_checks_used(app, user) == 2  # a refused lookup is paid as a check: no free probing
    assert [e.details["reason"] for e in audit_events(app, "profile.change")] == ["card_not_debit", "card_inactive"]
    assert snapshot(app, user.id) == before


def test_a_debit_new_card_passes_the_lookup_and_pays_one_check(app, client):
    user = make_citizen_account(app, DEMO, "wangxm", bank_code="ICBC", card_number=OLD_CARD)
    signed_in(app, client, user)
    assert edit(client, bank_code="CCB", card_number=DEMO.card_number).headers["Location"] == "/account/"
    assert _sandbox(app).lookups == 1 and _sandbox(app).calls == 1
    assert _bank_checks_used(app, user) == 1


def test_an_unchanged_card_is_not_looked_up(app, client):
    user = make_citizen_account(app, DEMO, "wangxm", name="王晓明")
    signed_in(app, client, user)
    assert edit(client, name="王小明").headers["Location"] == "/account/"
    assert _sandbox(app).lookups == 0 and _sandbox(app).calls == 1
