"""Administration from the command line: the same service functions as the console (/admin).

``idp clients list|show|update|disable|enable|rotate-secret``,
``idp users search|show|lock|unlock|logout|disable|enable``,
``idp admin list|grant|revoke``, ``idp audit list|export|prune|drain``.

Commands act as ``cli:<operating-system user>`` in the audit log, with full rights: whoever can
run them already holds the server's database and keys.  Every change takes ``--reason``.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import replace
from datetime import timedelta

import click
from flask import Flask
from flask.cli import AppGroup

from ..errors import UserError
from ..services.admin.staff import cli_actor
from .core import admin_cli, clients_cli, users_cli

audit_cli = AppGroup("audit", help="The audit log: list, export, retention, the buffer's drainer.")

_reason = click.option("--reason", required=True, help="why (recorded in the audit log; no personal data)")


def register(app: Flask) -> None:
    # the clients, users and admin groups are added by core.register; audit is ours
    app.cli.add_command(audit_cli)


def _refuse(exc: UserError):
    raise click.ClickException(exc.message) from None


def _echo_json(value) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


# -- 应用系统管理 ----------------------------------------------------------------------------------
@clients_cli.command("list")
@click.option("--search", default=None, help="part of the name or client_id")
@click.option("--status", type=click.Choice(["enabled", "disabled"]), default=None)
@click.option("--json", "as_json", is_flag=True)
def clients_list(search, status, as_json) -> None:
    """List relying systems."""
    from ..services.admin.clients import client_summary, list_clients

    rows = list_clients(search, status=status)
    if as_json:
        _echo_json([client_summary(c) for c in rows])
        return
    for c in rows:
        state = "enabled " if c.enabled else "disabled"
        click.echo(f"{c.client_id:<32} {state} {c.client_type:<12} {c.name}")


@clients_cli.command("show")
@click.argument("client_id")
def clients_show(client_id) -> None:
    """Show one relying system's settings (JSON; never a secret)."""
    from ..services.admin.clients import client_summary, get_client

    try:
        _echo_json(client_summary(get_client(client_id)))
    except UserError as exc:
        _refuse(exc)


@clients_cli.command("update")
@click.argument("client_id")
@click.option("--name", default=None)
@click.option("--description", default=None)
@click.option("--type", "client_type", type=click.Choice(["confidential", "public", "service"]), default=None)
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="replaces all redirect URIs (repeat)")
@click.option("--post-logout-redirect-uri", "post_logout_uris", multiple=True, help="replaces all (repeat)")
@click.option("--no-post-logout-redirect-uris", is_flag=True, help="remove every post-logout URI")
@click.option("--backchannel-logout-uri", default=None, help="'' removes it")
@click.option("--scope", default=None, help="the whole allowed scope, e.g. 'openid profile realname'")
@click.option("--grant-type", "grant_types", multiple=True, help="replaces the grant types (repeat)")
@click.option("--auth-method", default=None)
@click.option("--first-party/--third-party", default=None)
@click.option("--jwks-file", type=click.File("r"), default=None, help="public JWKS for private_key_jwt")
@click.option("--access-token-lifetime", type=int, default=None, help="seconds; 0 for the default")
@click.option("--refresh-token-lifetime", type=int, default=None, help="seconds; 0 for the default")
@click.option("--contacts", "contacts", multiple=True,
              help="replaces its contacts shown to its users (repeat per line; '' removes them)")
@click.option("--user-types", "allowed_user_types", type=click.Choice(["personal", "unit", "both"]), default=None,
              help="允许登录的用户类型: persons, units or both")
@click.option("--subject-type", type=click.Choice(["public", "pairwise"]), default=None,
              help="pairwise: a sub of its own per sector; changing it changes the subs the system knows")
@click.option("--sector", default=None, help="the pairwise sector's host ('' : the redirect URIs' host)")
@click.option("--require-par/--no-require-par", default=None, help="authorization requests only through /oauth/par")
@click.option("--frontchannel-logout-uri", default=None, help="'' removes it")
@click.option("--frontchannel-session-required/--no-frontchannel-session-required", default=None,
              help="iss and sid on the front-channel logout URI")
@click.option("--min-acr", default=None, help="the least acr of every login, e.g. urn:hrss:acr:mfa ('' removes it)")
@click.option("--require-dpop/--no-require-dpop", default=None, help="every token request must carry a DPoP proof")
@_reason
def clients_update(client_id, name, description, client_type, redirect_uris, post_logout_uris,
                   no_post_logout_redirect_uris, backchannel_logout_uri, scope, grant_types, auth_method,
                   first_party, jwks_file, access_token_lifetime, refresh_token_lifetime, contacts,
                   allowed_user_types, subject_type, sector, require_par, frontchannel_logout_uri,
                   frontchannel_session_required, min_acr, require_dpop,
                   reason) -> None:
    """Change a relying system's settings; what is not given stays as it is."""
    from ..services.admin.clients import get_client, parse_jwks, spec_of, update_client

    try:
        spec = spec_of(get_client(client_id))
        changes: dict = {}
        if name is not None:
            changes["name"] = name
        if description is not None:
            changes["description"] = description
        if client_type is not None:
            changes["client_type"] = client_type
            if auth_method is None:
                changes["token_endpoint_auth_method"] = None  # the default of the new type
        if redirect_uris:
            changes["redirect_uris"] = list(redirect_uris)
        if post_logout_uris or no_post_logout_redirect_uris:
            changes["post_logout_redirect_uris"] = list(post_logout_uris)
        if backchannel_logout_uri is not None:
            changes["backchannel_logout_uri"] = backchannel_logout_uri or None
        if scope is not None:
            changes["scope"] = scope
        if grant_types:
            changes["grant_types"] = list(grant_types)
        if auth_method is not None:
            changes["token_endpoint_auth_method"] = auth_method
        if first_party is not None:
            changes["first_party"] = first_party
        if jwks_file is not None:
            changes["jwks"] = parse_jwks(jwks_file.read())
        if access_token_lifetime is not None:
            changes["access_token_lifetime"] = access_token_lifetime or None
        if refresh_token_lifetime is not None:
            changes["refresh_token_lifetime"] = refresh_token_lifetime or None
        if contacts:
            changes["contacts"] = "\n".join(contacts) or None
        if allowed_user_types is not None:
            changes["allowed_user_types"] = allowed_user_types
        if subject_type is not None:
            changes["subject_type"] = subject_type
        if sector is not None:
            changes["sector_identifier"] = sector or None
        if require_par is not None:
            changes["require_pushed_authorization_requests"] = require_par
        if frontchannel_logout_uri is not None:
            changes["frontchannel_logout_uri"] = frontchannel_logout_uri or None
        if frontchannel_session_required is not None:
            changes["frontchannel_logout_session_required"] = frontchannel_session_required
        if min_acr is not None:
            changes["min_acr"] = min_acr or None
        if require_dpop is not None:
            changes["dpop_bound_access_tokens"] = require_dpop
        change = update_client(client_id, replace(spec, **changes), actor=cli_actor(), reason=reason)
    except UserError as exc:
        _refuse(exc)
    if not change.changed:
        click.echo("nothing changed")
        return
    click.echo(f"updated {client_id}: {', '.join(change.changed)}")
    if change.revoked_tokens:
        click.echo(f"revoked {change.revoked_tokens} tokens carrying a removed scope")
    if change.secret:
        click.echo(f"client_secret: {change.secret}")
        click.echo("(the secret is shown only now; store it in the relying system's settings)")


@clients_cli.command("export")
@click.argument("client_id")
def clients_export(client_id) -> None:
    """Print a relying system's settings as JSON (no secret), for `idp clients import` elsewhere."""
    from ..services.admin.clients import export_client

    try:
        document = export_client(client_id, actor=cli_actor())
    except UserError as exc:
        _refuse(exc)
    click.echo(json.dumps(document, ensure_ascii=False, indent=2))


@clients_cli.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@_reason
def clients_import(file, reason) -> None:
    """Create or update a relying system from an exported JSON file; prints a new secret once."""
    from ..services.admin.clients import ImportInvalid, import_client

    try:
        try:
            document = json.load(file)
        except ValueError:
            raise ImportInvalid("导入文件不是有效的 JSON") from None
        client, secret, created = import_client(document, actor=cli_actor(), reason=reason)
    except UserError as exc:
        _refuse(exc)
    click.echo(f"{'created' if created else 'updated'} {client.client_id}")
    if secret:
        click.echo(f"client_secret: {secret}")


@clients_cli.command("disable")
@click.argument("client_id")
@_reason
def clients_disable(client_id, reason) -> None:
    """Stop a relying system: no more logins or tokens; its tokens are revoked now."""
    from ..services.admin.clients import disable_client

    try:
        revoked = disable_client(client_id, actor=cli_actor(), reason=reason)
    except UserError as exc:
        _refuse(exc)
    click.echo(f"disabled {client_id}; revoked {revoked} tokens")


@clients_cli.command("enable")
@click.argument("client_id")
@_reason
def clients_enable(client_id, reason) -> None:
    """Let a disabled relying system in again."""
    from ..services.admin.clients import enable_client

    try:
        enable_client(client_id, actor=cli_actor(), reason=reason)
    except UserError as exc:
        _refuse(exc)
    click.echo(f"enabled {client_id}")


_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(ctx, param, value: str) -> timedelta:
    match = _DURATION.match(value or "")
    if not match:
        raise click.BadParameter("use a number with s, m, h or d, e.g. 24h")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


@clients_cli.command("rotate-secret")
@click.argument("client_id")
@click.option("--overlap", default="0", callback=_duration, show_default=True,
              help="how long the current secret keeps working (e.g. 24h, 7d)")
@_reason
def clients_rotate_secret(client_id, overlap, reason) -> None:
    """Give a relying system a new secret (printed once)."""
    from ..services.admin.clients import rotate_client_secret

    try:
        secret = rotate_client_secret(client_id, overlap=overlap, actor=cli_actor(), reason=reason)
    except UserError as exc:
        _refuse(exc)
    click.echo(f"client_secret: {secret}")
    if overlap:
        click.echo(f"(the previous secret keeps working for {overlap})")
    click.echo("(the secret is shown only now; store it in the relying system's settings)")


# -- 用户综合管理 ----------------------------------------------------------------------------------
@users_cli.command("search")
@click.option("--by", type=click.Choice(["username", "name", "id-number", "phone", "uscc", "unit-name"]),
              default="username", show_default=True)
@click.option("--type", "user_type", type=click.Choice(["personal", "unit"]), default=None,
              help="only 个人用户 or 单位用户 (alone, with VALUE '': every account of that type)")
@click.argument("value")
@click.option("--json", "as_json", is_flag=True)
def users_search(by, user_type, value, as_json) -> None:
    """Find accounts (ID number and phone: exact match through the keyed hash; uscc: exact)."""
    from ..services.admin.users import search_users

    try:
        result = search_users(by.replace("-", "_"), value, user_type=user_type, actor=cli_actor())
    except UserError as exc:
        _refuse(exc)
    if as_json:
        _echo_json([r.__dict__ for r in result.rows])
        return
    for r in result.rows:
        click.echo(f"{r.username:<22} {r.user_type:<9} {r.status:<9} {r.role or '-':<9} {r.name:<10} {r.sub}"
                   + (f"  {r.unit_name}" if r.unit_name else ""))
    if result.truncated:
        click.echo(f"(only the first {len(result.rows)} shown; narrow the search)", err=True)


@users_cli.command("show")
@click.argument("user")
def users_show(user) -> None:
    """One account, masked, with its sessions, authorised systems and recent events (JSON)."""
    from ..services.admin.users import find_user, user_overview

    try:
        overview = user_overview(find_user(user).sub, actor=cli_actor())
    except UserError as exc:
        _refuse(exc)
    _echo_json({
        "sub": overview.sub,
        "username": overview.username,
        "role": overview.role,
        "status": overview.status,
        "auto_locked_seconds": overview.auto_locked_seconds,
        "profile": overview.profile.__dict__,
        "unit": overview.unit.__dict__ if overview.unit else None,
        "created_at": overview.created_at,
        "last_login_at": overview.last_login_at,
        "sessions": [{"auth_time": s.get("auth_time"), "ip": s.get("ip")} for s in overview.sessions],
        "authorised_systems": [{"client_id": s.client_id, "scopes": s.scopes} for s in overview.systems],
        "active_tokens": overview.active_tokens,
        "recent_events": [{"at": e.at, "event": e.event, "outcome": e.outcome, "actor": e.actor}
                          for e in overview.events],
    })


def _user_action(name: str, service_name: str, help_text: str, done: str) -> None:
    @users_cli.command(name, help=help_text)
    @click.argument("user")
    @_reason
    def command(user, reason) -> None:
        from ..services.admin import users as admin_users

        try:
            target = admin_users.find_user(user)
            result = getattr(admin_users, service_name)(target.sub, actor=cli_actor(), reason=reason)
        except UserError as exc:
            _refuse(exc)
        click.echo(f"{done} {result.user.username} (sessions ended: {result.sessions_ended}, "
                   f"tokens revoked: {result.tokens_revoked})")


_user_action("lock", "lock_account", "Lock an account (sessions and tokens end now).", "locked")
_user_action("unlock", "unlock_account", "Unlock an account (an operator's lock and the failed-login lockout).", "unlocked")
_user_action("logout", "force_logout", "End every session of an account and revoke its tokens.", "logged out")
_user_action("disable", "disable_account", "Disable an account (sessions and tokens end now).", "disabled")
_user_action("enable", "enable_account", "Enable a disabled account.", "enabled")


# -- roles ------------------------------------------------------------------------------------------
@admin_cli.command("list")
def admin_list() -> None:
    """Accounts that hold a role."""
    from sqlalchemy import select

    from ..extensions import db
    from ..models import User

    for user in db.session.scalars(select(User).where(User.role.is_not(None)).order_by(User.role, User.username_key)):
        click.echo(f"{user.username:<22} {user.role:<9} {user.status.value}")


@admin_cli.command("grant")
@click.argument("user")
@click.option("--role", type=click.Choice(["admin", "operator", "auditor"]), required=True)
@_reason
def admin_grant(user, role, reason) -> None:
    """Give an existing account a role."""
    from ..services.admin.users import find_user, set_role

    try:
        account = find_user(user)
        set_role(account.sub, role, actor=cli_actor(), reason=reason)
    except UserError as exc:
        _refuse(exc)
    click.echo(f"{user} is now {role}")
    from ..services.accounts.second_factors import has_factor
    from .mfa_cli import echo_enrolment_link

    if not has_factor(account.id):
        echo_enrolment_link(account)


@admin_cli.command("revoke")
@click.argument("user")
@_reason
def admin_revoke(user, reason) -> None:
    """Take an account's role away."""
    from ..services.admin.users import find_user, set_role

    try:
        set_role(find_user(user).sub, None, actor=cli_actor(), reason=reason)
    except UserError as exc:
        _refuse(exc)
    click.echo(f"{user} no longer holds a role")


# -- 审计日志 -------------------------------------------------------------------------------------
def _filters(fn):
    options = [
        click.option("--since", default=None, help="YYYY-MM-DD[ HH:MM] Beijing time, or ISO 8601 with offset"),
        click.option("--until", default=None, help="inclusive; same formats"),
        click.option("--actor", default=None),
        click.option("--subject", default=None),
        click.option("--event", default=None, help="an event, or a family such as account.*"),
        click.option("--outcome", type=click.Choice(["success", "failure", "denied", "error"]), default=None),
        click.option("--client-id", default=None),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _query(since, until, actor, subject, event, outcome, client_id):
    from ..services.audit.log import AuditQuery, parse_time

    return AuditQuery(since=parse_time(since, "since"), until=parse_time(until, "until", end=True),
                      actor=actor, subject=subject, event=event, outcome=outcome, client_id=client_id)


@audit_cli.command("list")
@_filters
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--page", default=1, show_default=True, type=click.IntRange(1))
def audit_list(limit, page, **filters) -> None:
    """Newest events first."""
    from ..services.audit.log import BEIJING, find_events

    try:
        result = find_events(_query(**filters), page=page, per_page=limit, actor=cli_actor())
    except UserError as exc:
        _refuse(exc)
    for e in result.events:
        details = json.dumps(e.details or {}, ensure_ascii=False, sort_keys=True)
        click.echo(f"{e.at.astimezone(BEIJING).isoformat(timespec='seconds')}  {e.event:<24} {e.outcome:<8} "
                   f"actor={e.actor or '-'} subject={e.subject or '-'} client={e.client_id or '-'} {details}")
    click.echo(f"({result.total} events; page {result.page}/{result.pages})", err=True)


@audit_cli.command("export")
@_filters
@click.option("--output", "-o", type=click.File("w", encoding="utf-8", lazy=True), default="-",
              help="file to write (default: standard output)")
def audit_export(output, **filters) -> None:
    """CSV of the matching events, oldest first."""
    from ..services.audit.log import export_csv

    try:
        lines = export_csv(_query(**filters), actor=cli_actor())
    except UserError as exc:
        _refuse(exc)
    for line in lines:
        output.write(line)


@audit_cli.command("prune")
@click.option("--older-than", required=True, help="age in days, at least 180d")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
def audit_prune(older_than, yes) -> None:
    """Delete events older than the given age (the retention job; refuses less than 180 days)."""
    from ..services.audit.log import check_retention, parse_age, prune

    try:
        age = check_retention(parse_age(older_than))
        if not yes and sys.stdin.isatty():
            click.confirm(f"delete audit events older than {age.days} days?", abort=True)
        deleted = prune(age, actor=cli_actor())
    except UserError as exc:
        _refuse(exc)
    click.echo(f"deleted {deleted} audit events older than {age.days} days")


@audit_cli.command("drain")
@click.option("--once", is_flag=True, help="write what is buffered now, then exit")
def audit_drain(once) -> None:
    """Move buffered audit events into the audit log (runs until SIGTERM or Ctrl+C, which stop it
    after the batch in hand).  Production runs it beside the web workers; any number may run."""
    import signal

    from flask import current_app

    from ..services.audit.stream import Drainer

    drainer = Drainer(current_app._get_current_object())
    if once:
        click.echo(f"wrote {drainer.drain()} buffered audit events")
        return
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: drainer.stop())
    click.echo(f"audit drainer {drainer.consumer} running (SIGTERM or Ctrl+C to stop)")
    drainer.run()
    click.echo(f"audit drainer {drainer.consumer} stopped: {drainer.drained} events drained")
