"""单位网上办事 over real HTTP: a unit's handler signs in through the platform (which opens on
单位用户登录 for this units-only system) and sees the unit, masked; 退出 ends both sessions; a
person is refused by the platform before any code; 单位用户注册 opens the unit wizard."""

from __future__ import annotations

from datetime import date

import pytest

from clients.unitportal.config import UnitPortalConfigError, load_config

from idp.services.accounts.records import NewAccount, create_account

from ..conftest import DEFAULT_PASSWORD
from ..exam.conftest import Browser
from .conftest import HANDLER


def _sign_in(browser: Browser, portal, username: str):
    login_page = browser.get(f"{portal.portal.url}/login")
    assert login_page.url == f"{portal.provider.url}/login?type=unit", login_page.url
    assert 'name="user_type" value="unit"' in login_page.text or 'value="unit"' in login_page.text
    return browser.platform_login(login_page, username)


def test_a_unit_signs_in_and_sees_its_unit_masked_then_logs_out_of_both(portal, unit_account):
    browser = Browser()
    home = browser.get(f"{portal.portal.url}/")
    assert "单位用户登录" in home.text and "单位用户注册" in home.text
    page = _sign_in(browser, portal, unit_account["username"])
    u = unit_account["unit"]
    assert page.url == f"{portal.portal.url}/", page.url
    assert u.unit_name in page.text and "企业" in page.text
    assert f"{u.uscc[:4]}**********{u.uscc[-4:]}" in page.text and u.uscc not in page.text
    assert "李*" in page.text and HANDLER["name"] not in page.text
    # the cookie carries a session id only: nothing of the unit is in it
    cookie = browser.session.cookies.get("unitportal_session", domain="127.0.0.1")
    assert cookie and u.unit_name.encode() not in cookie.encode() and "." not in cookie

    handover = browser.submit(page, {}, follow=False)
    assert handover.status_code == 200 and "正在退出" in handover.text
    done = browser.submit(handover, {})
    assert done.url.startswith(f"{portal.portal.url}/logged-out") and "您已退出单位网上办事和统一用户平台" in done.text
    assert "单位用户登录" in browser.get(f"{portal.portal.url}/").text
    again = browser.get(f"{portal.provider.url}/account/")
    assert "/login" in again.url  # the platform session ended too


def test_a_person_is_refused_by_the_platform_with_the_page_that_says_units_only(portal, live_server):
    with live_server.app.app_context():
        create_account(NewAccount(username="citizen01", password=DEFAULT_PASSWORD, name="张伟", id_type="resident_id",
                                  id_number="110101198502113552", phone="13800138002", gender="M",
                                  birthdate=date(1985, 2, 11), bank_code="BOC", card_number="6216610793379156688"),
                       real_name_verified=True)
    browser = Browser()
    browser.get(f"{portal.portal.url}/login")  # the authorization request waits at the platform
    personal_tab = browser.get(f"{portal.provider.url}/login")
    page = browser.platform_login(personal_tab, "citizen01")
    assert page.status_code == 403 and page.url.startswith(f"{portal.provider.url}/oauth/authorize")
    assert "“单位网上办事”仅允许<strong>单位用户</strong>登录" in page.text
    assert not any("code=" in hop for hop in browser.hops)


def test_register_opens_the_unit_wizard(portal):
    browser = Browser()
    page = browser.get(f"{portal.portal.url}/register")
    assert page.url == f"{portal.provider.url}/register/unit/login-info", page.url
    assert "单位用户注册" in page.text


def test_production_refuses_unsafe_settings(monkeypatch):
    for name in ("UNITPORTAL_SECRET_KEY", "UNITPORTAL_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(UnitPortalConfigError) as refused:
        load_config("production", CLIENT_ID="unit-portal", ISSUER="http://idp.example.test",
                    BASE_URL="http://dw.example.test")
    for expected in ("UNITPORTAL_CLIENT_SECRET", "UNITPORTAL_SECRET_KEY", "UNITPORTAL_ISSUER must be an https://"):
        assert expected in str(refused.value)
    with pytest.raises(UnitPortalConfigError, match="UNITPORTAL_CLIENT_ID"):
        load_config("development")
