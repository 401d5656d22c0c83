"""Liveness and readiness for the load balancer / orchestrator (SPEC §9)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text

from .extensions import db, redis_store
from .oauth.keys import key_store

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process answers: nothing else is checked (a restart would not help a dead database)."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Ready to serve: database, Redis and a signing key all reachable."""
    checks = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        checks["database"] = type(exc).__name__
    try:
        redis_store.ping()
        checks["redis"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["redis"] = type(exc).__name__
    try:
        key_store().current()
        checks["signing_key"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["signing_key"] = type(exc).__name__
    ready = all(v == "ok" for v in checks.values())
    return jsonify(status="ready" if ready else "not_ready", checks=checks), 200 if ready else 503
