"""Checking pooled database connections only when they may have gone stale.

SQLAlchemy's ``pool_pre_ping`` pings on every checkout: one extra round trip on every request
that touches the database (a fifth of the wall time of a token request in the profile of
issue #5).  A connection in steady use cannot be stale, so this pings only one that sat idle in
the pool for longer than ``IDLE_SECONDS``, as connection pools with background validation do
(Keycloak's Agroal).  A dead connection raises ``DisconnectionError``, which makes the pool drop
it and hand out a fresh one, exactly as pre-ping does.
"""

from __future__ import annotations

import select
import time
from contextlib import contextmanager
from contextvars import ContextVar

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
        if last is None:
            return  # new
        if time.monotonic() - last < IDLE_SECONDS and not _has_unread_input(dbapi_connection):
            return  # in steady use, and the server said nothing since
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
            dbapi_connection.rollback()  # the ping opened a transaction; start clean
        except Exception as error:  # noqa: BLE001  (any failure means: do not use this one)
            raise exc.DisconnectionError(f"stale pooled connection: {error}") from error


def _has_unread_input(dbapi_connection) -> bool:
    """Whether the server sent something to a connection resting in the pool.

    An idle connection receives nothing, except when its server goes away: a restart or a
    terminated backend sends an error and closes the socket, a dropped proxy closes it.  A
    zero-timeout poll on the socket (about a microsecond, no round trip) tells, so after a short
    database bounce the first request of each pooled connection does not fail on it."""
    try:
        fd = dbapi_connection.pgconn.socket
    except Exception:  # noqa: BLE001 - closed already, or not psycopg: let the ping decide
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


# -- a database that stops answering ---------------------------------------------------------------
# statement_timeout is enforced by the server, so a server that is frozen (a stopped process, a
# proxy or network path that swallows packets without a reset) never sends its cancel, and TCP
# keepalives and tcp_user_timeout do not fire while the peer's kernel still acknowledges.  The
# only deadline that always holds is the client's own: psycopg waits for every answer through
# ``Connection.wait``, so a subclass gives each wait a deadline and closes a connection that
# missed it (its state is unknown), which SQLAlchemy then sees as a disconnect and discards.
CLIENT_MARGIN = 1.0  # seconds after statement_timeout: a live server cancels first, cleanly


def postgres_connect_args(config) -> dict:
    """libpq parameters for a server that hangs or a network path that dies (see the settings)."""
    return {
        "connect_timeout": max(2, int(config.DATABASE_CONNECT_TIMEOUT)),
        "options": f"-c statement_timeout={int(float(config.DATABASE_STATEMENT_TIMEOUT) * 1000)}",
        "keepalives": 1,
        "keepalives_idle": int(config.DATABASE_KEEPALIVES_IDLE),
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "tcp_user_timeout": int(float(config.DATABASE_TCP_USER_TIMEOUT) * 1000),
    }


def give_up_on_silent_server(engine: Engine, statement_timeout: float) -> None:
    """Every wait for the database ends ``statement_timeout + CLIENT_MARGIN`` seconds at most."""
    if engine.dialect.driver != "psycopg":
        return
    import psycopg
    from psycopg import errors as pg_errors

    deadline = float(statement_timeout) + CLIENT_MARGIN

    class DeadlineConnection(psycopg.Connection):
        def wait(self, gen, interval=0.1, timeout=None):  # type: ignore[override]
            if _LONG_STATEMENTS.get():
                return super().wait(gen, interval=interval, timeout=timeout)
            try:
                return super().wait(gen, interval=interval, timeout=timeout or deadline)
            except pg_errors._WaitTimeout:
                self.pgconn.finish()  # mid-protocol: never reuse it
                raise psycopg.OperationalError(
                    f"the database did not answer within {deadline:.1f} s; connection closed"
                ) from None

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect, _record, cargs, cparams):
        return DeadlineConnection.connect(*cargs, **cparams)

    @event.listens_for(engine.pool, "checkout")
    def _lift_statement_timeout(dbapi_connection, record, _proxy) -> None:
        if _LONG_STATEMENTS.get():
            dbapi_connection.execute("SET statement_timeout = 0")
            dbapi_connection.commit()
            record.info["statement_timeout_lifted"] = True

    @event.listens_for(engine.pool, "checkin")
    def _restore_statement_timeout(dbapi_connection, record) -> None:
        if record.info.pop("statement_timeout_lifted", False) and dbapi_connection is not None:
            dbapi_connection.execute("RESET statement_timeout")  # back to the -c option of connect
            dbapi_connection.commit()


_LONG_STATEMENTS: ContextVar[bool] = ContextVar("idp_long_statements", default=False)


@contextmanager
def long_statements():
    """For migrations (an index on a large table takes minutes): no statement timeout, server-
    or client-side, for connections checked out inside this block."""
    token = _LONG_STATEMENTS.set(True)
    try:
        yield
    finally:
        _LONG_STATEMENTS.reset(token)
