"""The exam service as its users meet it: the platform on a real port (``live_server``), the exam
service on another, both served by real HTTP servers, and a user agent over ``requests`` with
one cookie jar for both (cookies ignore ports, as in a browser)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from flask import Flask

from clients.exam import create_app as create_exam_app
from clients.exam.extensions import db as exam_db
from clients.exam.models import create_schema
from idp.services.accounts.records import NewAccount, create_account
from idp.services.admin.clients import ClientSpec, create_client

from ..conftest import DEFAULT_PASSWORD
from ..helpers import CAPTCHA, form_fields
from ..live import LiveServer, free_port, serve

EXAM_CLIENT_ID = "exam-service"
CITIZEN = dict(username="kaosheng01", name="王𠮷", id_number="440304199003072136", phone="13800138000")


def make_exam_app(tmp_path: Path, *, issuer: str, base_url: str, client_id: str, client_secret: str | None,
                  **overrides) -> Flask:
    settings = dict(
        ISSUER=issuer,
        BASE_URL=base_url,
        CLIENT_ID=client_id,
        CLIENT_SECRET=client_secret or "",
        DATABASE_URL=f"sqlite:///{tmp_path / f'exam-{urlsplit(base_url).port}.sqlite'}",
        KEYS_DIR=str(tmp_path / "exam-keys"),
    )
    settings.update(overrides)
    app = create_exam_app("testing", **settings)
    with app.app_context():
        create_schema()
    return app


@dataclass
class ExamStack:
    provider: LiveServer
    exam: LiveServer
    client_id: str
    client_secret: str | None

    @property
    def issuer(self) -> str:
        return self.provider.url

    @property
    def database_file(self) -> Path:
        return Path(self.exam.app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))


def register_exam_client(provider_app: Flask, base_url: str, **fields):
    spec = dict(
        name="考生服务系统",
        client_id=EXAM_CLIENT_ID,
        first_party=True,
        redirect_uris=[f"{base_url}/auth/callback"],
        post_logout_redirect_uris=[f"{base_url}/logged-out"],
        backchannel_logout_uri=f"{base_url}/backchannel-logout",
        scope="openid profile phone realname",
    )
    spec.update(fields)
    with provider_app.app_context():
        client, secret = create_client(ClientSpec(**spec))
        return client.client_id, secret


@pytest.fixture
def exam_factory(live_server, tmp_path):
    """Start an exam service against the live platform; keyword arguments change its registration."""
    started = []

    def start(**client_fields) -> ExamStack:
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        client_fields.setdefault("client_id", f"{EXAM_CLIENT_ID}-{len(started) + 1}" if started else EXAM_CLIENT_ID)
        client_id, secret = register_exam_client(live_server.app, base_url, **client_fields)
        app = make_exam_app(tmp_path, issuer=live_server.url, base_url=base_url, client_id=client_id,
                            client_secret=secret)
        server = serve(app, port)
        url = server.__enter__()
        started.append((server, app))
        return ExamStack(provider=live_server, exam=LiveServer(app=app, url=url), client_id=client_id,
                         client_secret=secret)

    yield start
    for server, app in reversed(started):
        server.__exit__(None, None, None)
        with app.app_context():
            exam_db.session.remove()
            exam_db.engine.dispose()


@pytest.fixture
def exam(exam_factory) -> ExamStack:
    return exam_factory()


@pytest.fixture
def citizen(live_server):
    """A verified citizen of the platform (the exam service only ever sees claims about them)."""
    with live_server.app.app_context():
        user = create_account(
            NewAccount(username=CITIZEN["username"], password=DEFAULT_PASSWORD, name=CITIZEN["name"],
                       id_type="resident_id", id_number=CITIZEN["id_number"], phone=CITIZEN["phone"],
                       gender="M", birthdate=date(1990, 3, 7), bank_code="CCB",
                       card_number="6217009722818662011"),
            real_name_verified=True,
        )
        return {**CITIZEN, "sub": user.sub}


class Browser:
    """A user agent over requests: follows redirects itself so each hop can be inspected."""

    def __init__(self) -> None:
        self.session = requests.Session()
        self.session.headers["Accept"] = "text/html"
        self.hops: list[str] = []

    def get(self, url: str, *, follow: bool = True, **kwargs) -> requests.Response:
        response = self.session.get(url, allow_redirects=False, timeout=15, **kwargs)
        return self._follow(response) if follow else response

    def post(self, url: str, data: dict, *, follow: bool = True) -> requests.Response:
        response = self.session.post(url, data=data, allow_redirects=False, timeout=15)
        return self._follow(response) if follow else response

    def _follow(self, response: requests.Response) -> requests.Response:
        for _ in range(15):
            self.hops.append(response.url)
            if response.status_code not in (301, 302, 303, 307):
                return response
            response = self.session.get(urljoin(response.url, response.headers["Location"]),
                                        allow_redirects=False, timeout=15)
        raise AssertionError(f"too many redirects: {self.hops[-15:]}")

    def submit(self, page: requests.Response, data: dict, *, index: int = 0, follow: bool = True):
        """Post the index-th form of a page with its hidden fields, overlaid with ``data``."""
        action = _form_actions(page.text)[index] or page.url
        fields = form_fields(page.text, index)
        fields.update(data)
        return self.post(urljoin(page.url, action), fields, follow=follow)

    def platform_login(self, page: requests.Response, username: str, password: str = DEFAULT_PASSWORD):
        assert "/login" in page.url, page.url
        return self.submit(page, {"username": username, "password": password, "captcha": CAPTCHA})


def _form_actions(html: str) -> list[str | None]:
    actions = []
    for tag in re.findall(r"<form\b[^>]*>", html):
        found = re.search(r'\baction="([^"]*)"', tag)
        actions.append(unescape(found.group(1)) if found else None)
    return actions


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def sign_in(browser: Browser, exam: ExamStack, username: str) -> requests.Response:
    """登录 on the exam service, then the platform's login form; returns the candidate page."""
    login_page = browser.get(f"{exam.exam.url}/login")
    page = browser.platform_login(login_page, username)
    assert page.status_code == 200, page.text[:500]
    assert page.url == f"{exam.exam.url}/candidate", page.url
    return page
