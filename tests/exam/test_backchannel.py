"""The back-channel logout endpoint acts only on a logout token that fully verifies
(Back-Channel Logout 1.0 §2.6), signed here with the platform's real key unless a test says not."""

from __future__ import annotations

import base64
import functools
import json
import secrets
import time

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import RSAKey

from clients.exam.extensions import db as exam_db
from clients.exam.models import CandidateLogin
from idp.oauth.keys import key_store

from .conftest import Browser, sign_in

EVENT = "http://schemas.openid.net/event/backchannel-logout"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class LogoutTokens:
    def __init__(self, exam) -> None:
        self.exam = exam
        with exam.provider.app.app_context():
            self.key = key_store().current()

    def claims(self, **changes) -> dict:
        now = int(time.time())
        claims = {"iss": self.exam.issuer, "aud": self.exam.client_id, "iat": now, "exp": now + 120,
                  "jti": secrets.token_urlsafe(12), "events": {EVENT: {}}}
        claims.update(changes)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(self, claims: dict, *, key=None, kid: str | None = None, typ: str | None = "logout+jwt") -> str:
        header = {"alg": self.key.alg, "kid": kid or self.key.kid}
        if typ:
            header["typ"] = typ
        return jwt.encode(header, claims, key or self.key.key)

    def post(self, token: str | None) -> requests.Response:
        data = {"logout_token": token} if token is not None else {}
        return requests.post(f"{self.exam.exam.url}/backchannel-logout", data=data, timeout=10)


@pytest.fixture
def two_sessions(exam, citizen):
    """The same candidate signed in from two browsers: two platform sessions (sids)."""
    first, second = Browser(), Browser()
    sign_in(first, exam, citizen["username"])
    sign_in(second, exam, citizen["username"])
    with exam.exam.app.app_context():
        sids = [row.platform_sid for row in exam_db.session.query(CandidateLogin).order_by(CandidateLogin.id)]
    assert len(set(sids)) == 2
    return first, second, sids


def signed_in(browser: Browser, exam) -> bool:
    return browser.get(f"{exam.exam.url}/candidate", follow=False).status_code == 200


def test_logout_token_with_sid_ends_that_session_only(exam, citizen, two_sessions):
    first, second, sids = two_sessions
    tokens = LogoutTokens(exam)
    response = tokens.post(tokens.sign(tokens.claims(sub=citizen["sub"], sid=sids[0])))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert not signed_in(first, exam)
    assert signed_in(second, exam)


def test_logout_token_with_only_sub_ends_every_session_of_the_candidate(exam, citizen, two_sessions):
    first, second, _ = two_sessions
    tokens = LogoutTokens(exam)
    assert tokens.post(tokens.sign(tokens.claims(sub=citizen["sub"]))).status_code == 200
    assert not signed_in(first, exam) and not signed_in(second, exam)


def test_sid_of_another_user_ends_nothing(exam, citizen, two_sessions):
    first, second, sids = two_sessions
    tokens = LogoutTokens(exam)
    assert tokens.post(tokens.sign(tokens.claims(sub="someone-else", sid=sids[0]))).status_code == 200
    assert signed_in(first, exam) and signed_in(second, exam)


@functools.cache
def _impostor_key() -> RSAKey:
    return RSAKey.generate_key(2048, private=True)


def _defective(tokens: LogoutTokens, defect: str, sub: str, sid: str) -> str:
    good = dict(sub=sub, sid=sid)
    impostor = _impostor_key()
    now = int(time.time())
    if defect == "bad_signature":
        return tokens.sign(tokens.claims(**good), key=impostor)  # the platform's kid, another key
    if defect == "unknown_kid":
        return tokens.sign(tokens.claims(**good), key=impostor, kid="not-published")
    if defect == "alg_none":
        header = _b64(json.dumps({"alg": "none", "typ": "logout+jwt"}).encode())
        return f"{header}.{_b64(json.dumps(tokens.claims(**good)).encode())}."
    if defect == "wrong_typ":
        return tokens.sign(tokens.claims(**good), typ="JWT")
    if defect == "wrong_issuer":
        return tokens.sign(tokens.claims(iss="http://127.0.0.1:9", **good))
    if defect == "wrong_audience":
        return tokens.sign(tokens.claims(aud="another-system", **good))
    if defect == "expired":
        return tokens.sign(tokens.claims(iat=now - 600, exp=now - 300, **good))
    if defect == "stale_iat":
        return tokens.sign(tokens.claims(iat=now - 3600, exp=now + 60, **good))
    if defect == "no_jti":
        return tokens.sign(tokens.claims(jti=None, **good))
    if defect == "no_events":
        return tokens.sign(tokens.claims(events=None, **good))
    if defect == "wrong_event":
        return tokens.sign(tokens.claims(events={"http://example.test/other": {}}, **good))
    if defect == "event_not_object":
        return tokens.sign(tokens.claims(events={EVENT: "yes"}, **good))
    if defect == "nonce":
        return tokens.sign(tokens.claims(nonce="n-1", **good))
    if defect == "neither_sub_nor_sid":
        return tokens.sign(tokens.claims())
    if defect == "not_a_jwt":
        return "not-a-jwt"
    raise AssertionError(defect)


DEFECTS = ["bad_signature", "unknown_kid", "alg_none", "wrong_typ", "wrong_issuer", "wrong_audience", "expired",
           "stale_iat", "no_jti", "no_events", "wrong_event", "event_not_object", "nonce", "neither_sub_nor_sid",
           "not_a_jwt"]


@pytest.mark.parametrize("defect", DEFECTS)
def test_logout_token_that_does_not_verify_ends_nothing(exam, citizen, defect):
    browser = Browser()
    sign_in(browser, exam, citizen["username"])
    with exam.exam.app.app_context():
        sid = exam_db.session.query(CandidateLogin).one().platform_sid
    tokens = LogoutTokens(exam)
    response = tokens.post(_defective(tokens, defect, citizen["sub"], sid))
    assert response.status_code == 400, defect
    assert response.json()["error"] == "invalid_request"
    assert signed_in(browser, exam), defect
    # control: the same session ends with a good token, so the refusal above was the defect's doing
    assert tokens.post(tokens.sign(tokens.claims(sub=citizen["sub"], sid=sid))).status_code == 200
    assert not signed_in(browser, exam)


def test_an_id_token_is_not_a_logout_token(exam, citizen):
    browser = Browser()
    sign_in(browser, exam, citizen["username"])
    with exam.exam.app.app_context():
        from clients.exam.sealing import seal

        id_token = seal().open(exam_db.session.query(CandidateLogin).one().id_token_sealed)
    response = LogoutTokens(exam).post(id_token)
    assert response.status_code == 400
    assert signed_in(browser, exam)


def test_a_replayed_logout_token_is_refused(exam, citizen):
    browser = Browser()
    sign_in(browser, exam, citizen["username"])
    tokens = LogoutTokens(exam)
    token = tokens.sign(tokens.claims(sub=citizen["sub"]))
    assert tokens.post(token).status_code == 200
    replay = tokens.post(token)
    assert replay.status_code == 400 and "replay" in replay.json()["error_description"]


def test_missing_logout_token(exam):
    response = LogoutTokens(exam).post(None)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_the_next_page_says_that_the_platform_session_ended(exam, citizen, two_sessions):
    first, second, sids = two_sessions
    ended = "您在统一用户平台的登录已结束"
    tokens = LogoutTokens(exam)
    assert tokens.post(tokens.sign(tokens.claims(sub=citizen["sub"], sid=sids[0]))).status_code == 200
    page = first.get(f"{exam.exam.url}/candidate")
    assert page.url == f"{exam.exam.url}/" and ended in page.text
    assert ended not in first.get(f"{exam.exam.url}/").text  # said once
    assert ended not in second.get(f"{exam.exam.url}/candidate").text  # the other session goes on
