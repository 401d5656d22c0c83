"""Staff accounts (admin, operator, auditor), a citizen, a relying system, and a console driver
that logs in through the real login page and posts the console's real forms."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from flask.testing import FlaskClient

from idp.extensions import db
from idp.models import AuditEvent
from idp.services.accounts.records import NewAccount, create_account
from idp.services.admin.clients import ClientSpec, create_client

from ..conftest import DEFAULT_PASSWORD
from ..helpers import csrf_token, login_with_second_factor

ROLES = ("admin", "operator", "auditor")


@pytest.fixture
def make_staff(app):
    def make(role: str, username: str | None = None):
        with app.app_context():
            user = create_account(
                NewAccount(username=username or f"{role}01", password=DEFAULT_PASSWORD, name="管理员"),
                real_name_verified=False, role=role,
            )
            return user.username

    return make


@dataclass
class Console:
    """A logged-in browser-like client of the console."""

    client: FlaskClient
    username: str

    def get(self, url: str, **kwargs):
        return self.client.get(url, **kwargs)

    def csrf(self) -> str:
        return csrf_token(self.client.get("/login").data)

    def post(self, url: str, data: dict | None = None, **kwargs):
        """POST with the session's CSRF token under every name a console form uses."""
        token = self.csrf()
        fields = {"csrf_token": token}
        for prefix in ("toggle", "rotate", "lock", "unlock", "logout", "disable", "enable", "role"):
            fields[f"{prefix}-csrf_token"] = token
        fields.update(data or {})
        return self.client.post(url, data=fields, **kwargs)

    def submit(self, page_url: str, action: str, data: dict, **kwargs):
        """Open the page, take the hidden fields of the form that posts to ``action``, fill in
        ``data`` and post it: what a person does with the page."""
        page = self.client.get(page_url)
        assert page.status_code == 200, (page_url, page.status_code)
        forms = re.findall(r'<form method="post" action="([^"]+)"[^>]*>(.*?)</form>', page.data.decode(), re.S)
        for form_action, body in forms:
            if form_action == action:
                fields = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', body))
                fields.update(re.findall(r'<input[^>]*name="([^"]+)"[^>]*type="hidden"[^>]*value="([^"]*)"', body))
                fields.update(data)
                return self.client.post(action, data=fields, **kwargs)
        raise AssertionError(f"no form posting to {action} on {page_url}")


@pytest.fixture
def console_as(app, make_staff):
    def open_console(role: str, username: str | None = None) -> Console:
        name = make_staff(role, username)
        client = app.test_client()
        response = login_with_second_factor(client, app, name, DEFAULT_PASSWORD)
        assert response.status_code == 302, response.data.decode()[:300]
        return Console(client, name)

    return open_console


@pytest.fixture
def admin(console_as) -> Console:
    return console_as("admin")


@pytest.fixture
def operator(console_as) -> Console:
    return console_as("operator")


@pytest.fixture
def auditor(console_as) -> Console:
    return console_as("auditor")


@pytest.fixture
def citizen(make_user):
    return make_user("zsfeng01", name="张三丰", id_number="440303198512124562", phone="13800138123")


@pytest.fixture
def rp(app):
    """A confidential relying system registered the way ``idp clients add`` does."""
    with app.app_context():
        client, secret = create_client(
            ClientSpec(name="考生服务系统", client_id="exam-service", redirect_uris=["https://exam.example.test/cb"],
                       scope="openid profile phone realname offline_access"),
        )
        return client.client_id, secret


def audit_events(app, event: str | None = None, **where) -> list[AuditEvent]:
    with app.app_context():
        query = db.select(AuditEvent).order_by(AuditEvent.id)
        if event:
            query = query.where(AuditEvent.event == event)
        for key, value in where.items():
            query = query.where(getattr(AuditEvent, key) == value)
        events = list(db.session.scalars(query))
        for e in events:
            db.session.expunge(e)
        return events


def text_of(response) -> str:
    """The visible text of a page (tags stripped), for asserting what a person would read."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.data.decode()))
