"""Recovery started from the exam service ends back at the exam service, signed in: the pending
authorization request survives 忘记密码."""

from __future__ import annotations

import re

import requests

from ..helpers import CAPTCHA
from .conftest import CITIZEN, Browser

NEW_PASSWORD = "Kaoshi#2027reset"


def _code(issuer: str, phone: str) -> str:
    outbox = requests.get(f"{issuer}/dev/sms-outbox.json", params={"phone": phone}, timeout=10).json()
    return re.search(r"验证码为(\d{6})", outbox["messages"][0]["text"]).group(1)


def test_forgot_password_from_the_exam_login_returns_to_the_exam_service(exam, citizen):
    browser = Browser()
    login_page = browser.get(f"{exam.exam.url}/login")  # the platform's login, an authorization request pending
    assert login_page.url == f"{exam.issuer}/login"
    start = browser.get(f"{exam.issuer}/recovery/password")
    method = browser.submit(start, {"username": citizen["username"], "captcha": CAPTCHA, "submit": "1"})
    assert method.url == f"{exam.issuer}/recovery/password/method", method.text[:300]
    verify = browser.submit(method, {"method": "id_sms"})
    assert verify.url == f"{exam.issuer}/recovery/password/verify/id", verify.text[:300]
    identity = {"id_type": "resident_id", "id_number": citizen["id_number"], "phone": citizen["phone"]}
    sent = browser.submit(verify, {**identity, "send_sms": "1"})
    reset = browser.submit(sent, {**identity, "sms_code": _code(exam.issuer, citizen["phone"]), "submit": "1"})
    assert reset.url == f"{exam.issuer}/recovery/password/reset", reset.text[:300]
    landed = browser.submit(reset, {"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD,
                                    "captcha": CAPTCHA, "submit": "1"})
    assert landed.url == f"{exam.exam.url}/candidate", landed.text[:300]
    assert CITIZEN["username"] in landed.text
