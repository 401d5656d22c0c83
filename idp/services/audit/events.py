"""The audit log: every security event, who, what, when, from where, outcome.

Two ways in, one per kind of operation:

- ``add`` (and ``record_in_transaction``): an event that goes with a change in the database
  (a registration, a password change, a lock, a revocation, a refresh rotation) is written in
  that change's transaction, or not at all;
- ``buffer``: an event of an operation that writes nothing else (a client_credentials token
  issued) goes to the durable Redis buffer that ``idp audit drain`` moves into the same table
  (``stream.py``), so the operation costs no database transaction.

Callers pass identifiers (usernames, subjects, client ids), never personal data: the
``details`` dict is checked for keys that would carry it.  Every event gets an id where it
happens (a UUIDv7), stored once.
"""

from __future__ import annotations

import logging

from flask import g, has_request_context, request
from uuid6 import uuid7

from ...extensions import db
from ...metrics import AUDIT_EVENTS
from ...models import AuditEvent
from ...models._types import utcnow
from . import stream

log = logging.getLogger("idp.audit")

_FORBIDDEN_DETAIL_KEYS = {"id_number", "phone", "card", "card_number", "password", "code", "name"}


def add(
    event: str,
    outcome: str = "success",
    *,
    actor: str | None = None,
    subject: str | None = None,
    client_id: str | None = None,
    **details,
) -> AuditEvent:
    """Add the event to the caller's transaction: it is written with the change it records, or
    not at all.  The use case commits (an event that is the whole use case, a failed login say,
    is committed by it at once)."""
    fields = _fields(event, outcome, actor, subject, client_id, details)
    entry = AuditEvent(**fields)
    db.session.add(entry)
    _counted_and_logged(event, outcome, actor, subject, client_id, fields["ip"])
    return entry


def record_in_transaction(
    event: str,
    outcome: str = "success",
    *,
    actor: str | None = None,
    subject: str | None = None,
    client_id: str | None = None,
    **details,
) -> None:
    """The same event, written at once with a plain INSERT inside the caller's open transaction
    (committed or rolled back with it).  For the hot paths — one event per token issued — where
    an ORM object and its flush cost more than the rest of the audit work."""
    fields = _fields(event, outcome, actor, subject, client_id, details)
    fields["at"] = utcnow()
    db.session.connection().execute(AuditEvent.__table__.insert(), fields)
    _counted_and_logged(event, outcome, actor, subject, client_id, fields["ip"])


def buffer(
    event: str,
    outcome: str = "success",
    *,
    actor: str | None = None,
    subject: str | None = None,
    client_id: str | None = None,
    **details,
) -> str:
    """Record the event of an operation that writes nothing else, without a database transaction:
    one append to the Redis buffer, drained into the audit log within a second (``idp audit
    drain``).  Needs no commit.  When Redis does not take it, it is written to the database at
    once (in a transaction of its own: call it after any commit of the operation); when that fails
    too, the error propagates (a 503) — call it before answering, so no operation answers without
    its event.  Returns the event id."""
    fields = _fields(event, outcome, actor, subject, client_id, details)
    fields["at"] = utcnow()
    stream.record(fields)
    _counted_and_logged(event, outcome, actor, subject, client_id, fields["ip"])
    return fields["event_id"]


def new_event_id() -> str:
    """Time-ordered and unique without coordination (UUIDv7, RFC 9562)."""
    return str(uuid7())


def _fields(event, outcome, actor, subject, client_id, details: dict) -> dict:
    leaked = _FORBIDDEN_DETAIL_KEYS & details.keys()
    if leaked:
        raise ValueError(f"audit details must not carry personal data: {sorted(leaked)}")
    ip = user_agent = None
    if has_request_context():
        ip = request.remote_addr
        user_agent = (request.user_agent.string or "")[:256] or None
    return dict(event_id=new_event_id(), event=event, outcome=outcome, actor=actor, subject=subject,
                client_id=client_id, ip=ip, user_agent=user_agent, details=details, amr=_actor_amr(actor))


def _actor_amr(actor: str | None) -> list[str] | None:
    """The amr of this request's login when the actor is the one signed in (a console action
    then shows which factors stood behind it); None for anyone else (a failed login's username)."""
    if actor is None or not has_request_context():
        return None
    login = g.get("_login")
    if login is None or login.user is None or login.user.username != actor:
        return None
    return list(login.amr)


def _counted_and_logged(event, outcome, actor, subject, client_id, ip) -> None:
    AUDIT_EVENTS.labels(event, outcome).inc()
    log.info(
        "audit event=%s outcome=%s actor=%s subject=%s client=%s ip=%s",
        event, outcome, actor, subject, client_id, ip,
    )
