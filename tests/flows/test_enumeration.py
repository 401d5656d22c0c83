"""No page, message or status tells a stranger whether a document, a name or a username is
registered: registration's document check is paid per captcha and per IP, 忘记用户名 answers
known and unknown details alike up to the code, 密保问题 asks every username three questions."""

from __future__ import annotations

from limits import parse

from idp.extensions import db
from idp.services.accounts.records import NewAccount, create_account

from ..conftest import DEFAULT_PASSWORD, make_app
from ..helpers import CAPTCHA
from ..recovery.conftest import Recovery, make_citizen_account, without_tokens
from ..register.conftest import CITIZENS, Wizard, field_errors

TAKEN = "证件已被使用"


def _budget(app, setting: str) -> int:
    return parse(app.config[setting]).amount


# -- 填写身份信息: 证件已被使用 is an answer about accounts ----------------------------------------------
def test_document_checks_need_a_new_captcha_after_a_few(app, client):
    make_citizen_account(app, CITIZENS["lina"], "lina2026")
    wizard = Wizard(client)
    wizard.start()
    assert wizard.login_info().status_code == 302
    budget = _budget(app, "DOCUMENT_CHECKS_PER_CAPTCHA")
    for _ in range(budget):
        assert TAKEN in field_errors(wizard.identity(CITIZENS["lina"]).data)
    refused = wizard.identity(CITIZENS["lina"])
    assert refused.status_code == 429
    assert field_errors(refused.data) == ["证件号核验次数过多，请返回上一步重新输入验证码后再试"]
    assert TAKEN not in refused.data.decode()
    # a captcha solved again at 填写登录信息 (the password is kept) buys the next checks
    back = wizard.post("/register/login-info", username="citizen2026", password="", confirm="", captcha=CAPTCHA)
    assert back.status_code == 302
    assert TAKEN in field_errors(wizard.identity(CITIZENS["lina"]).data)
    assert wizard.identity(CITIZENS["demo"]).headers["Location"] == "/register/verification"


def test_document_checks_are_limited_per_ip(keys_dir):
    app = make_app(keys_dir, DOCUMENT_CHECK_IP_LIMIT="3 per hour")
    make_citizen_account(app, CITIZENS["lina"], "lina2026")
    answers = []
    for n in range(4):  # a new session and a new captcha each time: only the IP is the same
        wizard = Wizard(app.test_client())
        wizard.start()
        assert wizard.login_info(username=f"probe{n}2026").status_code == 302
        answers.append(wizard.identity(CITIZENS["lina"]))
    assert all(TAKEN in field_errors(a.data) for a in answers[:3])
    assert answers[3].status_code == 429 and TAKEN not in answers[3].data.decode()


def test_format_errors_cost_no_document_check(app, client):
    wizard = Wizard(client)
    wizard.start()
    wizard.login_info()
    for _ in range(_budget(app, "DOCUMENT_CHECKS_PER_CAPTCHA") + 2):
        assert "证件号校验位不正确，请核对证件号" in field_errors(wizard.identity(id_number="440304199003072137").data)
    assert wizard.identity(CITIZENS["demo"]).status_code == 302


# -- 忘记用户名: the same pages until the code comes back ---------------------------------------------------
def test_username_recovery_answers_known_and_unknown_alike_until_the_code(app):
    make_citizen_account(app, CITIZENS["demo"], "wangxm")
    known, unknown = Recovery(app.test_client()), Recovery(app.test_client())
    known.username_identity()
    unknown.username_identity(CITIZENS["lina"])

    def same(path_or_response_known, path_or_response_unknown):
        a, b = path_or_response_known, path_or_response_unknown
        assert a.status_code == b.status_code
        assert without_tokens(a.data) == without_tokens(b.data)

    same(known.client.get("/recovery/username/sms"), unknown.client.get("/recovery/username/sms"))
    same(known.username_send(), unknown.username_send())
    same(known.username_send(), unknown.username_send())  # the resend gate, alike
    for _ in range(5):  # wrong codes, then the exhausted code
        same(known.username_code("000001"), unknown.username_code("000001"))


# -- 忘记密码 → 密保问题: three questions for every name ----------------------------------------------------
def test_security_questions_do_not_tell_accounts_apart(app, make_user):
    make_citizen_account(app, CITIZENS["demo"], "wangxm")  # a citizen without questions
    with app.app_context():
        staff = create_account(NewAccount(username="operator07", password=DEFAULT_PASSWORD, name="管理员"),
                               real_name_verified=False, role="operator")
        db.session.expunge(staff)
    pages = {}
    for name in ("wangxm", "nobody2026", "operator07"):
        visitor = Recovery(app.test_client())
        visitor.password_username(name)
        chosen = visitor.method("questions")
        assert chosen.status_code == 302 and chosen.headers["Location"] == "/recovery/password/verify/questions"
        page = visitor.client.get("/recovery/password/verify/questions")
        assert page.status_code == 200 and page.data.decode().count('<label for="answer_') == 3
        answered = visitor.answers("a", "b", "c")
        pages[name] = (answered.status_code, tuple(field_errors(answered.data)))
    assert set(pages.values()) == {(400, ("密保问题答案不正确",))}


def test_the_daily_sms_cap_answers_known_and_unknown_alike(keys_dir):
    from idp.extensions import redis_store

    app = make_app(keys_dir, SMS_DAILY_CAP=2)
    make_citizen_account(app, CITIZENS["demo"], "wangxm")
    answers = {"known": [], "unknown": []}
    for _ in range(3):  # a new flow (and captcha) each time, for the same details
        for who, citizen in (("known", CITIZENS["demo"]), ("unknown", CITIZENS["lina"])):
            visitor = Recovery(app.test_client())
            visitor.username_identity(citizen)
            sent = visitor.username_send()
            answers[who].append((sent.status_code, without_tokens(sent.data)))
        with app.app_context():
            redis_store.delete(*redis_store.keys("sms:resend:*") or ["-"])  # a minute passes
    assert answers["known"] == answers["unknown"]
    assert [status for status, _ in answers["known"]] == [200, 200, 429]
