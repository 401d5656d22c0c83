"""What the README says about the unit portal and 单位用户, run: the demo's printed block and its
unit to register, the portal served by ``idp demo`` and reached from its printed URL, the
commands that register and start the portal on its own."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from idp.cli.demo import UNITPORTAL_CLIENT_ID, DemoState, prepare_demo, unregistered_unit
from idp.extensions import db
from idp.models import Client
from idp.sandbox import SandboxCitizen
from idp.sandbox.bank import load_records
from idp.services.admin.client_secrets import verify_client_secret
from idp.services.identity.units import UnitInfo
from idp.services.unit_registration import register_unit_account

from ..exam.test_demo import _wait_for
from ..live import free_port
from ..units.conftest import unit

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "EXAM_", "UNITPORTAL_"))}
    env.update(IDP_DATABASE_URL=f"sqlite:///{tmp_path / 'idp.sqlite'}", IDP_KEYS_DIR=str(tmp_path / "keys"),
               PYTHONUNBUFFERED="1")
    return env


def _readme_demo_block() -> list[str]:
    block = re.search(r"`scripts/demo` prints the URLs.*?```\n(.*?)```", README, re.S).group(1)
    return [line.rstrip() for line in block.splitlines() if line.strip()]


def test_the_demo_prints_the_readme_block_and_the_readme_tours_unit(tmp_path):
    idp = Path(sys.executable).with_name("idp")
    result = subprocess.run([str(idp), "demo", "--setup-only"], env=_env(tmp_path), cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    printed = [line.rstrip() for line in result.stdout.splitlines()]
    for line in _readme_demo_block():
        if "…" in line:  # a generated password
            prefix = line.split("…")[0]
            assert any(p.startswith(prefix) for p in printed), line
        else:
            assert line in printed, line
    u = unit(demo=True)
    assert f"  {u.unit_name}  统一社会信用代码 {u.uscc}  企业  法定代表人 {u.legal_rep_name}" in printed
    for named in (u.unit_name, f"`{u.uscc}`", u.legal_rep_name, "registry_units.json", "**单位网上办事**"):
        assert named in README, named


def test_the_demo_registers_the_portal_for_units_only_and_offers_a_unit_not_registered_yet(app, tmp_path):
    state = DemoState(tmp_path / "demo.json")
    with app.app_context():
        setup = prepare_demo("http://127.0.0.1:5100", state, "http://127.0.0.1:5200")
        client = db.session.query(Client).filter_by(client_id=UNITPORTAL_CLIENT_ID).one()
        assert (client.allowed_user_types, client.scope, client.first_party) == ("unit", "openid unit", True)
        assert client.redirect_uris == ["http://127.0.0.1:5200/auth/callback"]
        assert verify_client_secret(client, setup.unitportal_client_secret)
        again = prepare_demo("http://127.0.0.1:5100", DemoState.load(tmp_path / "demo.json"), "http://127.0.0.1:5200")
        assert again.unitportal_client_secret == setup.unitportal_client_secret
        first = unregistered_unit()
        assert first == unit(demo=True)
        lina = SandboxCitizen.from_record(next(r for r in load_records() if r.name == "李娜"))
        register_unit_account(replace(lina.new_account("unit2026", "Hrss-Demo-2026a"),
                                      unit=UnitInfo(first.unit_name, first.unit_id_type, first.uscc,
                                                    first.unit_type, first.legal_rep_name)))
        second = unregistered_unit()
        assert second is not None and second.uscc != first.uscc and second.status == "active"


@pytest.mark.slow
def test_idp_demo_serves_the_unit_portal_at_its_printed_url(tmp_path):
    ports = {name: free_port() for name in ("port", "exam-port", "unitportal-port", "bank-port")}
    idp = Path(sys.executable).with_name("idp")
    command = [str(idp), "demo", "--captcha", "DEMO", *[a for n, p in ports.items() for a in (f"--{n}", str(p))]]
    log = (tmp_path / "demo.log").open("w+")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=_env(tmp_path), cwd=tmp_path)
    try:
        output = _wait_for(log, "demo running", process)
        portal = f"http://127.0.0.1:{ports['unitportal-port']}"
        assert f"{portal}/   <- units start here" in output
        home = requests.get(f"{portal}/", timeout=10)
        assert home.status_code == 200 and "单位用户登录" in home.text
        to_platform = requests.get(f"{portal}/login", timeout=10, allow_redirects=False)
        assert to_platform.headers["Location"].startswith(f"http://127.0.0.1:{ports['port']}/oauth/authorize?")
        login = requests.get(to_platform.headers["Location"], timeout=10, allow_redirects=False)
        assert login.headers["Location"] == "/login?type=unit"
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


def test_the_readme_commands_register_and_start_the_portal_on_its_own(runner, tmp_path):
    added = runner.invoke(args=["clients", "add", "--name", "单位网上办事", "--first-party", "--user-types", "unit",
                                "--scope", "openid unit", "--redirect-uri", "https://dw.example.test/auth/callback",
                                "--post-logout-redirect-uri", "https://dw.example.test/logged-out", "--json"])
    assert added.exit_code == 0, added.output
    assert "flask --app clients.unitportal run --port 5200" in README
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNITPORTAL_")}
    env.update(UNITPORTAL_CLIENT_ID="unit-portal", UNITPORTAL_SESSION_DIR=str(tmp_path / "sessions"))
    routes = subprocess.run([str(Path(sys.executable).with_name("flask")), "--app", "clients.unitportal", "routes"],
                            env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert routes.returncode == 0, routes.stderr[-2000:]
    for path in ("/auth/callback", "/logged-out", "/login", "/register", "/logout"):
        assert path in routes.stdout
