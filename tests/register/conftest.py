"""Driving the registration wizard over HTTP, and the fictitious citizens of the bank sandbox."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

import pytest

from idp.sandbox import SandboxCitizen
from idp.sandbox.bank import load_records

from ..conftest import DEFAULT_PASSWORD
from ..helpers import CAPTCHA


def sandbox_citizens() -> dict[str, SandboxCitizen]:
    records = load_records()
    pick = {
        "demo": next(r for r in records if r.demo),
        "lina": next(r for r in records if r.name == "李娜"),
        "chenjing": next(r for r in records if r.name == "陈静" and r.card_type == "debit"),
        "credit": next(r for r in records if r.card_type == "credit"),
        "inactive": next(r for r in records if r.status == "inactive"),
        "old_phone": next(r for r in records if "phone_mismatch" in r.note),
        "no_luhn": next(r for r in records if "Luhn 校验位" in r.note),
        "middle_dot": next(r for r in records if "·" in r.name),
        "rare_astral": next(r for r in records if "𠮷" in r.name),
        "rare_bmp": next(r for r in records if "䶮" in r.name),
        "hk": next(r for r in records if r.id_type == "hk_macao_permit"),
        "tw": next(r for r in records if r.id_type == "hmt_residence_permit"),
    }
    return {k: SandboxCitizen.from_record(r) for k, r in pick.items()}


CITIZENS = sandbox_citizens()
OLD_PHONE_NOW = "13700137012"  # what 孙丽 uses today; her bank still has the old number


class _Form(HTMLParser):
    """Every named <input>, <select> and <textarea> value of the first POST form (no buttons:
    each test says which button it presses)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self._in_form = False
        self._done = False
        self._select: str | None = None
        self._first_option: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if self._done:
            return
        if tag == "form" and (attrs.get("method") or "get").lower() == "post":
            self._in_form = True
        if not self._in_form:
            return
        name = attrs.get("name")
        if tag == "input" and name:
            kind = attrs.get("type", "text")
            if kind in ("submit", "button", "image"):
                return
            if kind in ("checkbox", "radio") and "checked" not in attrs:
                return
            self.fields.setdefault(name, attrs.get("value") or "")
        elif tag == "select" and name:
            self._select, self._first_option = name, None
        elif tag == "option" and self._select:
            value = attrs.get("value", "")
            if self._first_option is None:
                self._first_option = value
            if "selected" in attrs:
                self.fields[self._select] = value

    def handle_endtag(self, tag):
        if tag == "select" and self._select:
            self.fields.setdefault(self._select, self._first_option or "")
            self._select = None
        if tag == "form" and self._in_form:
            self._in_form, self._done = False, True


def page_fields(html: bytes | str) -> dict[str, str]:
    parser = _Form()
    parser.feed(html.decode() if isinstance(html, bytes) else html)
    return parser.fields


def field_errors(html: bytes | str) -> list[str]:
    text = html.decode() if isinstance(html, bytes) else html
    return re.findall(r'class="(?:field-error|alert alert-error)"[^>]*>([^<]+)<', text)


@dataclass
class Wizard:
    client: object

    def post(self, url: str, button: str = "submit", **data):
        page = self.client.get(url)
        assert page.status_code == 200, (url, page.status_code, page.headers.get("Location"))
        fields = page_fields(page.data)
        fields.update({k: v for k, v in data.items() if v is not None})
        if button:
            fields[button] = "1"
        return self.client.post(url, data=fields)

    def start(self):
        response = self.client.get("/register")
        assert response.status_code == 302
        assert response.headers["Location"] == "/register/login-info"
        return response

    def login_info(self, username: str = "citizen2026", password: str = DEFAULT_PASSWORD,
                   confirm: str | None = None, captcha: str = CAPTCHA):
        return self.post("/register/login-info", username=username, password=password,
                         confirm=password if confirm is None else confirm, captcha=captcha)

    def identity(self, citizen: SandboxCitizen | None = None, **overrides):
        c = citizen or CITIZENS["demo"]
        data = dict(name=c.name, id_type=c.id_type, id_number=c.id_number, gender=c.gender,
                    birthdate=c.birthdate.isoformat())
        data.update(overrides)
        return self.post("/register/identity", **data)

    def send_sms(self, phone: str, **data):
        data.setdefault("consent", "y")  # the card's separate consent (consent=None: left unticked)
        return self.post("/register/verification", button="send_sms", phone=phone, **data)

    def outbox_code(self, phone: str) -> str:
        messages = self.client.get("/dev/sms-outbox.json", query_string={"phone": phone}).get_json()["messages"]
        assert messages, f"no SMS to {phone}"
        return re.search(r"验证码为(\d{6})", messages[0]["text"]).group(1)

    def verification(self, citizen: SandboxCitizen | None = None, *, code: str | None = None, **overrides):
        c = citizen or CITIZENS["demo"]
        data = dict(bank_code=c.bank_code, card_number=c.card_number, phone=c.phone, consent="y")
        data.update(overrides)
        if code is None:
            code = self.outbox_code(data["phone"])
        return self.post("/register/verification", sms_code=code, **data)

    def through_identity(self, citizen: SandboxCitizen | None = None, username: str = "citizen2026"):
        self.start()
        assert self.login_info(username=username).status_code == 302
        response = self.identity(citizen)
        assert response.status_code == 302, field_errors(response.data)
        assert response.headers["Location"] == "/register/verification"

    def register(self, citizen: SandboxCitizen | None = None, username: str = "citizen2026", phone: str | None = None):
        c = citizen or CITIZENS["demo"]
        self.through_identity(c, username)
        sent = self.send_sms(phone or c.phone, bank_code=c.bank_code, card_number=c.card_number)
        assert sent.status_code == 200, field_errors(sent.data)
        return self.verification(c, **({"phone": phone} if phone else {}))


@pytest.fixture
def wizard(client):
    return Wizard(client)


@pytest.fixture
def citizens():
    return CITIZENS
