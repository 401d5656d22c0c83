"""忘记用户名 for a unit in a real browser (Debian Chromium): choosing 单位用户 loads the unit's
form at once, and the username arrives by SMS at the handler's phone."""

from __future__ import annotations

import re

import pytest
import requests

from ..helpers import CAPTCHA
from ..live import chromium_page, outbox_sms
from ..register.conftest import CITIZENS
from .conftest import make_unit_account, unit


@pytest.mark.browser
def test_forgotten_username_of_a_unit(live_server):
    u, handler = unit(demo=True), CITIZENS["lina"]
    make_unit_account(live_server.app, u, handler, "unit_browser")
    url = live_server.url
    with chromium_page() as page:
        page.goto(f"{url}/login")
        page.get_by_role("link", name="忘记用户名？").click()
        page.wait_for_url(f"{url}/recovery/username")
        page.get_by_label("单位用户").check()
        page.wait_for_url(f"{url}/recovery/username?type=unit")
        page.get_by_label("单位名称", exact=True).fill(u.unit_name)
        page.get_by_label("统一社会信用代码", exact=True).fill(u.uscc)
        page.get_by_label("验证码", exact=True).fill(CAPTCHA)
        page.get_by_role("button", name="下一步").click()
        page.wait_for_url(f"{url}/recovery/username/sms")
        page.get_by_role("button", name="发送短信验证").click()
        page.get_by_text(re.compile("短信验证码已发送至注册时填写的手机号码")).wait_for()
        code = outbox_sms(url, handler.phone)
        page.get_by_label("动态验证", exact=True).fill(code)
        page.get_by_role("button", name="下一步").click()
        page.wait_for_url(f"{url}/recovery/username/done")
    outbox = requests.get(f"{url}/dev/sms-outbox.json", params={"phone": handler.phone}, timeout=10).json()
    assert "unit_browser" in outbox["messages"][0]["text"]
