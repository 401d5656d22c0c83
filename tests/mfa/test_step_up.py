"""Step-up: the four dangerous console actions want a second factor within MFA_STEP_UP_WINDOW;
without one nothing happens, the second factor is asked, and the action (submitted again) is
audited with the amr behind it."""

from __future__ import annotations

import pytest

from idp.extensions import db
from idp.models import AuditEvent, User, UserStatus

from ..admin.conftest import audit_events, citizen, console_as, rp  # noqa: F401  (fixtures)
from ..helpers import answer_second_factor


def _age_second_factor(console, seconds: int) -> None:
    with console.client.session_transaction() as sess:
        sess["mfa_at"] -= seconds


def _user(app, sub):
    with app.app_context():
        return db.session.scalar(db.select(User).filter_by(sub=sub))


def _step_up(console, back_to: str) -> None:
    answered = answer_second_factor(console.client, console.username)
    assert answered.status_code == 302 and answered.headers["Location"] == back_to
    step_ups = [e for e in audit_events(console.app, "mfa.verified") if e.details["purpose"] == "step_up"]
    assert step_ups and step_ups[-1].outcome == "success" and step_ups[-1].actor == console.username


@pytest.fixture
def admin(console_as, app):
    console = console_as("admin")
    console.app = app
    return console


@pytest.fixture
def auditor(console_as, app):
    console = console_as("auditor")
    console.app = app
    return console


def test_a_role_change_asks_for_the_second_factor_again(app, admin, citizen):
    _age_second_factor(admin, 301)
    refused = admin.post(f"/admin/users/{citizen.sub}/role", {"role-role": "auditor", "role-reason": "审计岗位任命"})
    assert refused.status_code == 302 and refused.headers["Location"] == "/mfa/verify"
    assert _user(app, citizen.sub).role is None and not audit_events(app, "account.role_changed")
    assert "该操作需要再次验证第二因素" in admin.get("/mfa/verify").data.decode()
    _step_up(admin, f"/admin/users/{citizen.sub}")
    done = admin.post(f"/admin/users/{citizen.sub}/role", {"role-role": "auditor", "role-reason": "审计岗位任命"})
    assert done.status_code == 302 and _user(app, citizen.sub).role == "auditor"
    event = audit_events(app, "account.role_changed")[0]
    assert event.actor == "admin01" and event.amr == ["pwd", "otp", "mfa"]


def test_rotating_a_client_secret_asks_for_the_second_factor_again(app, admin, rp):
    _age_second_factor(admin, 301)
    refused = admin.post(f"/admin/clients/{rp[0]}/secret", {"rotate-reason": "定期轮换", "rotate-overlap": "0"})
    assert refused.headers["Location"] == "/mfa/verify"
    assert not audit_events(app, "client.secret_rotated")
    _step_up(admin, f"/admin/clients/{rp[0]}")
    done = admin.post(f"/admin/clients/{rp[0]}/secret", {"rotate-reason": "定期轮换", "rotate-overlap": "0"})
    assert done.status_code == 200 and "client-secret" in done.data.decode()
    assert audit_events(app, "client.secret_rotated")[0].amr == ["pwd", "otp", "mfa"]


def test_disabling_an_account_asks_again_but_locking_does_not(app, admin, citizen):
    _age_second_factor(admin, 301)
    locked = admin.post(f"/admin/users/{citizen.sub}/lock", {"lock-reason": "疑似被盗"})
    assert locked.headers["Location"] == f"/admin/users/{citizen.sub}"  # not dangerous: done at once
    admin.post(f"/admin/users/{citizen.sub}/unlock", {"unlock-reason": "本人核实"})
    refused = admin.post(f"/admin/users/{citizen.sub}/disable", {"disable-reason": "本人申请停用"})
    assert refused.headers["Location"] == "/mfa/verify"
    assert _user(app, citizen.sub).status == UserStatus.ACTIVE
    _step_up(admin, f"/admin/users/{citizen.sub}")
    admin.post(f"/admin/users/{citizen.sub}/disable", {"disable-reason": "本人申请停用"})
    assert _user(app, citizen.sub).status == UserStatus.DISABLED
    assert audit_events(app, "account.disabled")[0].amr == ["pwd", "otp", "mfa"]


def test_the_audit_export_asks_again_and_then_downloads(app, auditor):
    _age_second_factor(auditor, 301)
    url = "/admin/audit/export.csv?event=login"
    refused = auditor.get(url)
    assert refused.headers["Location"] == "/mfa/verify"
    assert not audit_events(app, "audit.exported")
    _step_up(auditor, url)
    done = auditor.get(url)
    assert done.status_code == 200 and done.mimetype == "text/csv"
    exported = audit_events(app, "audit.exported")[0]
    assert exported.actor == "auditor01" and exported.amr == ["pwd", "otp", "mfa"]


def test_within_the_window_no_second_ask(app, admin, citizen):
    _age_second_factor(admin, 280)
    done = admin.post(f"/admin/users/{citizen.sub}/role", {"role-role": "operator", "role-reason": "运营岗位"})
    assert done.headers["Location"] == f"/admin/users/{citizen.sub}"


def test_the_window_is_a_setting(app, admin, citizen):
    app.config["MFA_STEP_UP_WINDOW"] = 10
    _age_second_factor(admin, 11)
    refused = admin.post(f"/admin/users/{citizen.sub}/role", {"role-role": "operator", "role-reason": "运营岗位"})
    assert refused.headers["Location"] == "/mfa/verify"


def test_events_of_others_carry_no_amr(app, admin, citizen):
    with app.app_context():
        rows = list(db.session.scalars(db.select(AuditEvent).filter_by(event="account.created")))
    assert rows and all(row.amr is None for row in rows)
