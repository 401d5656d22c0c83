"""退出 (RP-initiated logout) ends both sessions; a logout at the platform ends the exam session
through the back channel."""

from __future__ import annotations

from clients.exam.extensions import db as exam_db
from clients.exam.models import CandidateLogin

from ..helpers import form_fields
from .conftest import Browser, sign_in


def test_logout_ends_the_exam_session_and_the_platform_session(exam, citizen):
    browser = Browser()
    page = sign_in(browser, exam, citizen["username"])
    handover = browser.submit(page, {}, index=0)  # the 退出 form
    assert handover.url == f"{exam.exam.url}/logout"
    assert "正在退出" in handover.text
    # the ID token goes to the platform in a form post, never in a URL
    fields = form_fields(handover.text)
    assert set(fields) == {"id_token_hint", "post_logout_redirect_uri", "client_id", "state"}
    assert fields["post_logout_redirect_uri"] == f"{exam.exam.url}/logged-out"
    done = browser.submit(handover, {})
    assert done.url.startswith(f"{exam.exam.url}/logged-out?state=")
    assert "您已退出考生服务系统和统一用户平台" in done.text

    assert browser.get(f"{exam.exam.url}/candidate", follow=False).status_code == 302
    account = browser.get(f"{exam.issuer}/account/", follow=False)
    assert account.status_code == 302 and account.headers["Location"].endswith("/login")
    with exam.exam.app.app_context():
        assert exam_db.session.query(CandidateLogin).count() == 0


def test_logout_needs_the_csrf_token(exam, citizen):
    browser = Browser()
    sign_in(browser, exam, citizen["username"])
    forged = browser.post(f"{exam.exam.url}/logout", {}, follow=False)
    assert forged.status_code == 400 and "页面已过期或请求来源无法确认" in forged.text
    assert browser.get(f"{exam.exam.url}/candidate", follow=False).status_code == 200  # still signed in


def test_logged_out_page_with_a_forged_state_claims_nothing_about_the_platform(exam):
    page = Browser().get(f"{exam.exam.url}/logged-out?state=forged")
    assert page.status_code == 200
    assert "您已退出考生服务系统。" in page.text and "统一用户平台。" not in page.text


def test_logout_at_the_platform_ends_the_exam_session_through_the_back_channel(exam, citizen):
    browser = Browser()
    sign_in(browser, exam, citizen["username"])
    elsewhere = Browser()  # the same candidate on another device stays signed in
    sign_in(elsewhere, exam, citizen["username"])

    logout_page = browser.get(f"{exam.issuer}/logout")
    done = browser.submit(logout_page, {})
    assert "您已退出登录" in done.text

    assert browser.get(f"{exam.exam.url}/candidate", follow=False).status_code == 302
    assert elsewhere.get(f"{exam.exam.url}/candidate", follow=False).status_code == 200
    with exam.exam.app.app_context():
        assert exam_db.session.query(CandidateLogin).count() == 1


def test_password_change_at_the_platform_signs_the_candidate_out_everywhere(exam, citizen):
    first, second = Browser(), Browser()
    sign_in(first, exam, citizen["username"])
    sign_in(second, exam, citizen["username"])
    from ..conftest import DEFAULT_PASSWORD
    from ..helpers import CAPTCHA

    form = first.get(f"{exam.issuer}/account/password")
    changed = first.submit(form, {"current_password": DEFAULT_PASSWORD, "new_password": "Xin#Mima2026",
                                  "confirm_password": "Xin#Mima2026", "captcha": CAPTCHA})
    assert changed.status_code == 200, changed.text[:400]
    for browser in (first, second):
        assert browser.get(f"{exam.exam.url}/candidate", follow=False).status_code == 302
