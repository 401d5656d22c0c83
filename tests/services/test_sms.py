"""SMS codes (SPEC §6) and the senders: the outbox, and the HTTP gateway adapter against the
sandbox gateway on a real HTTP server."""

from __future__ import annotations

import re
import time

import pytest
import requests

from idp.extensions import redis_store
from idp.sandbox.sms import MESSAGES_PATH, SmsGatewaySandbox
from idp.services.verification import sms
from idp.services.verification.sms import (
    HttpSmsSender,
    OutboxSmsSender,
    SmsCode,
    SmsCodeExhausted,
    SmsCodeExpired,
    SmsCodeInvalid,
    SmsDailyCapReached,
    SmsResendTooSoon,
    SmsUnavailable,
)

from ..conftest import clean_external_db, make_app
from ..live import free_port, serve

PHONE = "13800138000"
OTHER = "13900139000"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0  # 2027-01-15 08:00 UTC

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def ctx(app):
    with app.test_request_context("/"):
        yield app


@pytest.fixture
def clock():
    return Clock()


def last_code(phone: str = PHONE) -> str:
    text = OutboxSmsSender.messages(phone)[0]["text"]
    return re.search(r"验证码为(\d+)", text).group(1)


def test_code_is_six_digits_and_works_once(ctx, clock):
    codes = SmsCode("register", clock=clock)
    sent = codes.send(PHONE)
    assert (sent.expires_in, sent.resend_after, sent.masked_phone) == (300, 60, "138****8000")
    code = last_code()
    assert re.fullmatch(r"\d{6}", code)
    text = OutboxSmsSender.messages(PHONE)[0]["text"]
    assert text == f"【人社局统一用户平台】您的注册验证码为{code}，5分钟内有效。请勿泄露给他人。"
    codes.verify(PHONE, code)
    with pytest.raises(SmsCodeInvalid):
        codes.verify(PHONE, code)  # single use


def test_redis_holds_neither_the_code_nor_the_phone(ctx, clock):
    SmsCode("register", clock=clock).send(PHONE)
    code = last_code()
    for key in redis_store.keys("sms:*"):
        assert PHONE.encode() not in key
        if redis_store.type(key) == b"hash":
            values = b" ".join(redis_store.hgetall(key).values())
            assert code.encode() not in values and PHONE.encode() not in values


def test_valid_for_five_minutes(ctx, clock):
    codes = SmsCode("register", clock=clock)
    codes.send(PHONE)
    clock.advance(299)
    codes.verify(PHONE, last_code())
    clock.advance(61)
    codes.send(PHONE)
    clock.advance(301)
    with pytest.raises(SmsCodeExpired) as caught:
        codes.verify(PHONE, last_code())
    assert caught.value.message == "短信验证码已失效，请重新获取"


def test_five_tries_per_code(ctx, clock):
    codes = SmsCode("register", clock=clock)
    codes.send(PHONE)
    right = last_code()
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(4):
        with pytest.raises(SmsCodeInvalid) as caught:
            codes.verify(PHONE, wrong)
        assert type(caught.value) is SmsCodeInvalid
    with pytest.raises(SmsCodeExhausted):
        codes.verify(PHONE, wrong)
    with pytest.raises(SmsCodeInvalid):
        codes.verify(PHONE, right)  # burnt
    # malformed input counts as a try too
    clock.advance(60)
    codes.send(PHONE)
    for junk in ("", "12345", "abcdef", "1234567"):
        with pytest.raises(SmsCodeInvalid):
            codes.verify(PHONE, junk)
    codes.verify(PHONE, last_code())  # fifth try, right code


def test_resend_after_sixty_seconds_replaces_the_code(ctx, clock):
    codes = SmsCode("register", clock=clock)
    codes.send(PHONE)
    first = last_code()
    clock.advance(30)
    with pytest.raises(SmsResendTooSoon) as caught:
        codes.send(PHONE)
    assert caught.value.seconds == 30
    assert caught.value.message == "短信验证码已发送，请30秒后再重新获取"
    clock.advance(30)
    codes.send(PHONE)
    second = last_code()
    if first != second:
        with pytest.raises(SmsCodeInvalid):
            codes.verify(PHONE, first)
    codes.verify(PHONE, second)


def test_bound_to_purpose_and_phone(ctx, clock):
    SmsCode("register", clock=clock).send(PHONE)
    code = last_code()
    with pytest.raises(SmsCodeInvalid):
        SmsCode("recovery", clock=clock).verify(PHONE, code)
    with pytest.raises(SmsCodeInvalid):
        SmsCode("register", clock=clock).verify(OTHER, code)
    SmsCode("register", clock=clock).verify(PHONE, code)
    # another purpose has its own cooldown, but the daily cap is per phone
    SmsCode("recovery", clock=clock).send(PHONE)
    assert OutboxSmsSender.messages(PHONE)[0]["purpose"] == "recovery"
    assert "找回账号验证码" in OutboxSmsSender.messages(PHONE)[0]["text"]


def test_unknown_purpose_is_a_programming_error(ctx):
    with pytest.raises(ValueError):
        SmsCode("whatever")


def test_daily_cap_per_phone(ctx, clock):
    cap = ctx.config["SMS_DAILY_CAP"]
    assert cap == 10
    for n in range(cap):
        SmsCode("register" if n % 2 else "recovery", clock=clock).send(PHONE)
        clock.advance(61)
    with pytest.raises(SmsDailyCapReached) as caught:
        SmsCode("register", clock=clock).send(PHONE)
    assert caught.value.message == "该手机号今日获取短信验证码的次数已达上限，请明天再试"
    SmsCode("register", clock=clock).send(OTHER)  # another phone is not affected
    clock.advance(24 * 3600)
    SmsCode("register", clock=clock).send(PHONE)  # a new day


def test_outbox_newest_first_and_per_phone(ctx, clock):
    SmsCode("register", clock=clock).send(PHONE)
    SmsCode("register", clock=clock).send(OTHER)
    clock.advance(61)
    SmsCode("recovery", clock=clock).send(PHONE)
    everything = OutboxSmsSender.messages()
    assert [m["phone"] for m in everything] == [PHONE, OTHER, PHONE]
    mine = OutboxSmsSender.messages(PHONE)
    assert [m["purpose"] for m in mine] == ["recovery", "register"]


def test_audit_records_sends_without_the_phone_or_code(ctx, clock):
    from sqlalchemy import select

    from idp.extensions import db
    from idp.models import AuditEvent

    SmsCode("register", clock=clock).send(PHONE, actor="someone")
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.event == "sms.sent")).one()
    assert (event.outcome, event.actor, event.details) == ("success", "someone", {"purpose": "register"})


# -- the HTTP gateway ---------------------------------------------------------------------------------
@pytest.fixture
def gateway():
    sandbox = SmsGatewaySandbox("gw-key")
    port = free_port()
    with serve(sandbox, port) as url:
        yield url + MESSAGES_PATH, sandbox


def test_http_sender_delivers_through_the_gateway(ctx, gateway, clock):
    url, sandbox = gateway
    SmsCode("register", clock=clock, sender=HttpSmsSender(url, "gw-key")).send(PHONE)
    assert len(sandbox.messages) == 1
    message = sandbox.messages[0]
    assert message["to"] == PHONE and re.search(r"验证码为\d{6}", message["text"])
    assert OutboxSmsSender.messages(PHONE) == []  # nothing went to the development outbox
    listed = requests.get(url, params={"to": PHONE}, headers={"Authorization": "Bearer gw-key"}, timeout=5).json()
    assert listed["messages"][0]["text"] == message["text"]


def test_gateway_deduplicates_a_repeated_request_id(gateway):
    url, sandbox = gateway
    body = {"request_id": "r1", "to": PHONE, "text": "x"}
    headers = {"Authorization": "Bearer gw-key"}
    first = requests.post(url, json=body, headers=headers, timeout=5)
    again = requests.post(url, json=body, headers=headers, timeout=5)
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json() and len(sandbox.messages) == 1


@pytest.mark.parametrize("problem", ["wrong_key", "gateway_error", "down", "slow"])
def test_gateway_failure_leaves_no_code_and_costs_no_quota(ctx, clock, problem):
    sandbox = SmsGatewaySandbox("gw-key", fail_with=500 if problem == "gateway_error" else None,
                                latency=1.5 if problem == "slow" else 0)
    port = free_port()
    with serve(sandbox, port) as base:
        url = (base if problem != "down" else f"http://127.0.0.1:{free_port()}") + MESSAGES_PATH
        key = "not-the-key" if problem == "wrong_key" else "gw-key"
        codes = SmsCode("register", clock=clock, sender=HttpSmsSender(url, key, timeout=0.3))
        started = time.monotonic()
        with pytest.raises(SmsUnavailable) as caught:
            codes.send(PHONE)
        assert time.monotonic() - started < 1.2
        assert caught.value.message == "短信发送失败，请稍后再试"
        assert not redis_store.keys("sms:code:*") and not redis_store.keys("sms:resend:*")
        assert codes.sent_today(PHONE) == 0
        # fixed gateway: the citizen can ask again at once
        working = SmsGatewaySandbox("gw-key")
        with serve(working, free_port()) as fixed:
            SmsCode("register", clock=clock, sender=HttpSmsSender(fixed + MESSAGES_PATH, "gw-key")).send(PHONE)
        assert len(working.messages) == 1


def test_settings_choose_the_http_sender(keys_dir, gateway):
    url, sandbox = gateway
    app = make_app(keys_dir, SMS_BACKEND="http", SMS_URL=url, SMS_KEY="gw-key")
    try:
        with app.test_request_context("/"):
            assert isinstance(sms.sms_sender(), HttpSmsSender)
            SmsCode("register").send(PHONE)
        assert [m["to"] for m in sandbox.messages] == [PHONE]
    finally:
        clean_external_db(app)


def test_http_sender_needs_url_and_key():
    with pytest.raises(ValueError):
        HttpSmsSender("", "key")
    with pytest.raises(ValueError):
        HttpSmsSender("http://127.0.0.1:1/v1/messages", "")


# -- budgets handed in by the caller (a flow's SMS budget) --------------------------------------------
class FlowSmsBudget(sms.UserError):
    message = "本次最多获取{amount}次短信验证码"
    status = 429


def test_a_press_that_sent_nothing_spends_no_budget(ctx, clock):
    from idp.services.limits import KeyedLimit

    ctx.config["TEST_FLOW_SMS"] = "2 per hour"
    budget = KeyedLimit("TEST_FLOW_SMS", FlowSmsBudget)
    codes = SmsCode("register", clock=clock)
    codes.send(PHONE, charges=(budget.charge("flow"),))
    for _ in range(3):  # cooldown: refused before anything was taken
        with pytest.raises(SmsResendTooSoon):
            codes.send(PHONE, charges=(budget.charge("flow"),))
    assert budget.used("flow") == 1 and codes.sent_today(PHONE) == 1
    down = SmsCode("register", clock=clock, sender=HttpSmsSender(f"http://127.0.0.1:{free_port()}/x", "k", timeout=0.3))
    clock.advance(ctx.config["SMS_RESEND_AFTER"])
    with pytest.raises(SmsUnavailable):
        down.send(PHONE, charges=(budget.charge("flow"),))
    assert budget.used("flow") == 1 and codes.sent_today(PHONE) == 1  # the gateway did not take it
    codes.send(PHONE, charges=(budget.charge("flow"),))  # at once: no cooldown left behind
    clock.advance(ctx.config["SMS_RESEND_AFTER"])
    with pytest.raises(FlowSmsBudget) as refused:
        codes.send(PHONE, charges=(budget.charge("flow"),))
    assert refused.value.message == "本次最多获取2次短信验证码"
    assert codes.sent_today(PHONE) == 2  # the daily cap was not touched by the refused press


def test_policy_comes_from_the_settings(ctx, clock):
    ctx.config.update(SMS_CODE_LENGTH=8, SMS_CODE_TTL=600, SMS_RESEND_AFTER=90, SMS_MAX_TRIES=2)
    codes = SmsCode("register", clock=clock)
    sent = codes.send(PHONE)
    assert (sent.expires_in, sent.resend_after) == (600, 90)
    assert re.fullmatch(r"\d{8}", last_code()) and "10分钟内有效" in OutboxSmsSender.messages(PHONE)[0]["text"]
    clock.advance(30)
    with pytest.raises(SmsResendTooSoon) as caught:
        codes.send(PHONE)
    assert caught.value.seconds == 60
    with pytest.raises(SmsCodeInvalid):
        codes.verify(PHONE, "0" * 8 if last_code() != "0" * 8 else "1" * 8)
    with pytest.raises(SmsCodeExhausted):
        codes.verify(PHONE, "0" * 8 if last_code() != "0" * 8 else "1" * 8)


def test_parallel_guesses_get_exactly_the_tries(ctx, clock, app):
    import threading

    codes = SmsCode("register", clock=clock)
    codes.send(PHONE)
    right = last_code()
    wrong = "000000" if right != "000000" else "111111"
    outcomes: list[str] = []
    compared: list[int] = []
    barrier = threading.Barrier(20)
    real_digest = codes._digest

    def counting_digest(phone, code):
        compared.append(1)
        return real_digest(phone, code)

    codes._digest = counting_digest

    def guess():
        with app.test_request_context("/"):
            barrier.wait()
            try:
                codes.verify(PHONE, wrong)
            except SmsCodeExhausted:
                outcomes.append("exhausted")
            except SmsCodeInvalid:
                outcomes.append("invalid")

    threads = [threading.Thread(target=guess) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(compared) == app.config["SMS_MAX_TRIES"]  # no more guesses compared than the tries
    assert len(outcomes) == 20 and "exhausted" in outcomes
    with pytest.raises(SmsCodeInvalid):
        codes.verify(PHONE, right)  # burnt
