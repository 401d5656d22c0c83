"""Driving 单位用户注册 over HTTP with the fictitious units of the sandbox registry and the
fictitious citizens of the sandbox bank (as handlers)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from idp.sandbox.registry import load_units

from ..conftest import DEFAULT_PASSWORD
from ..helpers import CAPTCHA
from ..oauth.conftest import make_client, rp, signed_in_flow  # noqa: F401  (the relying systems' fixtures)
from ..register.conftest import CITIZENS, Wizard, field_errors

UNITS = load_units()


def unit(**where):
    return next(u for u in UNITS if all(getattr(u, k) == v for k, v in where.items()))


@dataclass
class UnitWizard(Wizard):
    def start(self):
        response = self.client.get("/register/unit")
        assert response.status_code == 302 and response.headers["Location"] == "/register/unit/login-info"
        return response

    def login_info(self, username: str = "unit2026", password: str = DEFAULT_PASSWORD, confirm=None,
                   captcha: str = CAPTCHA):
        return self.post("/register/unit/login-info", username=username, password=password,
                         confirm=password if confirm is None else confirm, captcha=captcha)

    def unit_info(self, u=None, **overrides):
        u = u or unit(demo=True)
        data = dict(unit_name=u.unit_name, unit_id_type=u.unit_id_type, uscc=u.uscc, unit_type=u.unit_type,
                    legal_rep_name=u.legal_rep_name)
        data.update(overrides)
        return self.post("/register/unit/unit-info", **data)

    def through_unit(self, u=None, username: str = "unit2026"):
        self.start()
        assert self.login_info(username=username).status_code == 302
        response = self.unit_info(u)
        assert response.status_code == 302, field_errors(response.data)
        assert response.headers["Location"] == "/register/unit/handler"

    def handler(self, citizen=None, *, code: str | None = None, **overrides):
        c = citizen or CITIZENS["lina"]
        # the card's separate consent ticked unless the test says consent=None
        data = dict(name=c.name, id_type=c.id_type, id_number=c.id_number, bank_code=c.bank_code,
                    card_number=c.card_number, phone=c.phone, consent="y")
        data.update(overrides)
        if code is None:
            sent = self.post("/register/unit/handler", button="send_sms", **data)
            assert sent.status_code == 200, field_errors(sent.data)
            code = self.outbox_code(data["phone"])
        return self.post("/register/unit/handler", sms_code=code, **data)

    def register(self, u=None, citizen=None, username: str = "unit2026"):
        self.through_unit(u, username)
        return self.handler(citizen)


@pytest.fixture
def unit_wizard(client):
    return UnitWizard(client)


def make_unit_account(app, u=None, handler=None, username: str = "unit_demo", *,
                      password: str = DEFAULT_PASSWORD, phone: str | None = None):
    """A unit account as registration leaves it (the unit as the registry holds it, a sandbox
    citizen as its handler), created directly; ``phone`` lets the account's phone differ from the
    one the handler's bank holds today."""
    from idp.extensions import db
    from idp.services.accounts.records import NewAccount, create_account
    from idp.services.identity.units import UnitInfo

    u = u or unit(demo=True)
    h = handler or CITIZENS["lina"]
    data = NewAccount(username=username, password=password, name=h.name, id_type=h.id_type,
                      id_number=h.id_number, phone=phone or h.phone, gender=h.gender, birthdate=h.birthdate,
                      bank_code=h.bank_code, card_number=h.card_number,
                      unit=UnitInfo(u.unit_name, u.unit_id_type, u.uscc, u.unit_type, u.legal_rep_name))
    with app.app_context():
        user = create_account(data, real_name_verified=True)
        db.session.refresh(user)
        db.session.expunge(user)
        return user


@pytest.fixture
def unit_account(app):
    """深圳市鹏城示例科技有限公司 (the demo unit), its handler 李娜."""
    return make_unit_account(app)
