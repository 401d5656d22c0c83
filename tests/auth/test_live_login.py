from __future__ import annotations

import pytest
import requests

from ..conftest import DEFAULT_PASSWORD
from ..helpers import CAPTCHA, form_fields
from ..live import chromium_page


def test_login_over_real_http(live_server):
    s = requests.Session()
    page = s.get(f"{live_server.url}/login", timeout=10)
    assert page.status_code == 200
    fields = form_fields(page.text)
    fields.update(username="nobody_here", password=DEFAULT_PASSWORD, captcha=CAPTCHA)
    response = s.post(f"{live_server.url}/login", data=fields, timeout=10, allow_redirects=False)
    assert response.status_code == 400
    assert "用户名或密码错误" in response.text


@pytest.mark.browser
def test_login_in_a_real_browser(live_server):
    from idp.services.accounts.records import NewAccount, create_account

    with live_server.app.app_context():
        create_account(
            NewAccount(username="lisi2026", password=DEFAULT_PASSWORD, name="李四", id_type="resident_id",
                       id_number="440304199001011233", phone="13900139000"),
            real_name_verified=True,
        )
    with chromium_page() as page:
        page.goto(f"{live_server.url}/login")
        page.get_by_label("用户名").fill("lisi2026")
        page.get_by_label("密码").fill(DEFAULT_PASSWORD)
        page.get_by_label("验证码").fill(CAPTCHA)
        page.get_by_role("button", name="登录").click()
        page.wait_for_url(f"{live_server.url}/account/")
        assert "查看用户信息" in page.content()
        assert "139****9000" in page.content()
