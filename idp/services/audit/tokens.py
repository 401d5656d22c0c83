"""The audit event of a token issued by an operation that writes nothing else (client_credentials).

One call point, ``record_token_issued``, so that where such events go can change in one place.
Today the event is one INSERT into ``audit_events`` and a COMMIT of its own — the only
PostgreSQL write of a client_credentials request.  A durable buffer (events appended to Redis
with AOF and written to PostgreSQL in batches, idempotently by event id) is meant to replace this
body; callers do not change.

Tokens issued with a user (code exchange, refresh) are audited in the transaction that writes
their token row, by ``audit.record_in_transaction``: that event goes with a state change.
"""

from __future__ import annotations

from ...extensions import db
from . import events as audit


def record_token_issued(*, client_id: str, subject: str, grant_type: str, scope: str, jti: str) -> None:
    """Record ``token.issued`` for a token whose issue wrote no row (committed here: the event is
    the whole use case's write).  ``scope`` says which claims went out, never their values."""
    audit.record_in_transaction("token.issued", actor=client_id, subject=subject, client_id=client_id,
                                grant_type=grant_type, scope=scope, jti=jti)
    db.session.commit()
