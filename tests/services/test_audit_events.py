"""An audit event belongs to the transaction of the change it records."""

from __future__ import annotations

from idp.extensions import db
from idp.models import AuditEvent
from idp.services.audit import events as audit


def _count(event: str) -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(AuditEvent).filter_by(event=event))


def test_an_event_is_written_with_its_transaction(app):
    with app.app_context():
        audit.add("test.event", actor="someone")
        db.session.commit()
        assert _count("test.event") == 1


def test_an_event_goes_with_a_rolled_back_change(app):
    with app.app_context():
        audit.add("test.rolled_back", actor="someone")
        db.session.rollback()  # the use case failed after the event was added: neither is kept
        assert _count("test.rolled_back") == 0
