"""A unit account's 变更用户信息 over HTTP: 变更经办人 (the new handler checked at the bank, then an
SMS code to the new phone; the handler's phone becomes the account's) and 变更单位名称 (re-verified
at the enterprise registry: each of its answers, an outage saves nothing)."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

from idp.extensions import db
from idp.models import AuditEvent, User
from idp.sandbox.registry import RegistrySandbox
from idp.sandbox.transport import WSGITransport
from idp.services.identity import pii

from ..conftest import DEFAULT_PASSWORD
from ..helpers import CAPTCHA, submit_form
from ..recovery.conftest import field_errors, outbox, outbox_code, page_fields
from ..register.conftest import CITIZENS
from .conftest import UNITS, make_unit_account, unit

DEMO_UNIT = unit(demo=True)
HANDLER = CITIZENS["lina"]
NEW_HANDLER = CITIZENS["chenjing"]
NEW_NAME = "深圳市鹏城示例智能科技有限公司"


@pytest.fixture
def unit_client(app, client):
    user = make_unit_account(app)
    response = submit_form(client, "/login?type=unit",
                           {"username": "unit_demo", "password": DEFAULT_PASSWORD, "captcha": CAPTCHA})
    assert response.status_code == 302, response.data.decode()[:300]
    client.user = user
    return client


def registry_holds(app, **changes_by_code):
    """The sandbox registry from now on holds the units with these changes (by code)."""
    units = [dataclasses.replace(u, **changes_by_code.get(u.uscc, {})) for u in UNITS]
    secret = app.config["REGISTRY_SECRET"]
    app.extensions["idp_registry_transport"] = lambda: WSGITransport(RegistrySandbox(units, secret))
    app.extensions.pop("idp_registry", None)


def stored(app) -> User:
    with app.app_context():
        user = db.session.scalar(select(User).filter_by(username="unit_demo"))
        db.session.expunge(user)
        return user


def events(app, name: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.event == name).order_by(AuditEvent.id)))


def post(client, url: str, **data):
    page = client.get(url)
    assert page.status_code == 200, (url, page.status_code, page.headers.get("Location"))
    fields = page_fields(page.data)
    fields.update(data)
    if "send_sms" not in data:
        fields["submit"] = "1"
    return client.post(url, data=fields)


def handler_form(c, **overrides):
    data = dict(name=c.name, id_type=c.id_type, id_number=c.id_number, bank_code=c.bank_code,
                card_number=c.card_number, phone=c.phone)
    data.update(overrides)
    return data


# -- the page ------------------------------------------------------------------------------------------
def test_a_unit_sees_its_unit_and_handler_masked(unit_client):
    html = unit_client.get("/account/edit").data.decode()
    assert DEMO_UNIT.unit_name in html and DEMO_UNIT.uscc in html and DEMO_UNIT.legal_rep_name in html
    assert "变更经办人" in html and "变更单位名称" in html
    assert HANDLER.name in html
    assert HANDLER.id_number not in html and HANDLER.phone not in html and HANDLER.card_number not in html
    assert pii.mask_phone(HANDLER.phone) in html and pii.mask_id_number(HANDLER.id_number) in html


def test_a_personal_account_has_no_unit_pages(logged_in):
    assert logged_in.get("/account/edit/handler").status_code == 404
    assert logged_in.get("/account/edit/unit").status_code == 404
    assert "变更单位名称" not in logged_in.get("/account/edit").data.decode()


# -- 变更经办人 ---------------------------------------------------------------------------------------
def test_handler_change_refused_by_the_bank_changes_nothing(app, unit_client):
    before = stored(app)
    response = post(unit_client, "/account/edit/handler", **handler_form(NEW_HANDLER, name="陈晶"))
    assert response.status_code == 400
    html = response.data.decode()
    assert "人员姓名或证件类型或证件号与银行登记不匹配" in html
    assert page_fields(response.data)["id_number"] == NEW_HANDLER.id_number  # the form keeps the input
    assert unit_client.get("/account/edit/handler/sms").headers["Location"] == "/account/edit/handler"
    after = stored(app)
    assert (after.name, after.phone_hash, after.handler_id_number_hash) == (
        before.name, before.phone_hash, before.handler_id_number_hash)
    assert outbox(unit_client, NEW_HANDLER.phone) == []
    [failure] = events(app, "unit.handler_change")
    assert (failure.outcome, failure.details["reason"]) == ("failure", "identity_mismatch")
    assert NEW_HANDLER.id_number not in str(failure.details)


def test_handler_change_success_updates_handler_and_phone(app, unit_client):
    before = stored(app)
    response = post(unit_client, "/account/edit/handler", **handler_form(NEW_HANDLER))
    assert response.status_code == 302 and response.headers["Location"] == "/account/edit/handler/sms", \
        field_errors(response.data)
    assert stored(app).handler_id_number_hash == before.handler_id_number_hash  # nothing yet
    page = unit_client.get("/account/edit/handler/sms").data.decode()
    assert pii.mask_phone(NEW_HANDLER.phone) in page
    # without a code, or with a wrong one, nothing is written
    early = post(unit_client, "/account/edit/handler/sms", sms_code="123456")
    assert early.status_code == 400 and "请先点击“发送短信验证”获取短信验证码" in early.data.decode()
    assert post(unit_client, "/account/edit/handler/sms", send_sms="1").status_code == 200
    code = outbox_code(unit_client, NEW_HANDLER.phone)
    bad = post(unit_client, "/account/edit/handler/sms", sms_code="000000" if code != "000000" else "111111")
    assert bad.status_code == 400 and "短信验证码错误或已失效" in bad.data.decode()
    assert stored(app).phone_hash == before.phone_hash
    done = post(unit_client, "/account/edit/handler/sms", sms_code=code)
    assert done.headers["Location"] == "/account/edit"
    after = stored(app)
    assert after.name == NEW_HANDLER.name
    with app.app_context():
        box = pii.cipher()
        assert after.handler_id_number_hash == box.lookup_hash("id_number", NEW_HANDLER.id_number)
        assert box.decrypt("id_number", after.handler_id_number_enc) == NEW_HANDLER.id_number
        assert after.phone_hash == box.lookup_hash("phone", NEW_HANDLER.phone)
    assert after.card_last4 == NEW_HANDLER.card_number[-4:] and after.bank_code == NEW_HANDLER.bank_code
    assert (after.unit_name, after.uscc) == (DEMO_UNIT.unit_name, DEMO_UNIT.uscc)
    assert after.id_number_hash is None  # the handler's document stays apart from a citizen's
    html = unit_client.get("/account/edit").data.decode()
    assert "经办人信息变更成功" in html and NEW_HANDLER.name in html and pii.mask_phone(NEW_HANDLER.phone) in html
    [changed] = events(app, "unit.handler_changed")
    assert changed.subject == after.sub and set(changed.details["fields"]) >= {"handler", "phone"}
    assert NEW_HANDLER.phone not in str(changed.details)
    # the new handler's phone is the account's: 忘记用户名 now sends there
    recovering = app.test_client()
    submit_form(recovering, "/recovery/username?type=unit",
                {"user_type": "unit", "unit_name": DEMO_UNIT.unit_name, "unit_id_type": "uscc",
                 "uscc": DEMO_UNIT.uscc, "captcha": CAPTCHA, "submit": "1"})
    assert post(recovering, "/recovery/username/sms", send_sms="1").status_code == 200
    assert "找回账号" in outbox(recovering, NEW_HANDLER.phone)[0]["text"]


def test_handler_change_needs_every_field_and_a_change(app, unit_client):
    response = post(unit_client, "/account/edit/handler", **handler_form(NEW_HANDLER, card_number=""))
    assert response.status_code == 400 and "请输入银行账号" in field_errors(response.data)
    response = post(unit_client, "/account/edit/handler", **handler_form(HANDLER))
    assert response.status_code == 400 and "您没有修改任何信息" in response.data.decode()
    assert events(app, "unit.handler_change") == []  # no bank check was spent


# -- 变更单位名称 -------------------------------------------------------------------------------------
def test_unit_name_mismatch_with_the_registry(app, unit_client):
    response = post(unit_client, "/account/edit/unit", unit_name=NEW_NAME)  # the registry still has the old one
    assert response.status_code == 400
    assert "单位名称或统一社会信用代码与登记信息不一致" in response.data.decode()
    assert page_fields(response.data)["unit_name"] == NEW_NAME
    assert stored(app).unit_name == DEMO_UNIT.unit_name
    [failure] = events(app, "unit.name_change")
    assert (failure.outcome, failure.details["reason"]) == ("failure", "unit_mismatch")
    registry_holds(app, **{DEMO_UNIT.uscc: {"unit_name": NEW_NAME}})
    response = post(unit_client, "/account/edit/unit", unit_name=NEW_NAME, legal_rep_name="林晓风")
    assert "法定代表人（负责人）姓名与登记信息不一致" in response.data.decode()
    assert stored(app).unit_name == DEMO_UNIT.unit_name


@pytest.mark.parametrize("status", ["deregistered", "revoked"])
def test_a_deregistered_or_revoked_unit_cannot_change(app, unit_client, status):
    registry_holds(app, **{DEMO_UNIT.uscc: {"unit_name": NEW_NAME, "status": status}})
    response = post(unit_client, "/account/edit/unit", unit_name=NEW_NAME)
    assert response.status_code == 400
    assert "该单位登记状态为注销或吊销，不能变更单位信息" in response.data.decode()
    assert stored(app).unit_name == DEMO_UNIT.unit_name
    assert [e.details["reason"] for e in events(app, "unit.name_change")] == ["deregistered"]


def test_registry_down_says_try_later_and_saves_nothing(app, unit_client):
    from ..live import free_port

    app.config["REGISTRY_URL"] = f"http://127.0.0.1:{free_port()}"
    app.extensions.pop("idp_registry", None)
    response = post(unit_client, "/account/edit/unit", unit_name=NEW_NAME)
    assert response.status_code == 503
    assert "单位登记信息核验服务暂不可用，请稍后再试" in response.data.decode()
    assert stored(app).unit_name == DEMO_UNIT.unit_name
    assert [(e.outcome, e.details["reason"]) for e in events(app, "unit.name_change")] == [
        ("error", "registry_unavailable")]
    assert events(app, "unit.name_changed") == []


def test_unit_name_changed_after_the_registry_changed_it(app, unit_client):
    unchanged = post(unit_client, "/account/edit/unit")
    assert unchanged.status_code == 400
    assert "单位名称和法定代表人（负责人）姓名与现有信息一致，无需变更" in unchanged.data.decode()
    registry_holds(app, **{DEMO_UNIT.uscc: {"unit_name": NEW_NAME}})
    response = post(unit_client, "/account/edit/unit", unit_name=f" {NEW_NAME} ")
    assert response.status_code == 302 and response.headers["Location"] == "/account/edit", field_errors(response.data)
    after = stored(app)
    assert (after.unit_name, after.uscc, after.legal_rep_name) == (NEW_NAME, DEMO_UNIT.uscc, DEMO_UNIT.legal_rep_name)
    html = unit_client.get("/account/edit").data.decode()
    assert "单位名称变更成功" in html and NEW_NAME in html
    [changed] = events(app, "unit.name_changed")
    assert changed.subject == after.sub and changed.details["fields"] == ["unit_name"]
    assert [e.outcome for e in events(app, "registry.check")] == ["success"]
    # 忘记用户名 now knows the unit by its new name only
    assert stored(app).unit_name == NEW_NAME
