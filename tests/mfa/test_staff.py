"""Staff sign in with two factors: enrolment through the single-use link, TOTP with replay
protection (a test clock), recovery codes, the gate in front of /admin, the CLI's link."""

from __future__ import annotations

import re

import pyotp

from idp.extensions import db
from idp.models import AuditEvent, SecondFactor, User

from ..conftest import DEFAULT_PASSWORD
from ..helpers import (RECOVERY_CODES, TOTP_SECRETS, answer_second_factor, csrf_token, enrol_totp, enrolment_url,
                       form_fields, login)


def _events(app, event: str) -> list[AuditEvent]:
    with app.app_context():
        rows = list(db.session.scalars(db.select(AuditEvent).filter_by(event=event).order_by(AuditEvent.id)))
        for row in rows:
            db.session.expunge(row)
        return rows


def _code(username: str, clock) -> str:
    return pyotp.TOTP(TOTP_SECRETS[username]).at(clock.now)


def _enrolled(app, client, make_staff, clock, role="admin") -> str:
    name = make_staff(role)
    assert login(client, name, DEFAULT_PASSWORD).headers["Location"] == "/mfa/setup"
    opened = client.get(enrolment_url(app, name))
    assert opened.headers["Location"] == "/mfa/setup"
    page = client.get("/mfa/setup")
    TOTP_SECRETS[name] = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.data.decode()).group(1)
    fields = form_fields(page.data)
    fields["code"] = _code(name, clock)
    assert client.post("/mfa/setup", data=fields).headers["Location"] == "/mfa/recovery-codes"
    codes = client.get("/mfa/recovery-codes").data.decode()
    RECOVERY_CODES[name] = re.findall(r"<code>([a-z2-9]{5}-[a-z2-9]{5})</code>", codes)
    return name


def _verify(client, code: str, method: str = "totp"):
    token = csrf_token(client.get("/mfa/verify").data)
    return client.post("/mfa/verify", data={"csrf_token": token, "method": method, "code": code})


# -- the gate ------------------------------------------------------------------------------------
def test_a_staff_member_without_a_factor_cannot_open_the_console(app, client, make_staff):
    name = make_staff("operator")
    response = login(client, name, DEFAULT_PASSWORD)
    assert response.headers["Location"] == "/mfa/setup"
    # the password alone signs nothing in
    assert client.get("/account/").headers["Location"] == "/login"
    assert client.get("/admin/").headers["Location"] == "/login"
    # and does not allow enrolling a factor: that takes the link the administrator handed over
    refused = client.get("/mfa/setup")
    assert refused.status_code == 403
    assert "绑定链接" in refused.data.decode()
    assert not _events(app, "mfa.enrolled")


def test_enrolment_through_the_link_signs_in_with_both_factors(app, client, make_staff, clock):
    client.get("/admin/users")  # where the staff member was going
    name = _enrolled(app, client, make_staff, clock)
    assert len(RECOVERY_CODES[name]) == 10 and len(set(RECOVERY_CODES[name])) == 10
    with client.session_transaction() as sess:
        assert sess["amr"] == ["pwd", "otp", "mfa"] and sess["acr"] == "urn:hrss:acr:mfa"
    assert client.get("/admin/users").status_code == 200
    assert client.get("/mfa/recovery-codes").status_code == 302  # shown once
    with app.app_context():
        factor = db.session.scalar(db.select(SecondFactor))
        assert factor.kind == "totp" and TOTP_SECRETS[name].encode() not in factor.totp_secret_enc  # encrypted
    enrolled = _events(app, "mfa.enrolled")
    assert [(e.actor, e.details["kind"]) for e in enrolled] == [(name, "totp")]


def test_the_link_is_single_use_expires_and_cannot_be_forged(app, client, make_staff, clock):
    name = make_staff("auditor")
    link = enrolment_url(app, name)
    assert client.get(link[:-3] + "abc").status_code == 400
    app.config["MFA_ENROLMENT_LINK_LIFETIME"] = -1
    expired = client.get(link)
    assert expired.status_code == 400 and "已过期" in expired.data.decode()
    app.config["MFA_ENROLMENT_LINK_LIFETIME"] = 3600
    assert login(client, name, DEFAULT_PASSWORD).status_code == 302
    assert client.get(link).headers["Location"] == "/mfa/setup"
    page = client.get("/mfa/setup")
    TOTP_SECRETS[name] = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.data.decode()).group(1)
    fields = form_fields(page.data)
    fields["code"] = _code(name, clock)
    assert client.post("/mfa/setup", data=fields).status_code == 302
    other = app.test_client()
    assert other.get(link).status_code == 400  # spent


def test_login_with_totp_on_a_test_clock_and_no_replay(app, client, make_staff, clock):
    name = _enrolled(app, client, make_staff, clock)
    client.get("/logout")
    clock.advance(90)
    code = _code(name, clock)
    assert login(client, name, DEFAULT_PASSWORD).headers["Location"] == "/mfa/verify"
    assert _verify(client, code).status_code == 302
    assert client.get("/admin/").status_code == 200

    # the same code once more, from another browser, within its 30 seconds: refused
    other = app.test_client()
    assert login(other, name, DEFAULT_PASSWORD).headers["Location"] == "/mfa/verify"
    replay = _verify(other, code)
    assert replay.status_code == 400 and "验证码错误或已使用" in replay.data.decode()
    assert other.get("/admin/").headers["Location"] == "/login"
    # a code of an older step (within the drift, but before the one used) is refused too
    older = pyotp.TOTP(TOTP_SECRETS[name]).at(clock.now - 30)
    assert _verify(other, older).status_code == 400
    # too far from the clock: refused
    assert _verify(other, pyotp.TOTP(TOTP_SECRETS[name]).at(clock.now + 120)).status_code == 400
    # the next step's code works
    clock.advance(30)
    assert _verify(other, _code(name, clock)).status_code == 302
    assert other.get("/admin/").status_code == 200
    outcomes = [(e.outcome, e.details["purpose"]) for e in _events(app, "mfa.verified")]
    assert outcomes == [("success", "login"), ("failure", "login"), ("failure", "login"), ("failure", "login"),
                        ("success", "login")]


def test_a_recovery_code_works_once(app, client, make_staff, clock):
    name = _enrolled(app, client, make_staff, clock)
    code = RECOVERY_CODES[name][3]
    client.get("/logout")
    login(client, name, DEFAULT_PASSWORD)
    assert _verify(client, code.upper().replace("-", " "), method="recovery").status_code == 302
    assert client.get("/admin/").status_code == 200
    other = app.test_client()
    login(other, name, DEFAULT_PASSWORD)
    again = _verify(other, code, method="recovery")
    assert again.status_code == 400
    event = _events(app, "mfa.verified")[0]
    assert event.details == {"method": "recovery", "purpose": "login", "recovery_codes_left": 9}


def test_wrong_answers_are_limited_per_account(app, client, make_staff, clock):
    name = _enrolled(app, client, make_staff, clock)
    client.get("/logout")
    login(client, name, DEFAULT_PASSWORD)
    for _ in range(5):
        assert _verify(client, "000000").status_code == 400
    refused = _verify(client, _code(name, clock))
    assert refused.status_code == 429 and "验证失败次数过多" in refused.data.decode()


def test_a_role_given_to_a_signed_in_citizen_asks_for_the_second_factor(app, make_user, clock):
    citizen = make_user("lisi0001")
    browser = app.test_client()
    assert login(browser, citizen.username, DEFAULT_PASSWORD).headers["Location"] == "/account/"
    with app.app_context():
        db.session.get(User, citizen.id).role = "auditor"
        db.session.commit()
    # signed in with the password only: the console wants the second factor (here: its enrolment)
    assert browser.get("/admin/audit").headers["Location"] == "/mfa/verify"
    assert browser.get("/mfa/verify").headers["Location"] == "/mfa/setup"
    assert browser.get("/mfa/setup").status_code == 403
    enrol_totp(browser, app, citizen.username)
    assert browser.get("/admin/audit").status_code == 200


def test_a_stale_session_asks_for_password_and_second_factor_again(app, client, make_staff, clock):
    name = _enrolled(app, client, make_staff, clock)
    with client.session_transaction() as sess:
        sess["auth_time"] -= 31 * 60
    assert client.get("/admin/clients").headers["Location"] == "/login"
    assert login(client, name, DEFAULT_PASSWORD).headers["Location"] == "/mfa/verify"
    clock.advance(30)
    done = _verify(client, _code(name, clock))
    assert done.headers["Location"] == "/admin/clients"


def test_idp_admin_create_prints_an_enrolment_link(app, runner):
    result = runner.invoke(args=["admin", "create", "--username", "ops001", "--password", DEFAULT_PASSWORD,
                                 "--name", "值班员", "--role", "operator"])
    assert result.exit_code == 0, result.output
    link = re.search(r"(http://localhost/mfa/enrol/\S+)", result.output).group(1)
    assert "valid 24 h" in result.output
    client = app.test_client()
    assert client.get(link.removeprefix("http://localhost")).headers["Location"] == "/login"
    assert login(client, "ops001", DEFAULT_PASSWORD).headers["Location"] == "/mfa/setup"
    assert client.get("/mfa/setup").status_code == 200  # the link in this browser allows it


def test_the_cli_resets_a_lost_factor_and_prints_a_new_link(app, runner, client, make_staff, clock):
    name = _enrolled(app, client, make_staff, clock)
    refused = runner.invoke(args=["admin", "enrolment-link", name])
    assert refused.exit_code != 0 and "has a second factor already" in refused.output
    result = runner.invoke(args=["admin", "reset-factors", name, "--reason", "手机丢失，工单 2026-77"])
    assert result.exit_code == 0, result.output
    assert "removed 1 second factor(s)" in result.output and "/mfa/enrol/" in result.output
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(SecondFactor.id))) == 0
    assert _events(app, "mfa.reset")[0].details == {"reason": "手机丢失，工单 2026-77", "removed": 1}
