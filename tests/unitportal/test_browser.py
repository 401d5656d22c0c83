"""A unit registers in a real browser (Debian Chromium, phone-sized), starting from 单位网上办事:
every step of 单位用户注册 with the handler's bank check and the SMS code from the development
outbox, back to the portal signed in; then 退出, and 单位用户登录 again at the portal."""

from __future__ import annotations

import os
import re

import pytest

from ..conftest import DEFAULT_PASSWORD
from ..helpers import CAPTCHA
from ..live import chromium_page, outbox_sms
from ..register.conftest import CITIZENS
from ..units.conftest import unit


@pytest.mark.browser
def test_a_unit_registers_from_the_portal_then_logs_in_under_the_unit_tab(portal):
    u, handler = unit(demo=True), CITIZENS["lina"]
    platform, home = portal.provider.url, portal.portal.url
    shots = os.environ.get("IDP_SCREENSHOTS")

    def shot(name: str) -> None:
        if shots:
            page.screenshot(path=f"{shots}/unit-{name}.png", full_page=True)

    with chromium_page() as page:
        page.goto(f"{home}/")
        page.get_by_role("link", name="单位用户注册").click()
        page.wait_for_url(f"{platform}/register/unit/login-info")

        # 填写登录信息
        page.get_by_label("用户名", exact=True).fill("pengcheng2026")
        page.get_by_label("密码", exact=True).fill(DEFAULT_PASSWORD)
        page.get_by_label("确认密码", exact=True).fill(DEFAULT_PASSWORD)
        page.get_by_label("验证码", exact=True).fill(CAPTCHA)
        shot("1")
        page.get_by_role("button", name="下一步").click()
        page.wait_for_url(f"{platform}/register/unit/unit-info")

        # 填写单位信息: checked against the sandbox registry
        page.get_by_label("单位名称", exact=True).fill(u.unit_name)
        page.get_by_label("证件号", exact=True).fill(u.uscc)
        page.get_by_label("单位类型", exact=True).select_option(u.unit_type)
        page.get_by_label("法定代表人（负责人）姓名", exact=True).fill(u.legal_rep_name)
        shot("2")
        page.get_by_role("button", name="下一步").click()
        page.wait_for_url(f"{platform}/register/unit/handler")
        assert u.unit_name in page.content()

        # 填写经办人信息: a person, checked like a citizen (gender and birth date from the ID number)
        page.get_by_label("经办人姓名", exact=True).fill(handler.name)
        page.get_by_label("证件号", exact=True).fill(handler.id_number)
        assert page.get_by_label("出生日期").input_value() == handler.birthdate.isoformat()
        page.get_by_label("银行", exact=True).select_option(handler.bank_code)
        page.get_by_label("银行账号", exact=True).fill(handler.card_number)
        page.locator("input[name=consent]").check()  # the card's separate consent
        page.get_by_label("手机号码", exact=True).fill(handler.phone)
        page.get_by_role("button", name="发送短信验证").click()
        page.get_by_text(re.compile(r"短信验证码已发送")).wait_for()
        code = outbox_sms(platform, handler.phone)
        page.get_by_label("短信验证码", exact=True).fill(code)
        shot("3")
        page.get_by_role("button", name="下一步").click()
        page.wait_for_url(f"{platform}/register/unit/done")
        assert "注册成功" in page.content() and "pengcheng2026" in page.content()
        shot("4")

        # 返回单位网上办事: signed in there, the unit shown
        page.get_by_role("link", name="返回单位网上办事").click()
        page.wait_for_url(f"{home}/")
        assert u.unit_name in page.content() and u.uscc[-4:] in page.content() and u.uscc not in page.content()
        shot("5")

        # 退出 ends both sessions
        page.get_by_role("button", name="退出").click()
        page.wait_for_url(re.compile(re.escape(f"{home}/logged-out")))
        assert "您已退出单位网上办事和统一用户平台" in page.content()

        # 单位用户登录 at the portal: the platform's login opens on the unit tab
        page.goto(f"{home}/")
        page.get_by_role("link", name="单位用户登录").click()
        page.wait_for_url(f"{platform}/login?type=unit")
        page.get_by_label("用户名", exact=True).fill("pengcheng2026")
        page.get_by_label("密码", exact=True).fill(DEFAULT_PASSWORD)
        page.get_by_label("验证码", exact=True).fill(CAPTCHA)
        shot("6")
        page.get_by_role("button", name="登录").click()
        page.wait_for_url(f"{home}/")
        assert u.unit_name in page.content() and "单位类型" in page.content()
        shot("7")
