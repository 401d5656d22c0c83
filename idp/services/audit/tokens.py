"""The audit event of a token issued by an operation that writes nothing else (client_credentials).

One call point, ``record_token_issued``, so that where such events go is decided in one place: the
audit buffer (a Redis stream drained into ``audit_events`` by ``idp audit drain``, idempotently by
event id), written before the answer so no token is handed out unrecorded.

Tokens issued with a user (code exchange, refresh) are audited in the transaction that writes
their token row, by ``audit.record_in_transaction``: that event goes with a state change.
"""

from __future__ import annotations

from . import events as audit


def record_token_issued(*, client_id: str, subject: str, grant_type: str, scope: str, jti: str) -> None:
    """Record ``token.issued`` for a token whose issue wrote no row.  ``scope`` says which claims
    went out, never their values; the jti ties a later revocation to it."""
    audit.buffer("token.issued", actor=client_id, subject=subject, client_id=client_id,
                 grant_type=grant_type, scope=scope, jti=jti)
