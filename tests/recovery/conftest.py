"""Driving the recovery flows over HTTP: accounts of the bank sandbox's fictitious citizens, a
driver that presses the pages' buttons, and the SMS outbox."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from flask import session
from sqlalchemy import select

from idp.extensions import db, redis_store
from idp.models import AuditEvent, User
from idp.sandbox import SandboxCitizen
from idp.services.accounts.records import NewAccount, create_account

from ..conftest import DEFAULT_PASSWORD, clean_external_db, make_app
from ..helpers import CAPTCHA
from ..register.conftest import CITIZENS, field_errors, page_fields

__all__ = ["CITIZENS", "CAPTCHA", "DEFAULT_PASSWORD", "field_errors", "page_fields"]

NEW_PASSWORD = "Zhaohui#2027new"
STOPPED_PHONE = "13900139901"  # the number a citizen registered with and no longer has


def make_citizen_account(app, citizen: SandboxCitizen, username: str = "wangxm", *, phone: str | None = None,
                         name: str | None = None, card_number: str | None = None, bank_code: str | None = None,
                         password: str = DEFAULT_PASSWORD) -> User:
    """An account holding a sandbox citizen's identity (so the bank check can match), created
    directly; ``phone``/``name``/``card_number`` let it differ from what the bank holds today."""
    data = NewAccount(
        username=username, password=password, name=name or citizen.name, id_type=citizen.id_type,
        id_number=citizen.id_number, phone=phone or citizen.phone, gender=citizen.gender,
        birthdate=citizen.birthdate, bank_code=bank_code or citizen.bank_code,
        card_number=card_number or citizen.card_number,
    )
    with app.app_context():
        user = create_account(data, real_name_verified=True)
        db.session.refresh(user)
        db.session.expunge(user)
        return user


def outbox(client, phone: str) -> list[dict]:
    return client.get("/dev/sms-outbox.json", query_string={"phone": phone}).get_json()["messages"]


def outbox_code(client, phone: str) -> str:
    messages = outbox(client, phone)
    assert messages, f"no SMS to {phone}"
    return re.search(r"验证码为(\d{6})", messages[0]["text"]).group(1)


def wrong(code: str) -> str:
    return "000000" if code != "000000" else "111111"


def expire_sms_codes(app, purpose: str = "recovery") -> None:
    """Five minutes pass for the codes of ``purpose`` (their expiry time moves into the past)."""
    with app.app_context():
        keys = redis_store.keys(f"sms:code:{purpose}:*")
        assert keys
        for key in keys:
            redis_store.hset(key, "expires_at", "0")


def rewind_flow(app, client, definition, field: str, seconds: float) -> None:
    """``seconds`` pass for a time kept in the client's flow (the record is encrypted, so this goes
    through the flow machinery)."""
    with client.session_transaction() as sess:
        flow_id = sess[f"flow:{definition.kind}"]
    with app.test_request_context():
        session[f"flow:{definition.kind}"] = flow_id
        flow = definition.load()
        if getattr(flow.state, field, None):
            setattr(flow.state, field, getattr(flow.state, field) - seconds)
            flow.save()


def audit_events(app, event: str) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.event == event).order_by(AuditEvent.id)))


def stored_user(app, user_id: int) -> User:
    with app.app_context():
        user = db.session.get(User, user_id)
        db.session.expunge(user)
        return user


def without_tokens(html: bytes | str) -> str:
    """A page with its one-time values (CSRF token, captcha id) blanked, to compare two answers."""
    text = html.decode() if isinstance(html, bytes) else html
    text = re.sub(r'(name="csrf_token"[^>]*value=")[^"]+', r"\1", text)
    text = re.sub(r'(name="captcha_id"[^>]*value=")[^"]+', r"\1", text)
    return re.sub(r"/captcha/[^\"]+\.(png|wav)", r"/captcha/-.\1", text)


@dataclass
class Recovery:
    """Presses the buttons of the recovery pages the way a browser without JavaScript does."""

    client: object

    def post(self, url: str, button: str | None = "submit", **data):
        page = self.client.get(url)
        assert page.status_code == 200, (url, page.status_code, page.headers.get("Location"))
        fields = page_fields(page.data)
        fields.update({k: v for k, v in data.items() if v is not None})
        if button:
            fields[button] = data.get(button) or "1"
        return self.client.post(url, data=fields)

    # -- 忘记用户名 --
    def username_identity(self, citizen: SandboxCitizen | None = None, captcha: str = CAPTCHA, **overrides):
        c = citizen or CITIZENS["demo"]
        data = dict(name=c.name, user_type="personal", id_type=c.id_type, id_number=c.id_number, captcha=captcha)
        data.update(overrides)
        return self.post("/recovery/username", **data)

    def username_send(self):
        return self.post("/recovery/username/sms", button="send_sms")

    def username_code(self, code: str):
        return self.post("/recovery/username/sms", sms_code=code)

    # -- 忘记密码 --
    def password_username(self, username: str, captcha: str = CAPTCHA):
        return self.post("/recovery/password", username=username, captcha=captcha)

    def method(self, method: str):
        return self.post("/recovery/password/method", button="method", method=method)

    def send_id_sms(self, phone: str, **data):
        return self.post("/recovery/password/verify/id", button="send_sms", phone=phone, **data)

    def id_and_phone(self, citizen: SandboxCitizen | None = None, *, phone: str | None = None,
                     code: str | None = None, **overrides):
        c = citizen or CITIZENS["demo"]
        phone = phone or c.phone
        data = dict(id_type=c.id_type, id_number=c.id_number, phone=phone)
        data.update(overrides)
        if code is None:
            code = outbox_code(self.client, phone)
        return self.post("/recovery/password/verify/id", sms_code=code, **data)

    def answers(self, *answers: str):
        return self.post("/recovery/password/verify/questions",
                         **{f"answer_{i + 1}": a for i, a in enumerate(answers)})

    def reset(self, new: str = NEW_PASSWORD, confirm: str | None = None, captcha: str = CAPTCHA):
        return self.post("/recovery/password/reset", new_password=new,
                         confirm_password=new if confirm is None else confirm, captcha=captcha)

    def through_id_sms(self, username: str, citizen: SandboxCitizen | None = None, phone: str | None = None):
        """输入用户名 → 证件号码+手机验证码 → 验证身份 passed: at 重置密码."""
        c = citizen or CITIZENS["demo"]
        assert self.password_username(username).headers["Location"] == "/recovery/password/method"
        assert self.method("id_sms").headers["Location"] == "/recovery/password/verify/id"
        sent = self.send_id_sms(phone or c.phone)
        assert sent.status_code == 200, field_errors(sent.data)
        verified = self.id_and_phone(c, phone=phone)
        assert verified.status_code == 302, field_errors(verified.data)
        assert verified.headers["Location"] == "/recovery/password/reset"
        return verified

    # -- 手机号已停用? --
    def phone_change_send(self, origin: str, phone: str):
        return self.post(f"/recovery/phone/{origin}", button="send_sms", phone=phone)

    def phone_change(self, origin: str, citizen: SandboxCitizen, *, phone: str | None = None,
                     code: str | None = None, **overrides):
        phone = phone or citizen.phone
        data = dict(bank_code=citizen.bank_code, card_number=citizen.card_number, phone=phone)
        data.update(overrides)
        if code is None:
            code = outbox_code(self.client, phone)
        return self.post(f"/recovery/phone/{origin}", sms_code=code, **data)


@pytest.fixture
def recovery(client):
    return Recovery(client)


@pytest.fixture
def demo_account(app):
    """王小明, registered with the phone his bank holds (13800138000)."""
    return make_citizen_account(app, CITIZENS["demo"], "wangxm")


@pytest.fixture
def app_with_bank_down(keys_dir):
    """An app whose bank verification platform refuses connections."""
    from ..live import free_port

    app = make_app(keys_dir, BANK_URL=f"http://127.0.0.1:{free_port()}", BANK_SECRET="outage-secret",
                   BANK_TIMEOUT=1.0)
    yield app
    clean_external_db(app)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
