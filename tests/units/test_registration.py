"""单位用户注册 over HTTP: the steps, each registry outcome, the handler's bank check and SMS,
the account as stored (code in clear, handler's data encrypted), the audit."""

from __future__ import annotations

import json

from sqlalchemy import select

from idp.extensions import db
from idp.models import AuditEvent, User
from idp.services.identity import pii

from ..register.conftest import CITIZENS, field_errors
from .conftest import unit


def _unit_user(app, username="unit2026"):
    with app.app_context():
        return db.session.scalar(select(User).filter_by(username=username))


def test_the_personal_first_page_offers_both_registrations(client):
    page = client.get("/register", follow_redirects=True).data.decode()
    assert "个人用户注册" in page and 'href="/register/unit"' in page and "单位用户注册" in page
    assert client.get("/register").headers["Location"] == "/register/login-info"  # the exam service's link


def test_step_bar_of_the_unit_wizard(unit_wizard, client):
    unit_wizard.start()
    page = client.get("/register/unit/login-info").data.decode()
    for title in ("填写<wbr>登录信息", "填写<wbr>单位信息", "填写<wbr>经办人信息", "注册成功"):
        assert title in page
    assert '<h1>单位用户注册</h1>' in page and 'action="/register/unit/login-info"' in page


def test_steps_cannot_be_skipped(unit_wizard, client):
    unit_wizard.start()
    assert client.get("/register/unit/handler").headers["Location"] == "/register/unit/login-info"
    assert unit_wizard.login_info().status_code == 302
    assert client.get("/register/unit/handler").headers["Location"] == "/register/unit/unit-info"


def test_a_unit_registers_and_its_handler_data_is_encrypted(app, unit_wizard):
    u, handler = unit(demo=True), CITIZENS["lina"]
    done = unit_wizard.register(u, handler)
    assert done.status_code == 302 and done.headers["Location"] == "/register/unit/done", field_errors(done.data)
    page = unit_wizard.client.get("/register/unit/done").data.decode()
    assert "注册成功" in page and "unit2026" in page and "单位用户登录" in page
    user = _unit_user(app)
    assert (user.user_type, user.unit_name, user.uscc, user.unit_type, user.legal_rep_name) == (
        "unit", u.unit_name, u.uscc, u.unit_type, u.legal_rep_name)
    assert user.name == handler.name and user.id_number_hash is None and user.id_type is None
    with app.app_context():
        box = pii.cipher()
        assert box.decrypt("id_number", user.handler_id_number_enc) == handler.id_number
        assert user.handler_id_number_hash == box.lookup_hash("id_number", handler.id_number)
        assert box.decrypt("phone", user.phone_enc) == handler.phone and user.phone_verified
        assert handler.id_number.encode() not in user.handler_id_number_enc
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.event.in_(("register", "registry.check")))
                                    .order_by(AuditEvent.id)).all()
        assert [(e.event, e.outcome) for e in events][-2:] != []
        assert ("registry.check", "success") in [(e.event, e.outcome) for e in events]
        success = [e for e in events if e.event == "register" and e.outcome == "success"]
        assert success and success[-1].details["user_type"] == "unit"
        stored = json.dumps([e.details for e in events], ensure_ascii=False)
        for secret in (handler.id_number, handler.phone, handler.name, u.legal_rep_name):
            assert secret not in stored


def test_a_handler_with_a_personal_account_may_act_for_a_unit(app, unit_wizard, make_user):
    handler = CITIZENS["lina"]
    make_user(username="lina_self", name=handler.name, id_type=handler.id_type, id_number=handler.id_number)
    done = unit_wizard.register(unit(demo=True), handler)
    assert done.headers.get("Location") == "/register/unit/done", field_errors(done.data)


def test_unit_name_or_code_mismatch(unit_wizard):
    unit_wizard.start()
    unit_wizard.login_info()
    other = next(u for u in [unit(status="active", unit_type="institution")])
    response = unit_wizard.unit_info(unit(demo=True), unit_name=other.unit_name)
    assert response.status_code == 400
    assert "单位名称或统一社会信用代码与登记信息不一致" in response.data.decode()


def test_representative_mismatch(unit_wizard):
    unit_wizard.start()
    unit_wizard.login_info()
    response = unit_wizard.unit_info(legal_rep_name="张三")
    assert response.status_code == 400
    assert "法定代表人（负责人）姓名与登记信息不一致" in field_errors(response.data)


def test_deregistered_or_revoked_unit(unit_wizard):
    unit_wizard.start()
    unit_wizard.login_info()
    for status in ("deregistered", "revoked"):
        response = unit_wizard.unit_info(unit(status=status))
        assert response.status_code == 400
        assert "该单位登记状态为注销或吊销，不能注册" in response.data.decode()


def test_registry_unavailable_saves_nothing_and_costs_no_budget(app, unit_wizard):
    from ..live import free_port

    app.config["REGISTRY_URL"] = f"http://127.0.0.1:{free_port()}"
    app.extensions.pop("idp_registry", None)
    unit_wizard.start()
    unit_wizard.login_info()
    response = unit_wizard.unit_info()
    assert response.status_code == 503
    assert "单位登记信息核验服务暂不可用，请稍后再试" in response.data.decode()
    assert unit_wizard.client.get("/register/unit/handler").headers["Location"] == "/register/unit/unit-info"
    assert _unit_user(app) is None


def test_code_check_character_and_type_are_checked_before_the_registry(unit_wizard):
    unit_wizard.start()
    unit_wizard.login_info()
    good = unit(demo=True).uscc
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    response = unit_wizard.unit_info(uscc=bad)
    assert "统一社会信用代码格式不正确" in response.data.decode()
    response = unit_wizard.unit_info(unit_type="")
    assert "请选择单位类型" in response.data.decode()
    page = unit_wizard.client.get("/register/unit/unit-info").data.decode()
    for label in ("企业", "机关", "事业单位", "社会团体", "民办非企业单位", "个体工商户", "其他", "统一社会信用代码",
                  "法定代表人（负责人）姓名"):
        assert label in page


def test_a_registered_code_is_taken_with_the_pointer_to_forgotten_username(app, unit_wizard, client):
    assert unit_wizard.register().headers["Location"] == "/register/unit/done"
    client.get("/logout")
    unit_wizard.client.get("/register/unit?restart=1")
    unit_wizard.login_info(username="unit2027")
    response = unit_wizard.unit_info(uscc=unit(demo=True).uscc.lower())
    page = response.data.decode()
    assert response.status_code == 400 and "证件已被使用" in page and "忘记用户名" in page


def test_handler_bank_refusal_creates_nothing(app, unit_wizard):
    unit_wizard.through_unit()
    lina = CITIZENS["lina"]
    response = unit_wizard.handler(lina, name="王晓明")
    assert response.status_code == 400
    assert "人员姓名或证件类型或证件号与银行登记不匹配" in response.data.decode()
    assert _unit_user(app) is None


def test_handler_needs_the_sms_code(app, unit_wizard):
    unit_wizard.through_unit()
    response = unit_wizard.handler(CITIZENS["lina"], code="000000")
    assert response.status_code == 400 and _unit_user(app) is None
