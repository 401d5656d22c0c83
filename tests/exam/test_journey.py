"""The candidate journey of the exam service's guide: 立即注册 → the platform's three steps with the
sandbox bank and the SMS outbox → back at the exam service signed in → 用户信息维护 reaches the
platform already signed in → 退出 logs out of both.  Once over plain HTTP, once in Chromium."""

from __future__ import annotations

import os
import re

import pytest

from idp.sandbox import SandboxCitizen
from idp.sandbox.bank import load_records

from ..conftest import DEFAULT_PASSWORD
from ..helpers import CAPTCHA
from ..live import chromium_page, outbox_sms
from .conftest import Browser

USERNAME = "kaosheng2026"


def candidate_citizen() -> SandboxCitizen:
    """李娜: a fictitious citizen whose debit card is in the sandbox bank."""
    return SandboxCitizen.from_record(next(r for r in load_records() if r.name == "李娜"))


def test_register_from_the_exam_service_over_http(exam):
    citizen = candidate_citizen()
    browser = Browser()
    step1 = browser.get(f"{exam.exam.url}/register")
    assert step1.url == f"{exam.issuer}/register/login-info"
    assert "填写登录信息" in step1.text
    step2 = browser.submit(step1, {"username": USERNAME, "password": DEFAULT_PASSWORD, "confirm": DEFAULT_PASSWORD,
                                   "captcha": CAPTCHA, "submit": "1"})
    assert step2.url == f"{exam.issuer}/register/identity", step2.text[:300]
    step3 = browser.submit(step2, {"name": citizen.name, "id_type": citizen.id_type, "id_number": citizen.id_number,
                                   "gender": citizen.gender, "birthdate": citizen.birthdate.isoformat(),
                                   "submit": "1"})
    assert step3.url == f"{exam.issuer}/register/verification", step3.text[:300]
    verification = {"bank_code": citizen.bank_code, "card_number": citizen.card_number, "phone": citizen.phone,
                    "consent": "y"}
    sent = browser.submit(step3, {**verification, "send_sms": "1"})
    assert "短信验证码已发送至" in sent.text
    done = browser.submit(sent, {**verification, "sms_code": outbox_sms(exam.issuer, citizen.phone), "submit": "1"})
    # 注册成功 is seen: the advice on 密保问题, and the way back to the exam service, signed in
    assert done.url == f"{exam.issuer}/register/done", done.text[:300]
    assert "注册成功" in done.text and "密保工具" in done.text and "返回考生服务系统" in done.text
    landed = browser.get(f"{exam.issuer}/register/continue")

    assert landed.url == f"{exam.exam.url}/candidate", landed.text[:300]
    assert citizen.name in landed.text and USERNAME in landed.text
    assert "已通过银行实名认证" in landed.text and citizen.id_number not in landed.text
    account = browser.get(f"{exam.issuer}/account/")
    assert account.url == f"{exam.issuer}/account/" and USERNAME in account.text


@pytest.mark.browser
def test_candidate_journey_in_a_real_browser(exam):
    citizen = candidate_citizen()
    exam_url, issuer = exam.exam.url, exam.issuer
    shots = os.environ.get("IDP_SCREENSHOTS")  # a folder to look at the pages in

    def shot(name: str) -> None:
        if shots:
            page.screenshot(path=f"{shots}/exam-{name}.png", full_page=True)

    with chromium_page() as page:
        # the exam service's login page
        page.goto(exam_url)
        shot("1-login")
        page.get_by_role("link", name="立即注册").click()

        # 填写登录信息
        page.wait_for_url(f"{issuer}/register/login-info")
        page.get_by_label("用户名", exact=True).fill(USERNAME)
        page.get_by_text("用户名可以使用").wait_for()
        page.get_by_label("密码", exact=True).fill(DEFAULT_PASSWORD)
        page.get_by_label("确认密码", exact=True).fill(DEFAULT_PASSWORD)
        page.get_by_label("验证码", exact=True).fill(CAPTCHA)
        page.get_by_role("button", name="下一步").click()

        # 填写身份信息
        page.wait_for_url(f"{issuer}/register/identity")
        page.get_by_label("姓名", exact=True).fill(citizen.name)
        page.get_by_label("证件号", exact=True).fill(citizen.id_number)
        assert page.get_by_label("出生日期").input_value() == citizen.birthdate.isoformat()
        page.get_by_role("button", name="下一步").click()

        # 填写验证信息: the sandbox bank and the SMS outbox
        page.wait_for_url(f"{issuer}/register/verification")
        page.get_by_label("银行", exact=True).select_option(citizen.bank_code)
        page.get_by_label("银行账号", exact=True).fill(citizen.card_number)
        page.get_by_label("手机号码", exact=True).fill(citizen.phone)
        page.locator("input[name=consent]").check()  # the card's separate consent
        page.get_by_role("button", name="发送短信验证").click()
        page.get_by_text(re.compile(r"短信验证码已发送至")).wait_for()
        page.get_by_label("短信验证码", exact=True).fill(outbox_sms(issuer, citizen.phone))
        shot("2-verification")
        page.get_by_role("button", name="下一步").click()

        # 注册成功, with the advice to set 密保问题 at once, then back to the exam service
        page.wait_for_url(f"{issuer}/register/done")
        assert page.get_by_role("link", name="“密保工具”").get_attribute("href") == "/account/security-questions"
        shot("3-done")
        page.get_by_role("link", name="返回考生服务系统").click()

        # back at the exam service, signed in, with the claims it received
        page.wait_for_url(f"{exam_url}/candidate")
        content = page.content()
        assert "考生信息" in content and citizen.name in content and USERNAME in content
        assert "已通过银行实名认证" in content
        assert citizen.id_number[:3] + "*" * 11 + citizen.id_number[-4:] in content
        assert citizen.id_number not in content
        shot("3-candidate")

        # 用户信息维护: the platform's user centre, no login page on the way (single sign-on)
        page.get_by_role("link", name="用户信息维护").click()
        page.wait_for_url(f"{issuer}/account/")
        assert "查看用户信息" in page.content() and USERNAME in page.content()
        shot("4-account")

        # 退出 on the exam service logs out of both
        page.goto(f"{exam_url}/candidate")
        page.get_by_role("button", name="退出").click()
        page.wait_for_url(re.compile(re.escape(f"{exam_url}/logged-out?state=")))
        assert "您已退出考生服务系统和统一用户平台" in page.content()
        shot("5-logged-out")
        page.goto(f"{exam_url}/candidate")
        page.wait_for_url(f"{exam_url}/")
        assert "考生登录" in page.content()
        page.goto(f"{issuer}/account/")
        page.wait_for_url(f"{issuer}/login")
