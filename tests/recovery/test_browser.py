"""忘记密码 in a real browser (Debian Chromium, phone-sized): 证件号码+手机验证码, the SMS code read from
the development outbox, a new password, then a login with it."""

from __future__ import annotations

import os
import re

import pytest

from ..helpers import CAPTCHA
from ..live import chromium_page, outbox_sms
from .conftest import CITIZENS, DEFAULT_PASSWORD, NEW_PASSWORD, make_citizen_account


@pytest.mark.browser
def test_forgotten_password_by_document_and_phone_then_log_in(live_server):
    citizen = CITIZENS["demo"]
    make_citizen_account(live_server.app, citizen, "wangxm2026")
    url = live_server.url
    shots = os.environ.get("IDP_SCREENSHOTS")
    with chromium_page() as page:
        page.goto(f"{url}/login")
        page.get_by_role("link", name="忘记密码？").click()
        page.wait_for_url(f"{url}/recovery/password")

        # 输入用户名
        page.get_by_label("用户名", exact=True).fill("wangxm2026")
        page.get_by_label("验证码", exact=True).fill(CAPTCHA)
        page.get_by_role("button", name="下一步").click()
        page.wait_for_url(f"{url}/recovery/password/method")

        # 选择找回方式
        page.get_by_role("button", name="证件号码+手机验证码").click()
        page.wait_for_url(f"{url}/recovery/password/verify/id")

        # 验证身份: the SMS goes out without reloading the page
        page.get_by_label("证件类型", exact=True).select_option("resident_id")
        page.get_by_label("证件号", exact=True).fill(citizen.id_number)
        page.get_by_label("手机号码", exact=True).fill(citizen.phone)
        page.get_by_role("button", name="发送短信验证").click()
        page.get_by_text(re.compile(r"短信验证码已发送至138\*\*\*\*8000")).wait_for()
        assert re.fullmatch(r"\d+秒后重新获取", page.locator("button[name=send_sms]").inner_text())
        assert page.url == f"{url}/recovery/password/verify/id"
        code = outbox_sms(url, citizen.phone)
        page.get_by_label("动态验证", exact=True).fill(code)
        if shots:
            page.screenshot(path=f"{shots}/recovery-verify.png", full_page=True)
        page.get_by_role("button", name="下一步").click()
        page.wait_for_url(f"{url}/recovery/password/reset")

        # 重置密码
        assert page.get_by_label("用户名", exact=True).input_value() == "wangxm2026"
        page.get_by_label("新密码", exact=True).fill(NEW_PASSWORD)
        page.get_by_label("确认新密码", exact=True).fill(NEW_PASSWORD)
        page.get_by_label("验证码", exact=True).fill(CAPTCHA)
        page.get_by_role("button", name="下一步").click()
        page.wait_for_url(f"{url}/recovery/password/done")
        assert "重置成功" in page.content()
        if shots:
            page.screenshot(path=f"{shots}/recovery-done.png", full_page=True)

        # the old password no longer works, the new one does
        page.get_by_role("link", name="立即登录").click()
        page.wait_for_url(f"{url}/login")
        assert page.get_by_label("用户名", exact=True).input_value() == "wangxm2026"
        page.get_by_label("密码", exact=True).fill(DEFAULT_PASSWORD)
        page.get_by_label("验证码", exact=True).fill(CAPTCHA)
        page.get_by_role("button", name="登录").click()
        page.get_by_text("用户名或密码错误").wait_for()
        page.get_by_label("密码", exact=True).fill(NEW_PASSWORD)
        page.get_by_label("验证码", exact=True).fill(CAPTCHA)
        page.get_by_role("button", name="登录").click()
        page.wait_for_url(f"{url}/account/")
        assert "wangxm2026" in page.content()
