"""单位网上办事 against the platform on a real port, both served by real HTTP servers, and a unit
account registered at the platform (the portal only ever sees claims about it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest
from flask import Flask

from clients.unitportal import create_app as create_unitportal_app
from idp.services.accounts.records import NewAccount, create_account
from idp.services.admin.clients import ClientSpec, create_client
from idp.services.identity.units import UnitInfo

from ..conftest import DEFAULT_PASSWORD
from ..live import LiveServer, free_port, serve
from ..units.conftest import unit

HANDLER = dict(name="李娜", id_number="440305199206151244", phone="13800138001")


@dataclass
class PortalStack:
    provider: LiveServer
    portal: LiveServer
    client_id: str


def register_portal(provider_app: Flask, base_url: str, **fields) -> tuple[str, str]:
    spec = dict(name="单位网上办事", client_id="unit-portal", first_party=True, allowed_user_types="unit",
                redirect_uris=[f"{base_url}/auth/callback"], post_logout_redirect_uris=[f"{base_url}/logged-out"],
                scope="openid unit")
    spec.update(fields)
    with provider_app.app_context():
        client, secret = create_client(ClientSpec(**spec))
        return client.client_id, secret


@pytest.fixture
def portal(live_server, tmp_path):
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    client_id, secret = register_portal(live_server.app, base_url)
    app = create_unitportal_app("testing", ISSUER=live_server.url, BASE_URL=base_url, CLIENT_ID=client_id,
                                CLIENT_SECRET=secret, SESSION_DIR=str(tmp_path / "unitportal-sessions"))
    with serve(app, port) as url:
        yield PortalStack(provider=live_server, portal=LiveServer(app=app, url=url), client_id=client_id)


@pytest.fixture
def unit_account(live_server):
    u = unit(demo=True)
    with live_server.app.app_context():
        user = create_account(
            NewAccount(username="pengcheng01", password=DEFAULT_PASSWORD, name=HANDLER["name"], id_type="resident_id",
                       id_number=HANDLER["id_number"], phone=HANDLER["phone"], gender="F", birthdate=date(1992, 6, 15),
                       bank_code="ICBC", card_number="6222021641045750049",
                       unit=UnitInfo(u.unit_name, u.unit_id_type, u.uscc, u.unit_type, u.legal_rep_name)),
            real_name_verified=True,
        )
        return {"username": user.username, "unit": u}
