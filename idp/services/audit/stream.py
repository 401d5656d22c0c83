"""The audit buffer: events of operations that write nothing else, kept in a Redis stream and
moved into the audit table in batches by a drainer (``idp audit drain``).

An event that records a change in PostgreSQL stays in that change's transaction
(``events.add``).  An event that *is* the whole operation (a client_credentials token issued)
would cost the operation a PostgreSQL transaction of its own; here it costs one XADD to a Redis
that keeps its data on disk (AOF, ``appendfsync everysec``).  Nothing is lost or stored twice:

- every event carries an id made where it happened (a UUIDv7); the audit table holds each id
  once and the drainer's INSERT skips ids already there, so a batch written again after a
  drainer died between its commit and its acknowledgement adds nothing;
- a drainer acknowledges (XACK, and deletes) entries only after its commit; entries delivered to
  a drainer that died are claimed by another after ``AUDIT_DRAIN_RECLAIM_IDLE`` (XAUTOCLAIM);
- when Redis does not take an event (down, frozen, out of memory, or the stream at
  ``AUDIT_BUFFER_MAX_LENGTH`` because no drainer has run for long) it is written to PostgreSQL
  directly, in a transaction of its own, before the operation answers; if PostgreSQL fails as
  well, the operation fails (503).  An operation never answers with its event nowhere durable.
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import os
import secrets
import socket
import threading
import time
from datetime import datetime

import fakeredis
import redis as redis_lib
from flask import Flask, current_app
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from ...errors import is_outage
from ...extensions import db
from ...metrics import AUDIT_BUFFER_FALLBACK, AUDIT_BUFFERED, AUDIT_DRAINED
from ...models import AuditEvent

log = logging.getLogger("idp.audit.buffer")

STREAM = "audit:buffer"
GROUP = "audit-drainers"
DEAD_LETTERS = "audit:buffer:dead"  # entries the audit table refused, for an operator to look at
FIELD = "e"
_COLUMNS = ("event_id", "at", "event", "outcome", "actor", "subject", "client_id", "ip", "user_agent",
            "details", "amr")

# XADD only while the stream is shorter than the guard: a stream that long means no drainer has
# run for a long time, and trimming it (XADD MAXLEN) would drop events nobody has written yet
_APPEND = """
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return false end
return redis.call('XADD', KEYS[1], '*', ARGV[2], ARGV[3])
"""


def record(fields: dict) -> bool:
    """Buffer one event (its columns, ``event_id`` and ``at`` included).  True when Redis took
    it; False when it was written to the database directly instead."""
    app = current_app._get_current_object()
    try:
        taken = _append_script(app)(
            keys=[STREAM], args=[int(app.config["AUDIT_BUFFER_MAX_LENGTH"]), FIELD, _encode(fields)]
        )
        reason = "the stream is full: is a drainer running?"
    except redis_lib.RedisError as exc:
        # a timeout may hide an append that happened: the event is then in both places, and the
        # drainer's INSERT skips its id, already stored
        taken, reason = None, f"{type(exc).__name__}: {exc}"
    if taken:
        AUDIT_BUFFERED.inc()
        start_in_process(app)
        return True
    log.warning("audit buffer did not take event %s (%s): writing it to the database directly",
                fields["event_id"], reason)
    write_batch([fields])
    AUDIT_BUFFER_FALLBACK.inc()
    return False


def write_batch(rows: list[dict]) -> None:
    """INSERT the events in one transaction of their own; an event id already stored is skipped
    (ON CONFLICT DO NOTHING on the unique ``event_id``)."""
    table = AuditEvent.__table__
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[db.engine.dialect.name]
    statement = insert(table).on_conflict_do_nothing(index_elements=[table.c.event_id])
    with db.engine.begin() as connection:
        connection.execute(statement, [{name: row.get(name) for name in _COLUMNS} for row in rows])


def _append_script(app: Flask):
    script = app.extensions.get("idp_audit_append")
    if script is None:
        script = app.extensions["idp_audit_append"] = app.extensions["idp_redis"].register_script(_APPEND)
    return script


def _encode(fields: dict) -> str:
    return json.dumps({name: fields.get(name) for name in _COLUMNS} | {"at": fields["at"].isoformat()},
                      ensure_ascii=False, separators=(",", ":"))


def _decode(raw: bytes) -> dict:
    data = json.loads(raw)
    data["at"] = datetime.fromisoformat(data["at"])
    return data


# -- the drainer ----------------------------------------------------------------------------------
class Drainer:
    """Moves the buffer into the audit table, one batch at a time: read (XREADGROUP in the group
    of drainers), INSERT skipping ids already stored, commit, then acknowledge and delete the
    entries (XACK and XDEL in one MULTI).  Any number of drainers may run side by side."""

    def __init__(self, app: Flask, consumer: str | None = None) -> None:
        config = app.config
        self.app = app
        self.redis: redis_lib.Redis = app.extensions["idp_redis"]
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.batch = int(config["AUDIT_DRAIN_BATCH"])
        self.block_ms = max(1, int(float(config["AUDIT_DRAIN_BLOCK"]) * 1000))
        self.reclaim_idle_ms = int(float(config["AUDIT_DRAIN_RECLAIM_IDLE"]) * 1000)
        self.ack_delay = float(config["AUDIT_DRAIN_ACK_DELAY"])
        if float(config["AUDIT_DRAIN_BLOCK"]) >= float(config["REDIS_SOCKET_TIMEOUT"]):
            raise ValueError("IDP_AUDIT_DRAIN_BLOCK must be shorter than IDP_REDIS_SOCKET_TIMEOUT")
        self.stopping = threading.Event()
        self.drained = 0
        self._group_ready = False
        self._own_unacknowledged = False  # a batch of ours failed: read it again before new ones
        self._next_reclaim = 0.0

    def run(self) -> None:
        """Drain until ``stop``; a store that fails is retried a second later."""
        log.info("audit drainer %s started", self.consumer)
        try:
            if warning := persistence_warning(self.redis):
                log.warning("audit drainer %s: %s", self.consumer, warning)
        except redis_lib.RedisError:
            pass  # the loop below reports a Redis that does not answer
        while not self.stopping.is_set():
            try:
                self.step(block=True)
            except (redis_lib.RedisError, SQLAlchemyError) as exc:
                log.warning("audit drainer %s: %s: %s; retrying", self.consumer, type(exc).__name__, exc)
                self._own_unacknowledged = True
                self.stopping.wait(1.0)
        log.info("audit drainer %s stopped after %d events", self.consumer, self.drained)

    def stop(self) -> None:
        """Stop after the batch in hand (its commit and acknowledgement)."""
        self.stopping.set()

    def drain(self) -> int:
        """Everything buffered now, without waiting for more (``--once``, tests, process exit)."""
        total = 0
        while handled := self.step(block=False):
            total += handled
        return total

    def step(self, *, block: bool) -> int:
        """One batch: this drainer's own unacknowledged entries first, then those of a drainer that
        died, then new ones.  Returns how many entries it handled (0: nothing to do)."""
        self._ensure_group()
        entries = self._own() or self._reclaimed() or self._new(block)
        if not entries:
            return 0
        ids = [entry_id for entry_id, _ in entries]
        self._own_unacknowledged = True
        events = [event for event in map(self._event, entries) if event is not None]
        if events:
            with self.app.app_context():
                self._write(events)
        if self.ack_delay:
            time.sleep(self.ack_delay)
        pipe = self.redis.pipeline(transaction=True)
        pipe.xack(STREAM, GROUP, *ids)
        pipe.xdel(STREAM, *ids)
        pipe.execute()
        self._own_unacknowledged = False
        self.drained += len(events)
        AUDIT_DRAINED.inc(len(events))
        return len(ids)

    def _write(self, events: list[tuple]) -> None:
        """The batch in one transaction; if the database refuses it for what it holds (not for
        being unreachable), event by event, and an event it still refuses goes to the dead-letter
        stream (kept there for an operator) rather than holding up every event behind it."""
        try:
            write_batch([row for _, _, row in events])
            return
        except SQLAlchemyError as exc:
            if is_outage(exc):
                raise
        for entry_id, raw, row in events:
            try:
                write_batch([row])
            except SQLAlchemyError as exc:
                if is_outage(exc):
                    raise
                self._dead_letter(entry_id, raw, f"{type(exc).__name__}: {exc}")

    def _dead_letter(self, entry_id, raw, reason: str) -> None:
        log.error("audit drainer: entry %r cannot go into the audit table (%s); kept in %s",
                  entry_id, reason[:300], DEAD_LETTERS)
        self.redis.xadd(DEAD_LETTERS, {"entry": entry_id, FIELD: raw, "reason": reason[:1000]})

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            # from the stream's start: events buffered before any drainer existed are drained too
            self.redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except redis_lib.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def _read(self, stream_id: str, block: int | None) -> list:
        try:
            answer = self.redis.xreadgroup(GROUP, self.consumer, {STREAM: stream_id}, count=self.batch,
                                           block=block)
        except redis_lib.ResponseError as exc:
            if "NOGROUP" in str(exc):  # Redis lost its data (or the group was deleted): create it again
                self._group_ready = False
                return []
            raise
        return answer[0][1] if answer else []

    def _own(self) -> list:
        return self._read("0", None) if self._own_unacknowledged else []

    def _reclaimed(self) -> list:
        now = time.monotonic()
        if now < self._next_reclaim:
            return []
        _next, entries, *_deleted = self.redis.xautoclaim(
            STREAM, GROUP, self.consumer, min_idle_time=self.reclaim_idle_ms, start_id="0-0", count=self.batch
        )
        if entries:
            log.warning("audit drainer %s: took over %d events of a drainer that stopped answering",
                        self.consumer, len(entries))
            return entries  # look again at once: there may be more
        self._next_reclaim = now + max(self.reclaim_idle_ms / 2000, 0.05)
        self._forget_idle_drainers()
        return []

    def _forget_idle_drainers(self) -> None:
        """Drainers that hold nothing and have not read for a while are removed from the group's
        list (each restart adds a name); one still alive is added again by its next read."""
        for entry in self.redis.xinfo_consumers(STREAM, GROUP):
            name = entry["name"].decode() if isinstance(entry["name"], bytes) else entry["name"]
            if name != self.consumer and not entry["pending"] and entry["idle"] > max(self.reclaim_idle_ms, 60_000):
                self.redis.xgroup_delconsumer(STREAM, GROUP, name)

    def _new(self, block: bool) -> list:
        return self._read(">", self.block_ms if block else None)

    def _event(self, entry) -> tuple | None:
        """(entry id, raw entry, row) of a stream entry."""
        entry_id, values = entry
        raw = (values or {}).get(FIELD.encode()) or (values or {}).get(FIELD)
        if raw is None:  # deleted from the stream after it was delivered: nothing left to write
            return None
        try:
            return entry_id, raw, _decode(raw)
        except (ValueError, TypeError, KeyError) as exc:  # not written by record()
            self._dead_letter(entry_id, raw, f"not an audit event: {exc}")
            return None


# -- a drainer inside the web process (development, the demo) -------------------------------------
_start_lock = threading.Lock()


def start_in_process(app: Flask) -> Drainer | None:
    """With ``AUDIT_DRAIN_IN_PROCESS`` (development: the in-process Redis stand-in is seen by no
    other process), a drainer thread in this process, started once per process; at exit it
    writes what is still buffered."""
    if not app.config["AUDIT_DRAIN_IN_PROCESS"]:
        return None
    started = app.extensions.get("idp_audit_drainer")
    if started is not None and started[0] == os.getpid():
        return started[1]
    with _start_lock:
        started = app.extensions.get("idp_audit_drainer")
        if started is not None and started[0] == os.getpid():  # a forked worker starts its own
            return started[1]
        drainer = Drainer(app)
        thread = threading.Thread(target=drainer.run, name="audit-drainer", daemon=True)
        thread.start()
        at_exit = functools.partial(_finish, drainer, thread)
        app.extensions["idp_audit_drainer"] = (os.getpid(), drainer, at_exit)
        atexit.register(at_exit)
        return drainer


def stop_in_process(app: Flask) -> None:
    """Stop this process's drainer thread, if any, after it wrote what is buffered."""
    started = app.extensions.pop("idp_audit_drainer", None)
    if started is not None and started[0] == os.getpid():
        atexit.unregister(started[2])
        started[2]()


def _finish(drainer: Drainer, thread: threading.Thread) -> None:
    drainer.stop()
    thread.join(timeout=5)
    try:
        drainer.drain()
    except (redis_lib.RedisError, SQLAlchemyError):
        log.warning("audit drainer %s: events left in the buffer at exit", drainer.consumer, exc_info=True)


# -- readiness ------------------------------------------------------------------------------------
def persistence_warning(client: redis_lib.Redis) -> str | None:
    """Why buffered audit events would not survive a Redis restart, or None when they would
    (AOF on, ``appendfsync`` everysec or always)."""
    if isinstance(client, fakeredis.FakeRedis):
        return "the in-process Redis stand-in keeps buffered audit events in this process's memory only"
    try:
        settings = {_text(k): _text(v) for k, v in client.config_get("append*").items()}
        aof, fsync = settings.get("appendonly") == "yes", settings.get("appendfsync")
    except redis_lib.ResponseError:  # CONFIG renamed or refused (a managed Redis): INFO still tells
        try:
            aof, fsync = bool(int(client.info("persistence").get("aof_enabled", 0))), None
        except redis_lib.ResponseError:  # refused as well (ACL): unknown is not a readiness failure
            return "Redis refused CONFIG GET and INFO: whether buffered audit events survive a restart is unknown"
    if not aof:
        return ("Redis persistence is off (appendonly no): buffered audit events are lost if Redis restarts; "
                "run Redis with appendonly yes, appendfsync everysec")
    if fsync == "no":
        return ("Redis appendfsync is no: the operating system decides when buffered audit events reach the disk; "
                "use appendfsync everysec")
    return None


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
