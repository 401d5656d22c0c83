"""``idp demo``: the whole product on a laptop with one command (SPEC §9).

It creates what the demo needs when it is missing — the database and signing keys, the exam
candidate service registered as a first-party relying system, an administrator, and one verified
demo citizen whose records are in the sandbox bank — then serves, in this one process (the
in-process Redis stand-in serves one process only; threads are fine):

- the platform (the OpenID Provider), with the SMS outbox of development mode;
- the exam candidate service (``clients.exam``), a separate Flask application on its own port;
- 单位网上办事 (``clients.unitportal``), a second relying system that accepts 单位用户 only;
- the sandbox bank verification platform on its own port, reached by the platform over HTTP.

Generated passwords and the relying systems' client secrets are kept in a state file beside the
SQLite database (mode 0600), so every later run prints the same credentials.  Development only:
it refuses ``IDP_ENV=production``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import string
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

import click
from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from ..config import PROJECT_ROOT


EXAM_CLIENT_ID = "exam-service"
EXAM_CLIENT_NAME = "考生服务系统"
EXAM_SCOPE = "openid profile phone realname"
# the exam authority, as the exam guide names it (shown to candidates when the bank check still fails)
EXAM_CONTACTS = "深圳市考试院 电话：0755-88100099\n邮箱：ksykwb@szhrss.gov.cn"
UNITPORTAL_CLIENT_ID = "unit-portal"
UNITPORTAL_CLIENT_NAME = "单位网上办事"
UNITPORTAL_SCOPE = "openid unit"
ADMIN_USERNAME = "admin"
ADMIN_NAME = "系统管理员"
CITIZEN_USERNAME = "wangxiaoming"


def register(app: Flask) -> None:
    app.cli.add_command(demo_command)


# -- what the demo needs -------------------------------------------------------------------------
@dataclass
class DemoState:
    """Secrets the demo generated, kept so later runs can print them again."""

    path: Path
    exam_client_secret: str | None = None
    passwords: dict[str, str] = field(default_factory=dict)
    unitportal_client_secret: str | None = None

    @classmethod
    def load(cls, path: Path) -> DemoState:
        try:
            data = json.loads(path.read_text("utf-8"))
        except (FileNotFoundError, ValueError):
            return cls(path)
        return cls(path, data.get("exam_client_secret"), dict(data.get("passwords") or {}),
                   data.get("unitportal_client_secret"))

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"exam_client_secret": self.exam_client_secret, "passwords": self.passwords,
                           "unitportal_client_secret": self.unitportal_client_secret},
                          ensure_ascii=False, indent=2)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(body)


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str | None  # None: created earlier by someone else; the demo does not know it
    created: bool


@dataclass(frozen=True)
class DemoSetup:
    exam_client_id: str
    exam_client_secret: str
    admin: DemoAccount
    citizen: DemoAccount | None  # None: the demo citizen's document is registered under another name
    unitportal_client_id: str = UNITPORTAL_CLIENT_ID
    unitportal_client_secret: str = ""


def state_path(app: Flask) -> Path:
    """Beside the SQLite database (a fresh database gets fresh credentials), else in instance/."""
    url = app.config["DATABASE_URL"]
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        return Path(url.removeprefix("sqlite:///")).with_suffix(".demo.json")
    return PROJECT_ROOT / "instance" / "demo.json"


def demo_password() -> str:
    """A generated password that satisfies the platform's policy (§7)."""
    from ..services.identity.passwords import password_problems

    alphabet = string.ascii_letters + string.digits
    while True:
        candidate = ("Hrss-" + "".join(secrets.choice(alphabet) for _ in range(10)))
        if not password_problems(candidate, ADMIN_USERNAME) and not password_problems(candidate, CITIZEN_USERNAME):
            return candidate


def prepare_demo(exam_base_url: str, state: DemoState, unitportal_base_url: str | None = None) -> DemoSetup:
    """Create what is missing, in the current (provider) app context.  Safe to run again."""
    from .core import init_database_and_keys

    init_database_and_keys()
    secret = ensure_exam_client(exam_base_url, state)
    unit_secret = ensure_unitportal_client(unitportal_base_url, state) if unitportal_base_url else ""
    admin = ensure_admin(state)
    citizen = ensure_demo_citizen(state)
    state.save()
    return DemoSetup(EXAM_CLIENT_ID, secret, admin, citizen, UNITPORTAL_CLIENT_ID, unit_secret)


def _exam_spec(exam_base_url: str):
    from ..services.admin.clients import ClientSpec

    return ClientSpec(
        name=EXAM_CLIENT_NAME,
        client_id=EXAM_CLIENT_ID,
        description="人事考试考生服务系统（演示）：通过统一用户平台注册、登录、维护用户信息",
        first_party=True,
        redirect_uris=[f"{exam_base_url}/auth/callback"],
        post_logout_redirect_uris=[f"{exam_base_url}/logged-out"],
        backchannel_logout_uri=f"{exam_base_url}/backchannel-logout",
        frontchannel_logout_uri=f"{exam_base_url}/frontchannel-logout",
        frontchannel_logout_session_required=True,
        scope=EXAM_SCOPE,
        token_endpoint_auth_method="client_secret_basic",
        contacts=EXAM_CONTACTS,
    )


def _unitportal_spec(base_url: str):
    from ..services.admin.clients import ClientSpec

    return ClientSpec(
        name=UNITPORTAL_CLIENT_NAME,
        client_id=UNITPORTAL_CLIENT_ID,
        description="单位网上办事（演示）：单位用户通过统一用户平台注册、登录",
        first_party=True,
        redirect_uris=[f"{base_url}/auth/callback"],
        post_logout_redirect_uris=[f"{base_url}/logged-out"],
        scope=UNITPORTAL_SCOPE,
        token_endpoint_auth_method="client_secret_basic",
        allowed_user_types="unit",
    )


def ensure_exam_client(exam_base_url: str, state: DemoState) -> str:
    """The exam service as a first-party confidential client; its URIs follow the exam port, and
    its secret is rotated only when the demo no longer knows a working one."""
    state.exam_client_secret = _ensure_client(_exam_spec(exam_base_url), state.exam_client_secret)
    return state.exam_client_secret


def ensure_unitportal_client(base_url: str, state: DemoState) -> str:
    """单位网上办事, registered for 单位用户 only, the same way."""
    state.unitportal_client_secret = _ensure_client(_unitportal_spec(base_url), state.unitportal_client_secret)
    return state.unitportal_client_secret


def _ensure_client(wanted, known_secret: str | None) -> str:
    """Create the relying system, or move its URIs to the demo's ports; returns a working secret
    (the known one, else a new one)."""
    from ..extensions import db
    from ..models import Client
    from ..services.admin.staff import Actor
    from ..services.admin.client_secrets import verify_client_secret
    from ..services.admin.clients import create_client, rotate_client_secret, spec_of, update_client

    actor = Actor(username="demo", role="admin")
    client_id, name = wanted.client_id, wanted.name
    client = db.session.query(Client).filter_by(client_id=client_id).one_or_none()
    if client is None:
        _, secret = create_client(wanted, actor=actor)
        return secret
    current = spec_of(client)
    moved = replace(current, redirect_uris=wanted.redirect_uris,
                    post_logout_redirect_uris=wanted.post_logout_redirect_uris,
                    backchannel_logout_uri=wanted.backchannel_logout_uri,
                    frontchannel_logout_uri=wanted.frontchannel_logout_uri,
                    frontchannel_logout_session_required=wanted.frontchannel_logout_session_required,
                    contacts=current.contacts or wanted.contacts)
    if moved != current:
        update_client(client_id, moved, actor=actor, reason=f"idp demo：{name}端口变更")
    if not client.enabled:
        from ..services.admin.clients import enable_client

        enable_client(client_id, actor=actor, reason=f"idp demo：启用{name}")
    if not (known_secret and verify_client_secret(client, known_secret)):
        known_secret = rotate_client_secret(client_id, actor=actor, reason=f"idp demo：重新生成{name}密钥")
    return known_secret


def ensure_admin(state: DemoState) -> DemoAccount:
    from ..services.accounts.records import NewAccount, create_account, find_by_username

    if find_by_username(ADMIN_USERNAME) is not None:
        return DemoAccount(ADMIN_USERNAME, state.passwords.get(ADMIN_USERNAME), created=False)
    password = demo_password()
    create_account(NewAccount(username=ADMIN_USERNAME, password=password, name=ADMIN_NAME),
                   real_name_verified=False, role="admin", actor="demo")
    state.passwords[ADMIN_USERNAME] = password
    return DemoAccount(ADMIN_USERNAME, password, created=True)


def ensure_demo_citizen(state: DemoState) -> DemoAccount | None:
    """王小明, registered through the same service as the wizard: identity rules, then the
    sandbox bank's four-element check, then the account."""
    from ..errors import DocumentTaken
    from ..sandbox import DEMO_CITIZEN
    from ..services.accounts.records import find_by_username
    from ..services.registration import register_account

    if find_by_username(CITIZEN_USERNAME) is not None:
        return DemoAccount(CITIZEN_USERNAME, state.passwords.get(CITIZEN_USERNAME), created=False)
    password = demo_password()
    try:
        register_account(DEMO_CITIZEN.new_account(CITIZEN_USERNAME, password), actor="demo", channel="cli")
    except DocumentTaken:
        return None  # someone registered the demo citizen's document through the wizard already
    state.passwords[CITIZEN_USERNAME] = password
    return DemoAccount(CITIZEN_USERNAME, password, created=True)


def unregistered_citizens(limit: int = 2) -> list:
    """Fictitious citizens of the sandbox bank whose document is not registered yet, one usable
    card each (debit or social-security, active): what 立即注册 can be shown with, on every run of
    the tour, not only the first.  Needs the provider's app context."""
    from ..sandbox.bank import load_records
    from ..services.accounts.records import find_by_document

    chosen, seen = [], set()
    for record in load_records():
        person = (record.id_type, record.id_number)
        if record.demo or person in seen or record.card_type == "credit" or record.status != "active":
            continue
        seen.add(person)
        if find_by_document(record.id_type, record.id_number) is None:
            chosen.append(record)
            if len(chosen) == limit:
                break
    return chosen


def unregistered_unit():
    """A fictitious unit of the sandbox registry, active and not registered yet (the file's demo
    unit first): what 单位用户注册 can be shown with on every run.  Needs the app context."""
    from ..sandbox.registry import load_units
    from ..services.accounts.records import find_by_uscc

    units = sorted((u for u in load_units() if u.status == "active"), key=lambda u: not u.demo)
    return next((u for u in units if find_by_uscc(u.uscc) is None), None)


def second_cards() -> list:
    """Cards of citizens who have another card in the sandbox: 变更用户信息 and 手机号已停用？ succeed
    with them (the record's note says how)."""
    from ..sandbox.bank import load_records

    records = [r for r in load_records() if r.card_type != "credit" and r.status == "active"]
    first_card = {}
    for record in records:
        first_card.setdefault((record.id_type, record.id_number), record)
    return [r for r in records if first_card[(r.id_type, r.id_number)] is not r]


# -- serving -------------------------------------------------------------------------------------
class QuietRequestHandler(WSGIRequestHandler):
    """Request log lines with the path only: query strings carry authorization codes and state."""

    def log_request(self, code="-", size="-") -> None:
        self.log("info", '"%s %s" %s', self.command, self.path.split("?", 1)[0], getattr(code, "value", code))


def _server(host: str, port: int, app, label: str) -> BaseWSGIServer:
    try:
        return make_server(host, port, app, threaded=True, request_handler=QuietRequestHandler)
    except OSError as exc:
        raise click.ClickException(f"{label}: port {port} on {host} is not free ({exc.strerror}); "
                                   f"choose another with the matching --*port option") from None


def _nothing(environ, start_response):  # the app of a port probe, never called
    start_response("503 Service Unavailable", [])
    return [b""]


def _start(server: BaseWSGIServer, name: str) -> BaseWSGIServer:
    threading.Thread(target=server.serve_forever, name=f"demo-{name}", daemon=True).start()
    return server


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int, help="the platform (OpenID Provider)")
@click.option("--exam-port", default=5100, show_default=True, type=int, help="the exam candidate service")
@click.option("--unitportal-port", default=5200, show_default=True, type=int, help="单位网上办事, the units' portal")
@click.option("--bank-port", default=8601, show_default=True, type=int, help="the sandbox bank")
@click.option("--captcha", "fixed_captcha", default=None, metavar="TEXT",
              help="pin every captcha answer to TEXT (screen recordings, scripted demos); production refuses it")
@click.option("--setup-only", is_flag=True, help="create what the demo needs, print it, and exit")
def demo_command(host: str, port: int, exam_port: int, unitportal_port: int, bank_port: int,
                 fixed_captcha: str | None, setup_only: bool) -> None:
    """Run the whole demo: platform, exam service, unit portal, bank and SMS sandboxes."""
    from .. import create_app
    from ..sandbox.bank import BankSandbox
    from clients.exam import create_app as create_exam_app
    from clients.exam.models import create_schema
    from clients.unitportal import create_app as create_unitportal_app

    if os.environ.get("IDP_ENV", "development") != "development":
        raise click.ClickException("idp demo runs the development settings only; unset IDP_ENV")
    issuer = os.environ.get("IDP_ISSUER") or f"http://{host}:{port}"
    exam_url = os.environ.get("EXAM_BASE_URL") or f"http://{host}:{exam_port}"
    unitportal_url = os.environ.get("UNITPORTAL_BASE_URL") or f"http://{host}:{unitportal_port}"
    own_bank = not os.environ.get("IDP_BANK_URL")
    overrides: dict = {"ISSUER": issuer}
    if own_bank:
        overrides["BANK_URL"] = f"http://{host}:{bank_port}"
    if fixed_captcha:
        overrides["CAPTCHA_FIXED"] = fixed_captcha
    if not setup_only:  # before anything is created: a busy port should cost nothing
        for label, taken in (("platform", port), ("exam service", exam_port), ("unit portal", unitportal_port),
                             ("sandbox bank", bank_port)):
            if label != "sandbox bank" or own_bank:
                _server(host, taken, _nothing, label).server_close()
    provider = create_app("development", **overrides)

    servers: list[tuple[str, BaseWSGIServer]] = []
    if own_bank and not setup_only:
        # serving before the setup: registering the demo citizen asks the bank over HTTP
        bank = BankSandbox.from_data_file(provider.config["BANK_SECRET"])
        servers.append(("bank", _start(_server(host, bank_port, bank, "sandbox bank"), "bank")))
    elif own_bank:
        provider.config["BANK_URL"] = ""  # setup only: the sandbox mounted in-process answers
    with provider.app_context():
        state = DemoState.load(state_path(provider))
        setup = prepare_demo(exam_url, state, unitportal_url)
        provider_db = provider.config["DATABASE_URL"]

    exam_settings = dict(ISSUER=issuer, BASE_URL=exam_url, CLIENT_ID=setup.exam_client_id,
                         CLIENT_SECRET=setup.exam_client_secret)
    if "EXAM_DATABASE_URL" not in os.environ and provider_db.startswith("sqlite:///"):
        beside = Path(provider_db.removeprefix("sqlite:///")).parent / "exam.sqlite"
        exam_settings["DATABASE_URL"] = f"sqlite:///{beside}"
    if "EXAM_KEYS_DIR" not in os.environ:
        exam_settings["KEYS_DIR"] = str(Path(provider.config["KEYS_DIR"]) / "exam")
    exam = create_exam_app("development", **exam_settings)
    with exam.app_context():
        create_schema()
    unitportal_settings = dict(ISSUER=issuer, BASE_URL=unitportal_url, CLIENT_ID=setup.unitportal_client_id,
                               CLIENT_SECRET=setup.unitportal_client_secret)
    if "UNITPORTAL_SESSION_DIR" not in os.environ and provider_db.startswith("sqlite:///"):
        unitportal_settings["SESSION_DIR"] = str(Path(provider_db.removeprefix("sqlite:///")).parent
                                                 / "unitportal-sessions")
    unitportal = create_unitportal_app("development", **unitportal_settings)

    _print_summary(provider, exam, setup, issuer, exam_url, f"http://{host}:{bank_port}" if own_bank else None,
                   fixed_captcha or provider.config.get("CAPTCHA_FIXED"), unitportal_url)
    if setup_only:
        return

    from ..services.audit.stream import start_in_process

    start_in_process(provider)  # the buffered audit events reach 审计日志 within a second
    try:
        servers.append(("platform", _start(_server(host, port, provider, "platform"), "platform")))
        servers.append(("exam", _start(_server(host, exam_port, exam, "exam service"), "exam")))
        servers.append(("unitportal", _start(_server(host, unitportal_port, unitportal, "unit portal"), "unitportal")))
    except click.ClickException:
        for _, server in servers:
            server.shutdown()
        raise
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):  # Ctrl+C, or a process manager
        signal.signal(signum, lambda *_: stop.set())
    click.echo("demo running - Ctrl+C to stop")
    try:
        while not stop.wait(3600):
            pass
    finally:
        for _, server in servers:
            server.shutdown()
        click.echo("demo stopped")


def _print_summary(provider: Flask, exam: Flask, setup: DemoSetup, issuer: str, exam_url: str,
                   bank_url: str | None, fixed_captcha: str | None, unitportal_url: str | None = None) -> None:
    from ..sandbox import DEMO_CITIZEN
    from ..services.identity.rules import ID_TYPES
    from ..services.verification.banks import bank_name

    echo = click.echo
    rule = "=" * 78
    echo(rule)
    echo("HRSS Unified Identity - demo")
    echo(rule)
    rows = [("考生服务系统  exam service", f"{exam_url}/   <- start here"),
            *([("单位网上办事  unit portal", f"{unitportal_url}/   <- units start here")] if unitportal_url else []),
            ("统一用户平台  the platform (OP)", f"{issuer}/"),
            ("  discovery", f"{issuer}/.well-known/openid-configuration")]
    if "admin.index" in provider.view_functions:
        rows.append(("  管理后台  administration", f"{issuer}/admin/"))
    if "dev.sms_outbox" in provider.view_functions:
        rows.append(("短信发件箱  SMS outbox", f"{issuer}/dev/sms-outbox"))
    if bank_url:
        rows.append(("银行核验沙箱  sandbox bank", f"{bank_url}/health"))
    else:
        rows.append(("银行核验平台  IDP_BANK_URL", provider.config["BANK_URL"]))
    for label, value in rows:
        echo(f"  {_pad(label, 34)}{value}")
    echo("")
    echo("Accounts (username / password)")
    echo(f"  {_pad('管理员  administrator', 34)}{_account(setup.admin)}")
    with provider.app_context():  # the console wants a second factor: the link to enrol one
        from .mfa_cli import enrolment_hint

        echo(f"  {_pad('  第二因素  second factor', 34)}{enrolment_hint(setup.admin.username)}")
    if setup.citizen is None:
        echo(f"  {_pad('演示市民  demo citizen', 34)}(the demo citizen's document is registered under another username)")
    else:
        echo(f"  {_pad(f'演示市民  {DEMO_CITIZEN.name}, verified', 34)}{_account(setup.citizen)}")
    echo("")
    with provider.app_context():
        fresh = unregistered_citizens()
    if fresh:
        echo("立即注册 (register a new candidate) with a fictitious citizen of the sandbox bank, not registered yet:")
        for record in fresh:
            echo(f"  {record.name}  {ID_TYPES.get(record.id_type, record.id_type)} {record.id_number}  {bank_name(record.bank)}"
                 f" {record.card_number}  手机 {record.phone}")
    else:
        echo("立即注册: every fictitious citizen of the sandbox bank is registered already (a fresh database: "
             "delete the instance/ files)")
    echo("变更用户信息 / 手机号已停用？ succeed with these second cards (after the citizen registered):")
    for record in second_cards():
        echo(f"  {record.name}  {bank_name(record.bank)} {record.card_number}  手机 {record.phone}")
    echo("  (every record: idp/sandbox/data/bank_records.json; the SMS code arrives in the outbox above)")
    with provider.app_context():
        unit = unregistered_unit()
    if unit is not None:
        from ..services.identity.units import UNIT_TYPES

        echo("单位用户注册 (register a unit, e.g. from 单位网上办事) with a fictitious unit of the sandbox registry,"
             " not registered yet:")
        echo(f"  {unit.unit_name}  统一社会信用代码 {unit.uscc}  {UNIT_TYPES.get(unit.unit_type, unit.unit_type)}"
             f"  法定代表人 {unit.legal_rep_name}")
        echo("  经办人 (handler): any fictitious citizen above, with their card and phone"
             " (every unit: idp/sandbox/data/registry_units.json)")
    else:
        echo("单位用户注册: every active unit of the sandbox registry is registered already")
    echo("")
    if fixed_captcha:
        echo(f"验证码 (captcha) is PINNED to {fixed_captcha!r} for this demo; production refuses this setting.")
    else:
        echo("验证码 (captcha): type the characters in the image (or pin them: idp demo --captcha TEXT).")
    echo(f"data: {provider.config['DATABASE_URL']}  and  {exam.config['DATABASE_URL']}")
    echo(rule)


def _account(account: DemoAccount) -> str:
    return f"{account.username} / {account.password or '(created earlier; password not recorded by the demo)'}"


def _pad(text: str, width: int) -> str:
    """Left-justify for a terminal, where a CJK character takes two columns."""
    import unicodedata

    used = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(1, width - used)
