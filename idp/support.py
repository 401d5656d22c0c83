"""Where a citizen turns when the platform cannot help on its own (the bank says no, the account
is locked by an administrator): the relying system the citizen came from, when it registered
contacts (the exam service: the exam authority's phone and mail), and always the platform's
service desk (``IDP_SERVICE_DESK_*``).

Pages call ``support_contacts()`` (a template global): computed only on the pages that show it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from flask import Flask, current_app, has_request_context

from .services.accounts.resume import peek_resume_url
from .oauth.client_cache import cached_client


@dataclass(frozen=True)
class Contacts:
    system: str | None = None  # the relying system's name, when its contacts are shown
    system_lines: list[str] = field(default_factory=list)
    desk_lines: list[str] = field(default_factory=list)  # the platform's service desk


def service_desk_lines() -> list[str]:
    cfg = current_app.config
    lines = []
    if cfg.get("SERVICE_DESK_PHONE"):
        lines.append(f"服务热线：{cfg['SERVICE_DESK_PHONE']}")
    if cfg.get("SERVICE_DESK_EMAIL"):
        lines.append(f"电子邮箱：{cfg['SERVICE_DESK_EMAIL']}")
    return lines


def pending_client_id() -> str | None:
    """The client_id of the authorization request this visit started from (kept server-side in
    the session while the citizen logs in, registers or recovers access)."""
    url = peek_resume_url() if has_request_context() else None
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("client_id")
    return values[0] if values else None


def pending_client_name() -> str | None:
    """The name of the relying system (its client record) whose authorization request waits."""
    client_id = pending_client_id()
    client = cached_client(client_id) if client_id else None
    return client.name if client is not None and client.enabled else None


def support_contacts() -> Contacts:
    desk = service_desk_lines()
    client_id = pending_client_id()
    client = cached_client(client_id) if client_id else None
    if client is None or not client.enabled or not client.contacts:
        return Contacts(desk_lines=desk)
    return Contacts(system=client.name, system_lines=client.contacts.splitlines(), desk_lines=desk)


def init_app(app: Flask) -> None:
    app.jinja_env.globals["support_contacts"] = support_contacts
