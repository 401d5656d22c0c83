"""The exam service signs candidates in through the platform and keeps a record keyed by ``sub``."""

from __future__ import annotations

import json

from datetime import datetime, timedelta, timezone

from sqlalchemy import select, update

from clients.exam.extensions import db as exam_db
from clients.exam.models import Candidate, CandidateLogin

from .conftest import Browser, query, sign_in


def test_login_page_offers_the_platform_and_its_pages(exam):
    page = Browser().get(exam.exam.url + "/")
    assert page.status_code == 200
    html = page.text
    for label in ("登录", "立即注册", "用户信息维护", "忘记用户名？", "忘记密码？"):
        assert f">{label}</a>" in html, label
    assert f'href="{exam.issuer}/account/"' in html
    # the recovery links start an authorization request of the exam service (see test_recovery_return)
    assert 'href="/forgot-username"' in html and 'href="/forgot-password"' in html


def test_login_sends_a_code_flow_request_with_pkce_nonce_and_state(exam):
    browser = Browser()
    response = browser.get(f"{exam.exam.url}/login", follow=False)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(f"{exam.issuer}/oauth/authorize?")
    params = query(location)
    assert params["response_type"] == "code"
    assert params["client_id"] == exam.client_id
    assert params["redirect_uri"] == f"{exam.exam.url}/auth/callback"
    assert params["scope"] == "openid profile phone realname"
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert len(params["state"]) >= 20 and len(params["nonce"]) >= 20
    assert "prompt" not in params
    # the PKCE verifier and nonce stay on the server: the exam cookie holds no secret of the flow
    cookie = browser.session.cookies.get("exam_session")
    app = exam.exam.app
    stored = json.dumps(app.session_interface.get_signing_serializer(app).loads(cookie))  # what it carries
    assert cookie and params["nonce"] not in stored and "verifier" not in stored


def test_candidate_signs_in_and_sees_masked_claims(exam, citizen):
    browser = Browser()
    page = sign_in(browser, exam, citizen["username"])
    html = page.text
    assert "考生信息" in html and "王𠮷" in html  # a character outside the BMP survives
    assert citizen["username"] in html
    assert "440*" in html and "2136" in html and citizen["id_number"] not in html
    assert "138****8000" in html and citizen["phone"] not in html
    assert "居民身份证" in html and "已通过银行实名认证" in html
    assert "urn:" not in html  # acr shown in words

    with exam.exam.app.app_context():
        candidate = exam_db.session.scalar(select(Candidate).where(Candidate.sub == citizen["sub"]))
        assert candidate is not None and candidate.login_count == 1
        assert candidate.id_number_masked == "440***********2136"
        login = exam_db.session.scalar(select(CandidateLogin).where(CandidateLogin.sub == citizen["sub"]))
        assert login.platform_sid  # the platform's session id, for back-channel logout
    exam_db_bytes = exam.database_file.read_bytes()
    # personal numbers never reach the exam database in the clear (the ID token is sealed)
    assert citizen["id_number"].encode() not in exam_db_bytes
    assert citizen["phone"].encode() not in exam_db_bytes


def test_candidate_record_is_keyed_by_sub_across_logins(exam, citizen):
    first = Browser()
    sign_in(first, exam, citizen["username"])
    second = Browser()
    page = sign_in(second, exam, citizen["username"])
    assert "<dd>2</dd>" in page.text  # 登录次数
    with exam.exam.app.app_context():
        rows = exam_db.session.scalars(select(Candidate)).all()
        assert [c.sub for c in rows] == [citizen["sub"]]
        assert rows[0].login_count == 2
        assert exam_db.session.query(CandidateLogin).count() == 2  # two browsers, two sessions


def test_without_realname_the_id_number_is_not_shown(exam_factory, citizen):
    exam = exam_factory(scope="openid profile")  # the administrator did not allow realname
    page = sign_in(Browser(), exam, citizen["username"])
    assert "未授权本系统读取" in page.text
    assert "2136" not in page.text and "居民身份证" not in page.text
    with exam.exam.app.app_context():
        candidate = exam_db.session.scalar(select(Candidate))
        assert candidate.id_number_masked is None and candidate.real_name_verified is None


def test_candidate_page_requires_a_local_session(exam):
    response = Browser().get(f"{exam.exam.url}/candidate", follow=False)
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_single_sign_on_to_the_platform_user_centre(exam, citizen):
    browser = Browser()
    sign_in(browser, exam, citizen["username"])
    account = browser.get(f"{exam.issuer}/account/")
    assert account.url == f"{exam.issuer}/account/"  # no login page on the way
    assert "查看用户信息" in account.text


def test_idle_local_session_expires(exam, citizen):
    browser = Browser()
    sign_in(browser, exam, citizen["username"])
    with exam.exam.app.app_context():
        idle = exam.exam.app.config["SESSION_IDLE_TIMEOUT"]
        exam_db.session.execute(update(CandidateLogin).values(
            last_seen_at=datetime.now(timezone.utc) - timedelta(seconds=idle + 1)))
        exam_db.session.commit()
    response = browser.get(f"{exam.exam.url}/candidate", follow=False)
    assert response.status_code == 302
    with exam.exam.app.app_context():
        assert exam_db.session.query(CandidateLogin).count() == 0


def test_session_cookie_is_separate_from_the_platform_cookie(exam, citizen):
    browser = Browser()
    sign_in(browser, exam, citizen["username"])
    names = {cookie.name for cookie in browser.session.cookies}
    assert {"exam_session", "idp_session"} <= names
