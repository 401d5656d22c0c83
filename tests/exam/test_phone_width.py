"""Every page a citizen or an administrator can reach fits a 360 px phone without horizontal
scrolling (``scrollWidth <= innerWidth``), and 修改密码 on the exam service opens the platform's
page through single sign-on.  In Chromium; ``IDP_SCREENSHOTS=dir`` keeps a picture of each page."""

from __future__ import annotations

import os
import re

import pytest

from idp.services.accounts.records import NewAccount, create_account

from ..conftest import DEFAULT_PASSWORD
from ..helpers import CAPTCHA
from ..live import chromium_page, outbox_sms
from .test_journey import candidate_citizen

pytestmark = pytest.mark.browser

PHONE_WIDTH = 360


class WidthCheck:
    def __init__(self, page) -> None:
        self.page = page
        self.too_wide: list[str] = []
        self.seen: list[str] = []
        self.shots = os.environ.get("IDP_SCREENSHOTS")

    def __call__(self, name: str) -> None:
        self.page.wait_for_load_state("load")
        scroll, inner = self.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        self.seen.append(name)
        if scroll > inner:
            self.too_wide.append(f"{name} ({self.page.url}): {scroll} px in {inner} px")
        if self.shots:
            self.page.screenshot(path=f"{self.shots}/w360-{len(self.seen):02d}-{name}.png", full_page=True)

    def visit(self, name: str, url: str) -> None:
        self.page.goto(url)
        self(name)


def _platform_login(page, username: str) -> None:
    page.get_by_label("用户名", exact=True).fill(username)
    page.get_by_label("密码", exact=True).fill(DEFAULT_PASSWORD)
    page.get_by_label("验证码", exact=True).fill(CAPTCHA)
    page.get_by_role("button", name="登录").click()


def test_every_page_fits_a_360px_phone(exam, citizen):
    issuer, exam_url = exam.issuer, exam.exam.url
    registering = candidate_citizen()
    with exam.provider.app.app_context():
        create_account(NewAccount(username="admin01", password=DEFAULT_PASSWORD, name="系统管理员"),
                       real_name_verified=False, role="admin")

    with chromium_page(PHONE_WIDTH, 740) as page:
        check = WidthCheck(page)
        # -- the exam service and the platform's public pages --------------------------------------
        check.visit("exam-login", exam_url + "/")
        check.visit("exam-guide", exam_url + "/guide")
        check.visit("exam-not-found", exam_url + "/no-such-page")
        check.visit("login", issuer + "/login")
        page.get_by_label("用户名", exact=True).fill("nobody2026")
        page.get_by_label("密码", exact=True).fill("Wrong#password1")
        page.get_by_label("验证码", exact=True).fill(CAPTCHA)
        page.get_by_role("button", name="登录").click()
        check("login-error")
        check.visit("not-found", issuer + "/no-such-page")

        # -- registration from the exam service, every step ------------------------------------------
        page.goto(exam_url + "/")
        page.get_by_role("link", name="立即注册").click()
        page.wait_for_url(f"{issuer}/register/login-info")
        check("register-1-login-info")
        page.get_by_label("用户名", exact=True).fill("kaosheng360")
        page.get_by_label("密码", exact=True).fill(DEFAULT_PASSWORD)
        page.get_by_label("确认密码", exact=True).fill(DEFAULT_PASSWORD)
        page.get_by_label("验证码", exact=True).fill(CAPTCHA)
        page.get_by_role("button", name="下一步").click()
        page.wait_for_url(f"{issuer}/register/identity")
        check("register-2-identity")
        page.get_by_label("姓名", exact=True).fill(registering.name)
        page.get_by_label("证件号", exact=True).fill(registering.id_number)
        page.get_by_role("button", name="下一步").click()
        page.wait_for_url(f"{issuer}/register/verification")
        check("register-3-verification")
        page.get_by_label("银行", exact=True).select_option(registering.bank_code)
        page.get_by_label("银行账号", exact=True).fill(registering.card_number)
        page.get_by_label("手机号码", exact=True).fill(registering.phone)
        page.locator("input[name=consent]").check()  # the card's separate consent
        page.get_by_role("button", name="发送短信验证").click()
        page.get_by_text(re.compile(r"短信验证码已发送至")).wait_for()
        check("register-3-sms-sent")
        page.get_by_label("短信验证码", exact=True).fill("000000")
        page.get_by_role("button", name="下一步").click()
        check("register-3-error")
        page.get_by_label("短信验证码", exact=True).fill(outbox_sms(issuer, registering.phone))
        page.get_by_role("button", name="下一步").click()
        page.wait_for_url(issuer + "/register/done")
        check("register-done")
        page.get_by_role("link", name="返回考生服务系统").click()
        page.wait_for_url(exam_url + "/candidate")

        # -- the exam service signed in, and the user centre ---------------------------------------
        page.goto(exam_url + "/candidate")
        check("exam-candidate")
        for name, path in (("account-home", "/account/"), ("account-edit", "/account/edit"),
                           ("account-password", "/account/password"),
                           ("account-security-questions", "/account/security-questions"),
                           ("account-sessions", "/account/sessions"), ("logout-confirm", "/logout")):
            check.visit(name, issuer + path)
        page.goto(issuer + "/account/edit")
        page.get_by_label("姓名", exact=True).fill("李娜娜")
        page.get_by_role("button", name="提交").click()
        check("account-edit-bank-mismatch")
        page.goto(exam_url + "/candidate")
        page.get_by_role("button", name="退出").click()
        page.wait_for_url(re.compile(re.escape(f"{exam_url}/logged-out")))
        check("exam-logged-out")

        # -- recovery ----------------------------------------------------------------------------------
        check.visit("recovery-username", issuer + "/recovery/username")
        page.get_by_label("姓名", exact=True).fill(registering.name)
        page.get_by_label("证件号", exact=True).fill(registering.id_number)
        page.get_by_label("验证码", exact=True).fill(CAPTCHA)
        page.get_by_role("button", name="下一步").click()
        check("recovery-username-sms")
        if page.get_by_role("link", name=re.compile("手机号已停用")).count():
            page.get_by_role("link", name=re.compile("手机号已停用")).first.click()
            check("recovery-phone-change")
        check.visit("recovery-password", issuer + "/recovery/password")
        page.get_by_label("用户名", exact=True).fill("kaosheng360")
        page.get_by_label("验证码", exact=True).fill(CAPTCHA)
        page.get_by_role("button", name="下一步").click()
        check("recovery-password-method")
        for label in ("证件号码+手机验证码", "密保问题"):
            page.goto(issuer + "/recovery/password/method")
            choice = page.get_by_text(label, exact=False).first
            if choice.count():
                choice.click()
                buttons = page.get_by_role("button", name="下一步")
                if buttons.count():
                    buttons.first.click()
                check(f"recovery-password-{'id' if '证件' in label else 'questions'}")

        # -- the administration console -------------------------------------------------------------
        page.goto(issuer + "/login")
        _platform_login(page, "admin01")
        for name, path in (("admin-index", "/admin/"), ("admin-clients", "/admin/clients"),
                           ("admin-client-new", "/admin/clients/new"),
                           ("admin-client", f"/admin/clients/{exam.client_id}"),
                           ("admin-client-edit", f"/admin/clients/{exam.client_id}/edit"),
                           ("admin-users", "/admin/users?q=kaosheng"),
                           ("admin-audit", "/admin/audit?since=2000-01-01")):
            check.visit(name, issuer + path)
        page.goto(issuer + "/admin/users?q=kaosheng360")
        user_links = page.locator("a[href^='/admin/users/']")
        if user_links.count():
            user_links.first.click()
            check("admin-user")

    assert len(check.seen) >= 35, check.seen
    assert check.too_wide == []


def test_password_change_from_the_exam_service_through_single_sign_on(exam, citizen):
    issuer, exam_url = exam.issuer, exam.exam.url
    with chromium_page() as page:
        page.goto(exam_url + "/login")
        page.wait_for_url(f"{issuer}/login")
        _platform_login(page, citizen["username"])
        page.wait_for_url(f"{exam_url}/candidate")
        page.get_by_role("link", name="修改密码").click()
        page.wait_for_url(f"{issuer}/account/password")  # no login page on the way
        content = page.content()
        assert "当前密码" in content and "确认新密码" in content and citizen["username"] in content
        # under 安全中心 in the user centre's menu
        current = page.locator(".menu-group", has_text="安全中心").locator("a.active")
        assert current.inner_text() == "修改密码"
