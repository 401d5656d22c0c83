"""Return to where the citizen came from, in a real browser (Debian Chromium, phone-sized):
忘记密码 begun at the exam service ends signed in at the exam service; after 修改密码 the
platform's header no longer shows the old user; after the platform ended the login (its
back-channel logout) the exam service says so."""

from __future__ import annotations

import os
import re

import pytest

from ..conftest import DEFAULT_PASSWORD
from ..helpers import CAPTCHA
from ..live import chromium_page, outbox_sms

NEW_PASSWORD = "Kaoshi#2027reset"
ENDED = "您在统一用户平台的登录已结束"


def _shot(page, name: str) -> None:
    if folder := os.environ.get("IDP_SCREENSHOTS"):
        page.screenshot(path=f"{folder}/return-{name}.png", full_page=True)


def _sign_in_at_the_exam_service(page, exam, username: str, password: str = DEFAULT_PASSWORD) -> None:
    page.goto(exam.exam.url)
    page.get_by_role("link", name="登录", exact=True).click()
    page.wait_for_url(f"{exam.issuer}/login")
    page.get_by_label("用户名", exact=True).fill(username)
    page.get_by_label("密码", exact=True).fill(password)
    page.get_by_label("验证码", exact=True).fill(CAPTCHA)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{exam.exam.url}/candidate")


@pytest.mark.browser
def test_forgot_password_at_the_exam_service_ends_signed_in_there(exam, citizen):
    issuer = exam.issuer
    with chromium_page() as page:
        page.goto(exam.exam.url)
        page.get_by_role("link", name="忘记密码？").click()

        # the platform's 找回密码, with the exam service's authorization request pending
        page.wait_for_url(f"{issuer}/recovery/password")
        page.get_by_label("用户名", exact=True).fill(citizen["username"])
        page.get_by_label("验证码", exact=True).fill(CAPTCHA)
        page.get_by_role("button", name="下一步").click()
        page.wait_for_url(f"{issuer}/recovery/password/method")
        page.get_by_role("button", name="证件号码+手机验证码").click()

        # 验证身份: the code from the development SMS outbox
        page.wait_for_url(f"{issuer}/recovery/password/verify/id")
        page.get_by_label("证件类型", exact=True).select_option("resident_id")
        page.get_by_label("证件号", exact=True).fill(citizen["id_number"])
        page.get_by_label("手机号码", exact=True).fill(citizen["phone"])
        page.get_by_role("button", name="发送短信验证").click()
        page.get_by_text(re.compile(r"短信验证码已发送至138\*\*\*\*8000")).wait_for()
        page.get_by_label("动态验证", exact=True).fill(outbox_sms(issuer, citizen["phone"]))
        page.get_by_role("button", name="下一步").click()

        # 重置密码, then straight back to the exam service, signed in
        page.wait_for_url(f"{issuer}/recovery/password/reset")
        page.get_by_label("新密码", exact=True).fill(NEW_PASSWORD)
        page.get_by_label("确认新密码", exact=True).fill(NEW_PASSWORD)
        page.get_by_label("验证码", exact=True).fill(CAPTCHA)
        page.get_by_role("button", name="下一步").click()
        page.wait_for_url(f"{exam.exam.url}/candidate")
        assert "考生信息" in page.content() and citizen["username"] in page.content()
        _shot(page, "1-back-at-the-exam-service")

        # the platform knows the citizen too (single sign-on): 用户信息维护 needs no login
        page.get_by_role("link", name="用户信息维护").click()
        page.wait_for_url(f"{issuer}/account/")
        assert page.locator("header .who").inner_text() == citizen["username"]


@pytest.mark.browser
def test_after_a_password_change_the_old_user_is_gone_and_the_exam_service_says_why(exam, citizen):
    issuer = exam.issuer
    with chromium_page() as page:
        _sign_in_at_the_exam_service(page, exam, citizen["username"])

        # 修改密码 from the exam service: the platform's page, signed in through single sign-on
        page.get_by_role("link", name="修改密码").click()
        page.wait_for_url(f"{issuer}/account/password")
        assert page.locator("header .who").inner_text() == citizen["username"]
        page.get_by_label("当前密码", exact=True).fill(DEFAULT_PASSWORD)
        page.get_by_label("新密码", exact=True).fill(NEW_PASSWORD)
        page.get_by_label("确认新密码", exact=True).fill(NEW_PASSWORD)
        page.get_by_label("验证码", exact=True).fill(CAPTCHA)
        page.get_by_role("button", name="提交").click()
        page.get_by_text("密码修改成功").first.wait_for()
        _shot(page, "2-password-changed")
        # signed out everywhere: this page's header shows nobody any more
        assert page.locator("header .who").count() == 0
        assert citizen["username"] not in page.locator("header").inner_text()

        # the change ended the platform login, whose back-channel logout reached the exam service
        page.goto(f"{exam.exam.url}/candidate")
        page.wait_for_url(f"{exam.exam.url}/")
        assert ENDED in page.content()
        _shot(page, "3-exam-service-told")
        page.reload()
        assert ENDED not in page.content()  # said once

        # the new password signs in again
        _sign_in_at_the_exam_service(page, exam, citizen["username"], NEW_PASSWORD)


@pytest.mark.browser
def test_after_logging_out_at_the_platform_the_exam_service_says_the_session_ended(exam, citizen):
    issuer = exam.issuer
    with chromium_page() as page:
        _sign_in_at_the_exam_service(page, exam, citizen["username"])
        assert ENDED not in page.content()

        # 退出 at the platform (its user centre): the back-channel logout ends the exam session
        page.goto(f"{issuer}/account/")
        page.locator("header").get_by_role("link", name="退出").click()
        page.wait_for_url(f"{issuer}/logout")
        page.get_by_role("button", name="退出").click()
        page.get_by_role("link", name="重新登录").wait_for()

        page.goto(f"{exam.exam.url}/candidate")
        page.wait_for_url(f"{exam.exam.url}/")
        banner = page.get_by_role("status").filter(has_text=ENDED)
        assert banner.count() == 1 and "请重新登录" in banner.inner_text()
        _shot(page, "4-platform-logout")
