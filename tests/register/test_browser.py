"""A citizen registers in a real browser (Debian Chromium, phone-sized), reading the SMS code from
the development outbox, then logs in."""

from __future__ import annotations

import os
import re

import pytest

from ..conftest import DEFAULT_PASSWORD
from ..helpers import CAPTCHA
from ..live import chromium_page, outbox_sms
from .conftest import CITIZENS


@pytest.mark.browser
def test_register_through_three_steps_then_log_in(live_server):
    citizen = CITIZENS["rare_astral"]  # 杨𠮷: a name outside the BMP, end to end
    url = live_server.url
    shots = os.environ.get("IDP_SCREENSHOTS")  # a folder to look at the pages in
    with chromium_page() as page:
        page.goto(f"{url}/login")
        page.get_by_role("link", name="立即注册").click()
        page.wait_for_url(f"{url}/register/login-info")

        # step 1: the live check answers as the citizen types
        page.get_by_label("用户名", exact=True).fill("yangji2026")
        page.get_by_text("用户名可以使用").wait_for()
        page.get_by_label("密码", exact=True).fill(DEFAULT_PASSWORD)
        page.get_by_label("确认密码", exact=True).fill(DEFAULT_PASSWORD)
        page.get_by_label("验证码", exact=True).fill(CAPTCHA)
        if shots:
            page.screenshot(path=f"{shots}/register-1.png", full_page=True)
        page.get_by_role("button", name="下一步").click()
        page.wait_for_url(f"{url}/register/identity")

        # step 2: birth date and gender fill in from the ID number
        page.get_by_label("姓名", exact=True).fill(citizen.name)
        page.get_by_label("证件号", exact=True).fill(citizen.id_number)
        assert page.get_by_label("出生日期").input_value() == citizen.birthdate.isoformat()
        assert page.get_by_label("女").is_checked()
        if shots:
            page.screenshot(path=f"{shots}/register-2.png", full_page=True)
        page.get_by_role("button", name="下一步").click()
        page.wait_for_url(f"{url}/register/verification")

        # step 3: the SMS goes out without reloading the page
        page.get_by_label("银行", exact=True).select_option(citizen.bank_code)
        page.get_by_label("银行账号", exact=True).fill(citizen.card_number)
        page.get_by_label("手机号码", exact=True).fill(citizen.phone)
        page.locator("input[name=consent]").check()  # the card's separate consent
        page.get_by_role("button", name="发送短信验证").click()
        page.get_by_text(re.compile(r"短信验证码已发送至138\*\*\*\*8010")).wait_for()
        assert re.fullmatch(r"\d+秒后重新获取", page.locator("button[name=send_sms]").inner_text())
        assert page.locator("button[name=send_sms]").is_disabled()
        code = outbox_sms(url, citizen.phone)
        page.get_by_label("短信验证码", exact=True).fill(code)
        if shots:
            page.screenshot(path=f"{shots}/register-3.png", full_page=True)
        page.get_by_role("button", name="下一步").click()
        page.wait_for_url(f"{url}/register/done")
        assert "注册成功" in page.content() and "yangji2026" in page.content()
        if shots:
            page.screenshot(path=f"{shots}/register-4.png", full_page=True)

        # then logs in: the login page offers the new username
        page.get_by_role("link", name="立即登录").click()
        page.wait_for_url(f"{url}/login")
        assert page.get_by_label("用户名", exact=True).input_value() == "yangji2026"
        page.get_by_label("密码", exact=True).fill(DEFAULT_PASSWORD)
        page.get_by_label("验证码", exact=True).fill(CAPTCHA)
        page.get_by_role("button", name="登录").click()
        page.wait_for_url(f"{url}/account/")
        assert citizen.name in page.content()
        assert "已通过银行实名认证" in page.content()
