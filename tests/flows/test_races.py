"""Flow budgets under parallel requests: thirty requests of one flow (one session cookie) at once
against a real threaded server.  Each budget is taken before the work, so exactly the budget gets
evaluated, however the requests interleave."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from limits import parse

from idp.extensions import db
from idp.models import SecurityAnswer
from idp.services import recovery as recovery_service
from idp.services import registration as registration_service
from idp.services.identity import passwords
from idp.services.verification import bank as bank_module

from ..conftest import make_app
from ..recovery.conftest import Recovery, make_citizen_account
from ..register.conftest import CITIZENS, Wizard, field_errors, page_fields

PARALLEL = 30


def _budget(app, setting: str) -> int:
    return parse(app.config[setting]).amount


class _Counted:
    """Wraps a function: counts the calls and holds each one a little, so that parallel requests
    overlap the way they do under load."""

    def __init__(self, function, hold: float = 0.2):
        self.function, self.hold, self.calls = function, hold, 0
        self._lock = threading.Lock()

    def __call__(self, *args, **kwargs):
        with self._lock:
            self.calls += 1
        time.sleep(self.hold)
        return self.function(*args, **kwargs)


def _in_parallel(live_server, test_client, path: str, forms: list[dict]) -> list[requests.Response]:
    """POST each form to ``path`` at once, all in the test client's session."""
    cookie = test_client.get_cookie("idp_session").value
    token = page_fields(test_client.get(path).data)["csrf_token"]

    def post(form):
        with requests.Session() as http:
            http.cookies.set("idp_session", cookie)
            return http.post(f"{live_server.url}{path}", data={**form, "csrf_token": token},
                             allow_redirects=False, timeout=30)

    with ThreadPoolExecutor(PARALLEL) as pool:
        return list(pool.map(post, forms))


def test_parallel_security_answers_evaluate_exactly_the_flow_budget(live_server, monkeypatch):
    app = live_server.app
    user = make_citizen_account(app, CITIZENS["demo"], "wangxm")
    with app.app_context():
        for position, (question, answer) in enumerate(
                (("mother_name", "李梅"), ("birthplace", "深圳"), ("first_pet", "旺财")), start=1):
            db.session.add(SecurityAnswer(user_id=user.id, position=position, question=question,
                                          answer_hash=passwords.hash_password(answer)))
        db.session.commit()
    client = app.test_client()
    driver = Recovery(client)
    driver.password_username("wangxm")
    assert driver.method("questions").headers["Location"] == "/recovery/password/verify/questions"

    counted = _Counted(recovery_service.answers_right)
    monkeypatch.setattr(recovery_service, "answers_right", counted)
    wrong = {"answer_1": "错", "answer_2": "错", "answer_3": "错", "submit": "1"}
    right = {"answer_1": "李梅", "answer_2": "深圳", "answer_3": "旺财", "submit": "1"}
    forms = [wrong] * (PARALLEL - 1) + [right]
    responses = _in_parallel(live_server, client, "/recovery/password/verify/questions", forms)

    budget = _budget(app, "FLOW_FAILURE_LIMIT")
    assert counted.calls == budget  # 16 of 30 on the old code
    # the right answer, sent last, came after the budget was spent: refused, never evaluated
    assert not any(r.headers.get("Location") == "/recovery/password/reset" for r in responses)
    assert {r.status_code for r in responses} <= {302, 400, 429}


def test_parallel_registration_posts_run_exactly_the_bank_budget(live_server, monkeypatch):
    app = live_server.app
    # the flow's budget is the subject: the bounds on concurrent bank calls (per worker, per
    # citizen) would otherwise refuse most of the burst first
    app.config.update(BANK_MAX_CONCURRENT=PARALLEL, BANK_MAX_CONCURRENT_PER_CITIZEN=PARALLEL)
    client = app.test_client()
    wizard = Wizard(client)
    demo = CITIZENS["demo"]
    wizard.through_identity(demo)
    assert wizard.send_sms(demo.phone).status_code == 200
    unknown_card = dict(bank_code=demo.bank_code, card_number="6217000000000000004", phone=demo.phone, consent="y")
    # proves the phone (the code is spent), one bank check: the card is unknown to the bank
    assert wizard.verification(demo, card_number=unknown_card["card_number"]).status_code == 400

    calls = []
    real = bank_module.bank_verifier

    def counting_verifier():
        verifier = real()

        class Counted:
            def verify(self, check, **options):
                calls.append(check.card_number)
                time.sleep(0.2)
                return verifier.verify(check, **options)

        return Counted()

    monkeypatch.setattr(registration_service, "bank_verifier", counting_verifier)
    forms = [{**unknown_card, "sms_code": "", "submit": "1"}] * PARALLEL
    responses = _in_parallel(live_server, client, "/register/verification", forms)

    budget = _budget(app, "FLOW_BANK_CHECK_LIMIT")
    assert len(calls) == budget - 1  # one was spent before; 11 of 30 ran on the old code
    refused = [r for r in responses if r.status_code == 429]
    assert len(refused) == PARALLEL - (budget - 1)
    assert all("银行核验次数过多，请稍后重新注册" in field_errors(r.text) for r in refused)


def test_a_press_that_sent_nothing_costs_no_sms_budget(keys_dir):
    app = make_app(keys_dir, SMS_IP_LIMIT="100 per hour")  # the per-IP limit is not the subject here
    wizard = Wizard(app.test_client())
    wizard.through_identity()
    budget = _budget(app, "FLOW_SMS_LIMIT")
    assert wizard.send_sms("13900130000").status_code == 200
    for _ in range(budget):  # the resend cooldown refuses every one of these: nothing sent
        assert wizard.send_sms("13900130000").status_code == 429
    for n in range(1, budget):  # the rest of the budget is still there
        response = wizard.send_sms(f"1390013{n:04d}")
        assert response.status_code == 200, field_errors(response.data)
    spent = wizard.send_sms("13900139999")
    assert spent.status_code == 429
    assert "本次注册获取短信验证码的次数过多，请稍后重新注册" in field_errors(spent.data)


def test_a_gateway_failure_costs_no_sms_budget(app, client, monkeypatch):
    from idp.services.verification import sms

    wizard = Wizard(client)
    wizard.through_identity()
    budget = _budget(app, "FLOW_SMS_LIMIT")

    class Down:
        def send(self, phone, text, *, purpose):
            raise sms.SmsUnavailable()

    outbox = app.extensions["idp_sms"]
    app.extensions["idp_sms"] = Down()
    for n in range(budget + 1):
        assert "短信发送失败，请稍后再试" in field_errors(wizard.send_sms(f"1390013{n:04d}").data)
    app.extensions["idp_sms"] = outbox
    assert wizard.send_sms("13900139999").status_code == 200


def test_a_bank_that_did_not_answer_costs_no_bank_check(app, client, monkeypatch):
    wizard = Wizard(client)
    demo = CITIZENS["demo"]
    wizard.through_identity(demo)
    wizard.send_sms(demo.phone)

    class Down:
        def verify(self, check):
            raise bank_module.BankUnavailable()

    monkeypatch.setattr(registration_service, "bank_verifier", lambda: Down())
    budget = _budget(app, "FLOW_BANK_CHECK_LIMIT")
    first = wizard.verification(demo)
    assert "银行核验服务暂不可用，请稍后再试" in field_errors(first.data)
    for _ in range(budget):
        assert "银行核验服务暂不可用，请稍后再试" in field_errors(wizard.verification(demo, code="").data)
    monkeypatch.undo()
    done = wizard.verification(demo, code="")
    assert done.status_code == 302, field_errors(done.data)


@pytest.mark.parametrize("budget_setting", ["FLOW_SMS_LIMIT", "FLOW_BANK_CHECK_LIMIT", "FLOW_FAILURE_LIMIT"])
def test_budgets_are_settings(app, budget_setting):
    assert re.fullmatch(r"\d+ per .+", app.config[budget_setting])
