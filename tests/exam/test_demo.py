"""``idp demo``: its setup creates exactly what is missing, and the command serves a working product."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from idp.cli.demo import ADMIN_USERNAME, CITIZEN_USERNAME, EXAM_CLIENT_ID, DemoState, prepare_demo
from idp.extensions import db
from idp.models import Client, User
from idp.services.accounts.records import authenticate
from idp.services.admin.client_secrets import verify_client_secret

from ..live import free_port
from .conftest import Browser

EXAM = "http://127.0.0.1:5100"


def _client() -> Client:
    return db.session.query(Client).filter_by(client_id=EXAM_CLIENT_ID).one()


def test_setup_creates_the_exam_client_the_administrator_and_the_verified_citizen(app, tmp_path):
    state = DemoState(tmp_path / "demo.json")
    with app.app_context():
        setup = prepare_demo(EXAM, state)
        client = _client()
        assert client.first_party and client.enabled
        assert client.redirect_uris == [f"{EXAM}/auth/callback"]
        assert client.post_logout_redirect_uris == [f"{EXAM}/logged-out"]
        assert client.backchannel_logout_uri == f"{EXAM}/backchannel-logout"
        assert set(client.scope.split()) == {"openid", "profile", "phone", "realname"}
        assert verify_client_secret(client, setup.exam_client_secret)

        admin = authenticate(ADMIN_USERNAME, setup.admin.password)
        assert admin.role == "admin"
        citizen = authenticate(CITIZEN_USERNAME, setup.citizen.password)
        assert citizen.name == "王小明" and citizen.real_name_verified  # the sandbox bank matched
    assert (tmp_path / "demo.json").stat().st_mode & 0o777 == 0o600


def test_setup_is_idempotent_and_follows_the_exam_port(app, tmp_path):
    path = tmp_path / "demo.json"
    with app.app_context():
        first = prepare_demo(EXAM, DemoState(path))
        users = db.session.query(User).count()
        again = prepare_demo(EXAM, DemoState.load(path))
        assert again.exam_client_secret == first.exam_client_secret
        assert (again.admin.password, again.citizen.password) == (first.admin.password, first.citizen.password)
        assert not again.admin.created and not again.citizen.created
        assert db.session.query(User).count() == users

        moved = prepare_demo("http://127.0.0.1:5200", DemoState.load(path))
        client = _client()
        assert client.redirect_uris == ["http://127.0.0.1:5200/auth/callback"]
        assert moved.exam_client_secret == first.exam_client_secret  # a port change keeps the secret


def test_a_lost_state_file_rotates_the_exam_secret(app, tmp_path):
    with app.app_context():
        first = prepare_demo(EXAM, DemoState(tmp_path / "demo.json"))
        fresh = prepare_demo(EXAM, DemoState(tmp_path / "other.json"))
        client = _client()
        assert fresh.exam_client_secret != first.exam_client_secret
        assert verify_client_secret(client, fresh.exam_client_secret)
        assert not verify_client_secret(client, first.exam_client_secret)
        assert fresh.admin.password is None  # created earlier: the demo says it does not know it


@pytest.mark.slow
def test_idp_demo_serves_the_platform_the_exam_service_and_the_bank(tmp_path):
    ports = {name: free_port() for name in ("port", "exam-port", "unitportal-port", "bank-port")}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "EXAM_"))}
    env.update(IDP_DATABASE_URL=f"sqlite:///{tmp_path / 'idp.sqlite'}", IDP_KEYS_DIR=str(tmp_path / "keys"),
               PYTHONUNBUFFERED="1")
    idp = Path(sys.executable).with_name("idp")
    command = [str(idp), "demo", "--captcha", "DEMO", *[a for n, p in ports.items() for a in (f"--{n}", str(p))]]
    log = (tmp_path / "demo.log").open("w+")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        output = _wait_for(log, "demo running", process)
        exam_url, issuer = f"http://127.0.0.1:{ports['exam-port']}", f"http://127.0.0.1:{ports['port']}"
        assert f"{exam_url}/   <- start here" in output
        assert f"{issuer}/dev/sms-outbox" in output
        assert "PINNED to 'DEMO'" in output
        password = re.search(rf"{CITIZEN_USERNAME} / (\S+)", output).group(1)
        assert re.search(rf"{ADMIN_USERNAME} / \S+", output)
        assert requests.get(f"http://127.0.0.1:{ports['bank-port']}/health", timeout=5).json()["status"] == "ok"

        browser = Browser()
        login_page = browser.get(f"{exam_url}/login")
        page = browser.submit(login_page, {"username": CITIZEN_USERNAME, "password": password, "captcha": "DEMO"})
        assert page.url == f"{exam_url}/candidate", page.text[:300]
        assert "王小明" in page.text and "已通过银行实名认证" in page.text
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()
    assert "demo stopped" in (tmp_path / "demo.log").read_text()


def _wait_for(log, marker: str, process: subprocess.Popen, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log.seek(0)
        text = log.read()
        if marker in text:
            return text
        if process.poll() is not None:
            raise AssertionError(f"idp demo exited ({process.returncode}):\n{text[-3000:]}")
        time.sleep(0.2)
    raise AssertionError(f"idp demo did not start in {timeout}s")


def test_the_demo_suggests_citizens_not_yet_registered_so_a_second_tour_works(app, tmp_path):
    from idp.cli.demo import unregistered_citizens
    from idp.sandbox import SandboxCitizen
    from idp.services.registration import register_account

    with app.app_context():
        prepare_demo(EXAM, DemoState(tmp_path / "demo.json"))
        first = unregistered_citizens()
        assert [r.name for r in first] == ["李娜", "张伟"]
        assert all(r.card_type != "credit" and r.status == "active" and not r.demo for r in first)
        # the first tour registered 李娜: the next one is offered someone else
        register_account(SandboxCitizen.from_record(first[0]).new_account("lina2026", "Hrss-Demo-2026a"),
                         actor="test", channel="cli")
        assert [r.name for r in unregistered_citizens()] == ["张伟", "刘芳"]
        assert "王小明" not in [r.name for r in unregistered_citizens(limit=100)]  # the demo citizen


def test_the_sandbox_gives_citizens_a_second_card_for_the_success_paths(app):
    """变更用户信息 to another card and 手机号已停用？ to a new number can be shown succeeding."""
    from idp.cli.demo import second_cards
    from idp.sandbox.bank import load_records

    records = load_records()
    by_person = lambda r: [x for x in records if x.id_number == r.id_number and x.card_type != "credit"]
    seconds = second_cards()
    assert {r.name for r in seconds} >= {"王小明", "李娜", "张伟"}
    changed_phone = [r for r in seconds if r.phone != by_person(r)[0].phone]
    assert {r.name for r in changed_phone} >= {"王小明", "张伟"}  # a new reserved phone at another bank
    assert any(r.phone == by_person(r)[0].phone and r.bank != by_person(r)[0].bank for r in seconds)  # same phone
