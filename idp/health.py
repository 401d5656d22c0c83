"""Liveness and readiness for the load balancer / orchestrator (SPEC §9).

``/healthz`` touches neither the database nor Redis (nor the session): a restart would not help
a dead database, and a probe that hangs on one would have the orchestrator kill healthy nodes.
``/readyz`` checks each dependency in a worker thread and waits at most ``IDP_READY_TIMEOUT``
for it, so a frozen server makes the node "not ready" in about a second instead of holding the
probe until the store's own timeouts.

It also warns (without failing readiness) when Redis would lose buffered audit events on a
restart: persistence off (AOF, ``appendfsync everysec`` in production) or the in-process stand-in.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, wait

from flask import Blueprint, Flask, current_app, jsonify
from sqlalchemy import text

from .extensions import db, redis_store
from .oauth.keys import key_store
from .services.audit.stream import persistence_warning

bp = Blueprint("health", __name__)

# few threads: a check stuck on a frozen store ends at that store's own deadline; meanwhile
# further probes queue behind it and answer "timeout" after IDP_READY_TIMEOUT
_checks = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")


@bp.get("/healthz")
def healthz():
    """The process answers: nothing else is checked."""
    return jsonify(status="ok")


def _database(app: Flask) -> None:
    with app.app_context(), db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _redis(app: Flask) -> str | None:
    with app.app_context():
        redis_store.ping()
        return persistence_warning(redis_store.client)


def _signing_key(app: Flask) -> None:
    with app.app_context():
        key_store().current("RS256")  # ID tokens' default
        key_store().current(app.config["ACCESS_TOKEN_ALG"])


@bp.get("/readyz")
def readyz():
    """Ready to serve: database, Redis and a signing key all reachable."""
    app = current_app._get_current_object()
    timeout = float(app.config["READY_TIMEOUT"])
    futures = {name: _checks.submit(check, app) for name, check in
               (("database", _database), ("redis", _redis), ("signing_key", _signing_key))}
    wait(futures.values(), timeout=timeout)  # one deadline for all three, run side by side
    checks = {}
    for name, future in futures.items():
        if not future.done():
            checks[name] = "timeout"
        elif (exc := future.exception()) is not None:
            checks[name] = type(exc).__name__
        else:
            checks[name] = "ok"
    ready = all(v == "ok" for v in checks.values())
    answer = dict(status="ready" if ready else "not_ready", checks=checks)
    if checks["redis"] == "ok" and (warning := futures["redis"].result()):
        answer["warnings"] = {"redis_persistence": warning}
    return jsonify(answer), 200 if ready else 503
