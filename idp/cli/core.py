"""init, serve, keys, clients, users, admin."""

from __future__ import annotations

import json
import sys
from datetime import date, datetime, timezone

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from ..errors import UserError
from ..services.identity.units import UNIT_TYPES as UNIT_TYPE_CHOICES

keys_cli = AppGroup("keys", help="Signing keys (JWKS).")
clients_cli = AppGroup("clients", help="Relying systems (OAuth clients).")
users_cli = AppGroup("users", help="Citizen and unit accounts.")
admin_cli = AppGroup("admin", help="Administrators.")


def register(app: Flask) -> None:
    app.cli.add_command(init_command)
    app.cli.add_command(serve_command)
    app.cli.add_command(keys_cli)
    app.cli.add_command(clients_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(admin_cli)


def init_database_and_keys() -> None:
    from flask_migrate import upgrade

    from ..db_pool import long_statements
    from ..oauth.keys import key_store

    with long_statements():  # a migration may rightly run for minutes
        upgrade(revision="heads")
    key_store().ensure()


@click.command("init")
@with_appcontext
def init_command() -> None:
    """Create or migrate the database and generate signing keys if there are none."""
    init_database_and_keys()
    click.echo(f"database ready: {current_app.config['DATABASE_URL'].split('@')[-1]}")
    store = __import__('idp.oauth.keys', fromlist=['x']).key_store()
    click.echo("signing keys: " + ", ".join(f"{store.current(alg).kid} ({alg})" for alg in ("RS256", "ES256")))


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@with_appcontext
def serve_command(host: str, port: int) -> None:
    """Run the development server (production: the granian command of the README's Production section)."""
    import os

    app = current_app._get_current_object()
    if "IDP_ISSUER" not in os.environ:
        app.config["ISSUER"] = f"http://{host}:{port}"
    init_database_and_keys()
    from ..services.audit.stream import start_in_process

    start_in_process(app)  # development: the buffered audit events of this process's own Redis stand-in
    click.echo(f"HRSS Unified Identity at {app.config['ISSUER']}/  (Ctrl+C to stop)")
    # werkzeug's server itself: Flask ignores app.run() inside its own CLI and would return at once
    from werkzeug.serving import run_simple

    run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)


# -- keys -----------------------------------------------------------------------------------------
@keys_cli.command("rotate")
@click.option("--alg", type=click.Choice(["RS256", "ES256"]), default=None,
              help="rotate the key of this algorithm only (default: both)")
def keys_rotate(alg: str | None) -> None:
    """Add a new current signing key per algorithm; the old ones stay published until their tokens expire."""
    from ..oauth.keys import SUPPORTED_ALGS, key_store

    for name in (alg,) if alg else SUPPORTED_ALGS:
        key = key_store().rotate(name)
        click.echo(f"new current key {key.kid} ({key.alg})")


@keys_cli.command("list")
def keys_list() -> None:
    """Show every signing key and whether it is current, still published, or expired."""
    from ..oauth.keys import key_store

    store = key_store()
    now = datetime.now(timezone.utc)
    for key in store.keys():
        status = key.status(store.publish_for, now)
        until = ""
        if key.retired_at:
            until = f" until {(key.retired_at + store.publish_for).isoformat(timespec='seconds')}"
        click.echo(f"{key.kid}  {key.alg}  created {key.created_at.isoformat(timespec='seconds')}  {status}{until}")


# -- clients ------------------------------------------------------------------------------------
@clients_cli.command("add")
@click.option("--name", required=True)
@click.option("--redirect-uri", "redirect_uris", multiple=True)
@click.option("--post-logout-redirect-uri", "post_logout_uris", multiple=True)
@click.option("--backchannel-logout-uri", default=None)
@click.option("--scope", default="openid profile")
@click.option("--grant-type", "grant_types", multiple=True)
@click.option("--auth-method", default=None, help="client_secret_basic, client_secret_post, private_key_jwt or none")
@click.option("--public", is_flag=True, help="an SPA or mobile app: no secret, PKCE required")
@click.option("--service", is_flag=True, help="machine-to-machine: client_credentials only")
@click.option("--first-party", is_flag=True, help="a system of the bureau: no consent page")
@click.option("--client-id", default=None, help="choose the client_id (default: generated)")
@click.option("--contacts", "contacts", multiple=True,
              help="where its users turn when registration still fails, e.g. '电话：0755-88100099' (repeat per line)")
@click.option("--user-types", "allowed_user_types", type=click.Choice(["personal", "unit", "both"]),
              default="personal", show_default=True, help="允许登录的用户类型: persons, units or both")
@click.option("--subject-type", type=click.Choice(["public", "pairwise"]), default="public",
              help="pairwise: a sub of its own per sector (OpenID Connect Core 8.1)")
@click.option("--sector", default=None, help="the pairwise sector's host (default: the redirect URIs' host)")
@click.option("--require-par", is_flag=True, help="authorization requests only through /oauth/par (RFC 9126)")
@click.option("--frontchannel-logout-uri", default=None, help="loaded in a hidden iframe by the logout page")
@click.option("--frontchannel-session-required", is_flag=True, help="iss and sid on the front-channel logout URI")
@click.option("--min-acr", default=None, help="the least acr of every login, e.g. urn:hrss:acr:mfa")
@click.option("--require-dpop", is_flag=True, help="every token request must carry a DPoP proof (RFC 9449)")
@click.option("--json", "as_json", is_flag=True)
def clients_add(name, redirect_uris, post_logout_uris, backchannel_logout_uri, scope, grant_types,
                auth_method, public, service, first_party, client_id, contacts, allowed_user_types, subject_type,
                sector, require_par, frontchannel_logout_uri, frontchannel_session_required, min_acr,
                require_dpop, as_json) -> None:
    """Register a relying system; prints client_id and the secret (shown once)."""
    from ..services.admin.staff import cli_actor
    from ..services.admin.clients import ClientSpec, create_client

    client_type = "public" if public else "service" if service else "confidential"
    spec = ClientSpec(
        name=name,
        client_type=client_type,
        redirect_uris=list(redirect_uris),
        post_logout_redirect_uris=list(post_logout_uris),
        backchannel_logout_uri=backchannel_logout_uri,
        scope=scope,
        grant_types=list(grant_types) or None,
        token_endpoint_auth_method=auth_method,
        first_party=first_party,
        client_id=client_id,
        contacts="\n".join(contacts) or None,
        allowed_user_types=allowed_user_types,
        subject_type=subject_type,
        sector_identifier=sector,
        require_pushed_authorization_requests=require_par,
        frontchannel_logout_uri=frontchannel_logout_uri,
        frontchannel_logout_session_required=frontchannel_session_required,
        min_acr=min_acr,
        dpop_bound_access_tokens=require_dpop,
    )
    try:
        client, secret = create_client(spec, actor=cli_actor())
    except UserError as exc:
        raise click.ClickException(exc.message) from None
    if as_json:
        click.echo(json.dumps({"client_id": client.client_id, "client_secret": secret}))
        return
    click.echo(f"client_id:     {client.client_id}")
    if secret:
        click.echo(f"client_secret: {secret}")
        click.echo("(the secret is shown only now; store it in the relying system's settings)")


# -- users --------------------------------------------------------------------------------------
def _account_options(fn):
    options = [
        click.option("--username", required=True),
        click.option("--password", required=True, help="prompted if '-'"),
        click.option("--name", required=True),
        click.option("--id-type", default="resident_id", show_default=True),
        click.option("--id-number", required=True),
        click.option("--phone", required=True),
        click.option("--gender", type=click.Choice(["M", "F"]), default=None),
        click.option("--birthdate", default=None, help="YYYY-MM-DD (taken from a resident ID number when omitted)"),
        # the bank four-element check is what proves the identity: both are needed (SPEC §2)
        click.option("--bank", "bank_code", required=True, help="bank code, e.g. ICBC (idp/services/banks.py)"),
        click.option("--card-number", required=True, help="the debit card the bank check runs against"),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _new_account(username, password, name, id_type, id_number, phone, gender, birthdate, bank_code, card_number):
    from ..services.accounts.records import NewAccount

    if password == "-":
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    return NewAccount(
        username=username,
        password=password,
        name=name,
        id_type=id_type,
        id_number=id_number,
        phone=phone,
        gender=gender,
        birthdate=date.fromisoformat(birthdate) if birthdate else None,
        bank_code=bank_code,
        card_number=card_number,
    )


@users_cli.command("create")
@_account_options
@click.option("--unit", "is_unit", is_flag=True,
              help="a 单位用户: --name, the document, --phone and the card are then its handler's (经办人)")
@click.option("--unit-name", default=None, help="单位名称, as the enterprise credit registry has it")
@click.option("--uscc", default=None, help="统一社会信用代码 (18 characters, GB 32100 check character)")
@click.option("--unit-type", type=click.Choice(list(UNIT_TYPE_CHOICES)), default="enterprise", show_default=True,
              help="单位类型")
@click.option("--legal-rep", "legal_rep_name", default=None, help="法定代表人（负责人）姓名")
def users_create(is_unit, unit_name, uscc, unit_type, legal_rep_name, **kwargs) -> None:
    """Create a citizen account (or with --unit a unit account) through the same services the
    registration wizards use: the registry check of the unit, the bank check of the person."""
    from ..services.registration import register_account

    unit_fields = {"--unit-name": unit_name, "--uscc": uscc, "--legal-rep": legal_rep_name}
    if not is_unit and any(unit_fields.values()):
        raise click.UsageError("--unit-name, --uscc and --legal-rep describe a unit: add --unit")
    if is_unit and (missing := [name for name, value in unit_fields.items() if not value]):
        raise click.UsageError(f"a unit account needs {', '.join(missing)}")
    try:
        data = _new_account(**kwargs)
        if is_unit:
            from dataclasses import replace

            from ..services.unit_registration import check_unit, register_unit_account

            unit = check_unit(unit_name, "uscc", uscc, unit_type, legal_rep_name)
            user = register_unit_account(replace(data, unit=unit), actor="cli")
        else:
            user = register_account(data, actor="cli")
    except UserError as exc:
        click.echo(f"refused: {exc.message}", err=True)
        sys.exit(1)
    kind = f"unit {user.unit_name} ({user.uscc}), " if user.is_unit else ""
    click.echo(f"created {kind}{user.username} (sub {user.sub})")


@admin_cli.command("create")
@click.option("--username", required=True)
@click.option("--password", required=True, help="prompted if '-'")
@click.option("--name", required=True)
@click.option("--role", type=click.Choice(["admin", "operator", "auditor"]), default="admin", show_default=True)
def admin_create(username: str, password: str, name: str, role: str) -> None:
    """Create an administrator account (bootstrap the first admin)."""
    from ..services.accounts.records import NewAccount, create_account

    if password == "-":
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        user = create_account(
            NewAccount(username=username, password=password, name=name),
            real_name_verified=False, role=role, actor="cli",
        )
    except UserError as exc:
        click.echo(f"refused: {exc.message}", err=True)
        sys.exit(1)
    click.echo(f"created {role} {user.username}")
    from .mfa_cli import echo_enrolment_link

    echo_enrolment_link(user)
