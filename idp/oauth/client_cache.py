"""Relying systems, cached per process for a few seconds.

Every token request, userinfo call, introspection and authorization request needs the client;
reading it from the database each time cost a SELECT and an ORM object per request, a fifth of a
client_credentials request in the profile of issue #5.  What the cache hands out is a detached,
read-only copy.  A change to a client committed in this process clears the cache at once; other
processes (the other gunicorn workers, other hosts) see it within ``IDP_CLIENT_CACHE_SECONDS``
(default 5 s) — the bound on how long a disabled client or a replaced secret can still be used
there, the same trade Keycloak makes with its per-node client cache.  Unknown client ids are never
cached, so probing with random ids cannot fill memory.
"""

from __future__ import annotations

import time

from flask import current_app, has_app_context
from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from ..extensions import db
from ..models import Client

_MAX_ENTRIES = 10_000
_CHANGED = "idp_clients_changed"


def _cache() -> dict[str, tuple[float, Client]]:
    # one cache per app: the tests build many apps in one process
    return current_app.extensions.setdefault("idp_client_cache", {})


def cached_client(client_id: str) -> Client | None:
    """The client with this id, enabled or not (callers decide), or None."""
    ttl = float(current_app.config["CLIENT_CACHE_SECONDS"])
    cache = _cache()
    now = time.monotonic()
    entry = cache.get(client_id)
    if entry is not None and entry[0] > now:
        return entry[1]
    row = db.session.scalar(select(Client).where(Client.client_id == client_id))
    if row is None or ttl <= 0:
        return row
    copy = _detached_copy(row)
    if len(cache) >= _MAX_ENTRIES:
        cache.clear()
    cache[client_id] = (now + ttl, copy)
    return copy


def forget_clients() -> None:
    if has_app_context():
        _cache().clear()


def _detached_copy(row: Client) -> Client:
    """A transient Client with the row's column values: the request's session keeps its own
    instance (with any pending change), and no session ever tracks the shared copy."""
    copy = Client()
    for attr in inspect(Client).column_attrs:
        value = getattr(row, attr.key)
        setattr(copy, attr.key, list(value) if isinstance(value, list) else value)
    return copy


@event.listens_for(Session, "after_flush")
def _note_client_changes(session: Session, _flush_context) -> None:
    if any(isinstance(obj, Client) for obj in (*session.new, *session.dirty, *session.deleted)):
        session.info[_CHANGED] = True


@event.listens_for(Session, "after_commit")
def _clear_after_client_change(session: Session) -> None:
    if session.info.pop(_CHANGED, False):
        forget_clients()


@event.listens_for(Session, "after_soft_rollback")
def _drop_note(session: Session, _previous_transaction) -> None:
    session.info.pop(_CHANGED, None)
