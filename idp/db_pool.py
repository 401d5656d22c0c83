"""Checking pooled database connections only when they may have gone stale.

SQLAlchemy's ``pool_pre_ping`` pings on every checkout: one extra round trip on every request
that touches the database (a fifth of the wall time of a token request in the profile of
issue #5).  A connection in steady use cannot be stale, so this pings only one that sat idle in
the pool for longer than ``IDLE_SECONDS``, as connection pools with background validation do
(Keycloak's Agroal).  A dead connection raises ``DisconnectionError``, which makes the pool drop
it and hand out a fresh one, exactly as pre-ping does.
"""

from __future__ import annotations

import time

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine

IDLE_SECONDS = 10.0
_LAST_USED = "idp_last_used"


def check_idle_connections(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        return  # a file or memory database: nothing to go stale

    @event.listens_for(engine.pool, "checkin")
    def _checked_in(_dbapi_connection, record) -> None:
        record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _checked_out(dbapi_connection, record, _proxy) -> None:
        last = record.info.get(_LAST_USED)
        if last is None or time.monotonic() - last < IDLE_SECONDS:
            return  # new, or in steady use
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
            dbapi_connection.rollback()  # the ping opened a transaction; start clean
        except Exception as error:  # noqa: BLE001  (any failure means: do not use this one)
            raise exc.DisconnectionError(f"stale pooled connection: {error}") from error
