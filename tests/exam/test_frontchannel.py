"""The exam service's front-channel logout page: with the platform's iss and a login's sid it ends
the local sessions of that login; only the platform may frame it.  In a real browser, 退出 on the
platform ends the exam session through that page alone (no back-channel URI registered)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import requests

from clients.exam.extensions import db as exam_db
from clients.exam.models import CandidateLogin
from idp.services.admin.clients import spec_of, get_client, update_client

from ..conftest import DEFAULT_PASSWORD
from ..helpers import CAPTCHA
from ..live import chromium_page
from .conftest import Browser, sign_in
from .test_backchannel import signed_in


def _front_channel_only(exam) -> None:
    with exam.provider.app.app_context():
        spec = spec_of(get_client(exam.client_id))
        update_client(exam.client_id, replace(spec, backchannel_logout_uri=None,
                                              frontchannel_logout_uri=f"{exam.exam.url}/frontchannel-logout",
                                              frontchannel_logout_session_required=True),
                      reason="前端登出测试")


def test_the_front_channel_page_ends_the_login_it_names(exam, citizen):
    first, second = Browser(), Browser()
    sign_in(first, exam, citizen["username"])
    sign_in(second, exam, citizen["username"])
    with exam.exam.app.app_context():
        sids = [row.platform_sid for row in exam_db.session.query(CandidateLogin).order_by(CandidateLogin.id)]
    url = f"{exam.exam.url}/frontchannel-logout"
    # another issuer, or no sid: nothing ends
    for params in ({"iss": "http://127.0.0.1:9", "sid": sids[0]}, {"iss": exam.issuer}):
        assert requests.get(url, params=params, timeout=10).status_code == 200
    assert signed_in(first, exam) and signed_in(second, exam)
    response = requests.get(url, params={"iss": exam.issuer, "sid": sids[0]}, timeout=10)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Security-Policy"] == f"default-src 'none'; frame-ancestors {exam.issuer}"
    assert "X-Frame-Options" not in response.headers
    assert not signed_in(first, exam) and signed_in(second, exam)
    # every other page of the service stays unframeable
    other = requests.get(f"{exam.exam.url}/", timeout=10)
    assert other.headers["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in other.headers["Content-Security-Policy"]


@pytest.mark.browser
def test_logging_out_on_the_platform_ends_the_exam_session_in_the_browser(exam, citizen):
    _front_channel_only(exam)
    exam_url, issuer = exam.exam.url, exam.issuer
    with chromium_page() as page:
        page.goto(f"{exam_url}/login")
        page.wait_for_url(f"{issuer}/login")
        page.get_by_label("用户名").fill(citizen["username"])
        page.get_by_label("密码", exact=True).fill(DEFAULT_PASSWORD)
        page.get_by_label("验证码").fill(CAPTCHA)
        page.get_by_role("button", name="登录").click()
        page.wait_for_url(f"{exam_url}/candidate")

        # 退出 on the platform itself: the exam service is told only through the iframe
        with page.expect_response(lambda r: r.url.startswith(f"{exam_url}/frontchannel-logout?")) as framed:
            page.goto(f"{issuer}/logout")
            page.get_by_role("button", name="退出").click()
            page.get_by_text("您已退出登录").wait_for()
        assert framed.value.status == 200
        page.goto(f"{exam_url}/candidate")
        page.wait_for_url(f"{exam_url}/")
        assert "考生登录" in page.content()
    with exam.exam.app.app_context():
        assert exam_db.session.query(CandidateLogin).count() == 0
