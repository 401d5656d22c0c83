"""个人信息与隐私: what the platform holds (masked), who received which claims and when, and
下载我的数据 after re-authentication."""

from __future__ import annotations

import json

from sqlalchemy import select

from idp.extensions import db
from idp.models import AuditEvent

from ..conftest import DEFAULT_PASSWORD
from ..helpers import CAPTCHA, form_fields
from .conftest import CodeFlow

ID_NUMBER = "440303198512124562"  # the first account of make_user
CARD = "6222020200112233445"


def test_the_page_shows_every_field_masked_and_which_systems_received_what(app, logged_in, user, rp):
    CodeFlow(logged_in, rp).tokens(scope="openid profile phone")
    html = logged_in.get("/account/privacy").data.decode()
    for label in ("用户名", "姓名", "证件类型", "证件号码", "性别", "出生日期", "银行", "银行账号", "手机号码",
                  "实名认证", "登录密码", "密保问题"):
        assert f"<dt>{label}" in html, label
    assert ID_NUMBER not in html and CARD not in html and user.sub not in html  # no technical identifiers
    assert "440***********4562" in html and "**** **** **** 3445" in html
    assert "138****0001" in html
    assert "考生服务系统" in html and "手机号码" in html and "基本信息：姓名、用户名、性别、出生日期" in html
    assert "下载我的数据" in html and "注销账号" in html
    # the menu of the user centre leads here
    assert 'href="/account/privacy"' in logged_in.get("/account/").data.decode()


def test_token_issuance_is_audited_with_its_scopes_and_nothing_personal(app, logged_in, user, rp):
    CodeFlow(logged_in, rp).tokens(scope="openid phone")
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).filter_by(event="token.issued"))
        assert event.client_id == rp.client_id and event.subject == user.sub
        assert event.details == {"grant_type": "authorization_code", "scope": "openid phone"}


def test_a_recent_login_downloads_at_once(app, logged_in, user, rp):
    CodeFlow(logged_in, rp).tokens(scope="openid profile realname")
    page = logged_in.get("/account/privacy/download")
    assert "您刚刚登录" in page.data.decode() and 'name="password"' not in page.data.decode()
    response = logged_in.post("/account/privacy/download", data=form_fields(page.data))
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith('attachment; filename="my-data-')
    assert response.headers["Cache-Control"] == "no-store"
    assert response.mimetype == "application/json"
    data = json.loads(response.data)
    assert data["account"]["username"] == user.username and data["account"]["sub"] == user.sub
    assert data["identity"]["id_number"] == ID_NUMBER and data["identity"]["name"] == "张三"
    assert data["contact"]["phone"] == "13800130001"
    assert data["bank"]["card_number"] == CARD and data["bank"]["bank_code"] == "ICBC"
    assert "argon2" in data["account"]["password"] and "$argon2" not in response.data.decode()
    [received] = data["disclosures"]
    assert received["client_id"] == rp.client_id and received["name"] == "考生服务系统"
    assert received["scopes"] == ["openid", "profile", "realname"]
    assert {"sub", "name", "id_number"} <= set(received["claims"]) and "phone_number" not in received["claims"]
    assert any(e["event"] == "login" for e in data["activity"])
    assert data["login_sessions"] and data["privacy_notice_version"] == app.config["PRIVACY_NOTICE_VERSION"]
    with app.app_context():
        exported = db.session.scalar(select(AuditEvent).filter_by(event="privacy.data_exported"))
        assert exported.subject == user.sub and exported.details == {"reauth": "recent_login"}


def test_an_older_login_types_the_password_and_the_captcha_again(app, logged_in, user):
    app.config["PRIVACY_REAUTH_MAX_AGE"] = 0
    page = logged_in.get("/account/privacy/download")
    assert 'name="password"' in page.data.decode() and 'name="captcha"' in page.data.decode()

    def attempt(password, captcha=CAPTCHA):
        fields = form_fields(logged_in.get("/account/privacy/download").data)
        fields.update(password=password, captcha=captcha)
        return logged_in.post("/account/privacy/download", data=fields)

    wrong = attempt("Wrong#pass2026")
    assert wrong.status_code == 400 and "当前密码错误" in wrong.data.decode()
    assert "Content-Disposition" not in wrong.headers
    bad_captcha = attempt(DEFAULT_PASSWORD, "XXXX")
    assert bad_captcha.status_code == 400 and "验证码错误" in bad_captcha.data.decode()
    right = attempt(DEFAULT_PASSWORD)
    assert right.status_code == 200 and right.headers["Content-Disposition"].startswith("attachment")
    assert json.loads(right.data)["identity"]["id_number"] == ID_NUMBER
    with app.app_context():
        exported = db.session.scalar(select(AuditEvent).filter_by(event="privacy.data_exported"))
        assert exported.details == {"reauth": "password"}


def test_nothing_without_a_login(client):
    assert client.get("/account/privacy").status_code == 302
    assert client.get("/account/privacy/download").status_code == 302
    assert client.post("/account/privacy/download").status_code in (302, 400)
