"""Recovery started from the exam service ends back at the exam service, signed in: the pending
authorization request survives 忘记密码 and 忘记用户名, whether the citizen began at the platform's
login page or at the exam service's own links (which start an authorization request with
``screen_hint``)."""

from __future__ import annotations

import requests

from ..conftest import DEFAULT_PASSWORD
from ..helpers import CAPTCHA
from ..live import outbox_sms
from .conftest import CITIZEN, Browser, query, sign_in

NEW_PASSWORD = "Kaoshi#2027reset"


def _reset_password(browser: Browser, exam, citizen, start: requests.Response) -> requests.Response:
    """忘记密码 from its first page to 重置密码 submitted; returns where the browser lands."""
    method = browser.submit(start, {"username": citizen["username"], "captcha": CAPTCHA, "submit": "1"})
    assert method.url == f"{exam.issuer}/recovery/password/method", method.text[:300]
    verify = browser.submit(method, {"method": "id_sms"})
    assert verify.url == f"{exam.issuer}/recovery/password/verify/id", verify.text[:300]
    identity = {"id_type": "resident_id", "id_number": citizen["id_number"], "phone": citizen["phone"]}
    sent = browser.submit(verify, {**identity, "send_sms": "1"})
    reset = browser.submit(sent, {**identity, "sms_code": outbox_sms(exam.issuer, citizen["phone"]), "submit": "1"})
    assert reset.url == f"{exam.issuer}/recovery/password/reset", reset.text[:300]
    return browser.submit(reset, {"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD,
                                  "captcha": CAPTCHA, "submit": "1"})


def test_forgot_password_from_the_exam_login_returns_to_the_exam_service(exam, citizen):
    browser = Browser()
    login_page = browser.get(f"{exam.exam.url}/login")  # the platform's login, an authorization request pending
    assert login_page.url == f"{exam.issuer}/login"
    landed = _reset_password(browser, exam, citizen, browser.get(f"{exam.issuer}/recovery/password"))
    assert landed.url == f"{exam.exam.url}/candidate", landed.text[:300]
    assert CITIZEN["username"] in landed.text


def test_the_exam_services_own_forgot_password_link_returns_there_signed_in(exam, citizen):
    browser = Browser()
    to_platform = browser.get(f"{exam.exam.url}/forgot-password", follow=False)
    authorize = query(to_platform.headers["Location"])
    assert authorize["screen_hint"] == "forgot_password" and authorize["client_id"] == exam.client_id
    start = browser.get(to_platform.headers["Location"])
    assert start.url == f"{exam.issuer}/recovery/password", start.text[:300]  # not the login page
    landed = _reset_password(browser, exam, citizen, start)
    assert landed.url == f"{exam.exam.url}/candidate", landed.text[:300]
    assert CITIZEN["username"] in landed.text
    # the new password is the one that works now
    again = Browser()
    assert again.platform_login(again.get(f"{exam.exam.url}/login"), citizen["username"],
                                NEW_PASSWORD).url == f"{exam.exam.url}/candidate"


def test_the_exam_services_own_forgot_username_link_returns_there_after_the_login(exam, citizen):
    browser = Browser()
    start = browser.get(f"{exam.exam.url}/forgot-username")
    assert start.url == f"{exam.issuer}/recovery/username", start.text[:300]
    sms = browser.submit(start, {"name": citizen["name"], "user_type": "personal", "id_type": "resident_id",
                                 "id_number": citizen["id_number"], "captcha": CAPTCHA, "submit": "1"})
    assert sms.url == f"{exam.issuer}/recovery/username/sms", sms.text[:300]
    sent = browser.submit(sms, {"send_sms": "1"})
    done = browser.submit(sent, {"sms_code": outbox_sms(exam.issuer, citizen["phone"]), "submit": "1"})
    assert done.url == f"{exam.issuer}/recovery/username/done", done.text[:300]
    username = outbox_sms(exam.issuer, citizen["phone"], r"用户名为：(\w+)")  # the newest message: the username
    assert username == citizen["username"]
    login_page = browser.get(f"{exam.issuer}/login")  # 立即登录
    landed = browser.platform_login(login_page, username)
    assert landed.url == f"{exam.exam.url}/candidate", landed.text[:300]


def test_a_valid_platform_session_answers_the_recovery_link_at_once(exam, citizen):
    browser = Browser()
    sign_in(browser, exam, citizen["username"])
    # the exam service forgets the citizen (its own session only): the platform still knows them
    browser.session.cookies.clear(domain="127.0.0.1", path="/", name="exam_session")
    assert "考生登录" in browser.get(f"{exam.exam.url}/").text
    to_platform = browser.get(f"{exam.exam.url}/forgot-password", follow=False)
    assert "screen_hint=forgot_password" in to_platform.headers["Location"]
    landed = browser.get(to_platform.headers["Location"])
    assert landed.url == f"{exam.exam.url}/candidate", landed.text[:300]


def test_the_hint_is_not_carried_into_the_resumed_request(exam, citizen):
    browser = Browser()
    assert browser.get(f"{exam.exam.url}/forgot-password").url == f"{exam.issuer}/recovery/password"
    login_page = browser.get(f"{exam.issuer}/login")  # the citizen remembers after all
    resumed = browser.submit(login_page, {"username": citizen["username"], "password": DEFAULT_PASSWORD,
                                          "captcha": CAPTCHA}, follow=False)
    assert "/oauth/authorize?" in resumed.headers["Location"]
    assert "screen_hint" not in query(resumed.headers["Location"])
    assert browser.get(exam.issuer + resumed.headers["Location"]).url == f"{exam.exam.url}/candidate"


def test_an_unknown_hint_shows_the_login_page(exam):
    browser = Browser()
    to_platform = browser.get(f"{exam.exam.url}/forgot-username", follow=False).headers["Location"]
    assert "screen_hint=forgot_username" in to_platform
    landed = browser.get(to_platform.replace("screen_hint=forgot_username", "screen_hint=signup"))
    assert landed.url == f"{exam.issuer}/login", landed.url
