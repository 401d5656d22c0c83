"""The audit log: every security event, who, what, when, from where, outcome.

Callers pass identifiers (usernames, subjects, client ids), never personal data: the
``details`` dict is checked for keys that would carry it.
"""

from __future__ import annotations

import logging

from flask import has_request_context, request

from ..extensions import db
from ..metrics import AUDIT_EVENTS
from ..models import AuditEvent

log = logging.getLogger("idp.audit")

_FORBIDDEN_DETAIL_KEYS = {"id_number", "phone", "card", "card_number", "password", "code", "name"}


def record(
    event: str,
    outcome: str = "success",
    *,
    actor: str | None = None,
    subject: str | None = None,
    client_id: str | None = None,
    commit: bool = True,
    **details,
) -> AuditEvent:
    leaked = _FORBIDDEN_DETAIL_KEYS & details.keys()
    if leaked:
        raise ValueError(f"audit details must not carry personal data: {sorted(leaked)}")
    ip = user_agent = None
    if has_request_context():
        ip = request.remote_addr
        user_agent = (request.user_agent.string or "")[:256] or None
    entry = AuditEvent(
        event=event,
        outcome=outcome,
        actor=actor,
        subject=subject,
        client_id=client_id,
        ip=ip,
        user_agent=user_agent,
        details=details,
    )
    db.session.add(entry)
    AUDIT_EVENTS.labels(event, outcome).inc()
    if commit:
        db.session.commit()
    log.info(
        "audit event=%s outcome=%s actor=%s subject=%s client=%s ip=%s",
        event, outcome, actor, subject, client_id, ip,
    )
    return entry
