"""Prometheus metrics (SPEC §9): request counts and latency per endpoint, and every audit event
by type and outcome (logins, lockouts, tokens issued, registrations...).

Under gunicorn with several workers set PROMETHEUS_MULTIPROC_DIR so the workers' figures are
aggregated.  ``/metrics`` asks for ``Authorization: Bearer $IDP_METRICS_TOKEN`` when that
setting is given.  Production without the token answers 404: request counts per endpoint and
the audit events by outcome are for the operator's scraper, not for anyone who finds the URL.
"""

from __future__ import annotations

import hmac
import os
import time

from flask import Flask, Response, abort, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess

REQUESTS = Counter("idp_http_requests_total", "HTTP requests", ["endpoint", "method", "status"])
LATENCY = Histogram(
    "idp_http_request_seconds", "HTTP request latency", ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
AUDIT_EVENTS = Counter("idp_audit_events_total", "Audit events", ["event", "outcome"])
# the audit buffer (services/audit/stream.py): taken by Redis, written directly because Redis
# did not take it, and moved into the audit table by a drainer
AUDIT_BUFFERED = Counter("idp_audit_buffered_total", "Audit events taken by the Redis buffer")
AUDIT_BUFFER_FALLBACK = Counter("idp_audit_buffer_fallback_total",
                                "Audit events the Redis buffer did not take, written to the database directly")
AUDIT_DRAINED = Counter("idp_audit_drained_total", "Buffered audit events moved into the audit table")


_latency: dict = {}
_requests: dict = {}


def init_app(app: Flask) -> None:
    @app.before_request
    def _start_timer():
        g._metrics_start = time.perf_counter()

    @app.after_request
    def _observe(response):
        start = g.pop("_metrics_start", None)
        if start is not None:
            observe_request(request.endpoint or "unmatched", request.method, response.status_code,
                            time.perf_counter() - start)
        return response

    app.add_url_rule("/metrics", "metrics", _metrics)


def observe_request(endpoint: str, method: str, status: int, seconds: float) -> None:
    # the labelled children, looked up once per label set (``labels`` takes a lock and validates
    # its arguments on every call)
    latency = _latency.get(endpoint) or _latency.setdefault(endpoint, LATENCY.labels(endpoint))
    latency.observe(seconds)
    key = (endpoint, method, status)
    count = _requests.get(key) or _requests.setdefault(key, REQUESTS.labels(endpoint, method, str(status)))
    count.inc()


def _metrics():
    token = current_app.config.get("METRICS_TOKEN")
    if not token and current_app.config["ENV_NAME"] == "production":
        abort(404)
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(given.encode(), token.encode()):
            abort(401)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest()
    return Response(body, mimetype=CONTENT_TYPE_LATEST)
