from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ._types import UTCDateTime, utcnow


class AuditEvent(db.Model):
    """Who did what, when, from where, with which outcome.  Never personal data."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_at", "at"),
        Index("ix_audit_events_event_at", "event", "at"),
        Index("ix_audit_events_subject_at", "subject", "at"),
        Index("ix_audit_events_actor_at", "actor", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    event: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))  # success, failure, denied, error
    actor: Mapped[str | None] = mapped_column(String(128))
    subject: Mapped[str | None] = mapped_column(String(128))
    client_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(256))
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    # how the actor's login was authenticated (its amr, e.g. ["pwd", "otp", "mfa"]), when the
    # actor is the one signed in: a console action shows whether a second factor stood behind it
    amr: Mapped[list | None] = mapped_column(JSON)
    # made where the event happened (a UUIDv7): an event written again — a batch of the audit
    # buffer replayed after a drainer died between its commit and its acknowledgement — is
    # skipped by this constraint instead of stored twice
    event_id: Mapped[str | None] = mapped_column(String(36), unique=True)
