"""The sandbox enterprise credit registry: our unit verification contract
(``idp.services.verification.registry``) answered from a data file of fictitious units.

Like the sandbox bank, a plain WSGI app: mounted in-process for development, the demo and tests
(``idp.sandbox.transport``), or served on its own port (``idp sandbox registry --port 8603``) so
the provider reaches it over real HTTP with ``IDP_REGISTRY_URL=http://127.0.0.1:8603``.  It
enforces the contract as the real registry would: signed requests, a clock-skew window, no
replayed request id, signed answers.
"""

from __future__ import annotations

import json
import threading
import time
import unicodedata
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from ..services.verification.bank import (
    MAX_CLOCK_SKEW,
    REQUEST_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    request_signature,
    response_signature,
    signature_matches,
)
from ..services.verification.registry import VERIFY_PATH, RegistryOutcome

REQUIRED = ("request_id", "unit_id_type", "uscc", "unit_name", "legal_rep_name")


@dataclass(frozen=True)
class RegistryUnit:
    """One unit as the registry holds it."""

    uscc: str
    unit_id_type: str
    unit_name: str
    legal_rep_name: str
    unit_type: str
    status: str  # active, deregistered (注销) or revoked (吊销)
    note: str = ""
    demo: bool = False

    @classmethod
    def from_dict(cls, data: dict) -> RegistryUnit:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def load_units(path: str | Path | None = None) -> list[RegistryUnit]:
    if path is None:
        text = resources.files("idp.sandbox").joinpath("data/registry_units.json").read_text("utf-8")
    else:
        text = Path(path).read_text("utf-8")
    return [RegistryUnit.from_dict(u) for u in json.loads(text)["units"]]


def _nfc(value: str) -> str:
    return unicodedata.normalize("NFC", value).strip()


class RegistrySandbox:
    """WSGI app: ``POST /v1/unit-verifications`` and ``GET /health``."""

    def __init__(self, units: list[RegistryUnit], secret: str, *, latency: float = 0.0, clock=time.time):
        self.units = {(u.unit_id_type, u.uscc.upper()): u for u in units}
        self.secret = secret
        self.latency = latency
        self.clock = clock
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self.calls = 0
        self.url_map = Map([
            Rule(VERIFY_PATH, endpoint="verify", methods=["POST"]),
            Rule("/health", endpoint="health", methods=["GET"]),
        ])

    @classmethod
    def from_data_file(cls, secret: str, path: str | Path | None = None, **kwargs) -> RegistrySandbox:
        return cls(load_units(path), secret, **kwargs)

    def outcome(self, unit_id_type: str, uscc: str, unit_name: str, legal_rep_name: str) -> RegistryOutcome:
        unit = self.units.get((unit_id_type, uscc.upper()))
        if unit is None or _nfc(unit.unit_name) != _nfc(unit_name):
            return RegistryOutcome.UNIT_MISMATCH
        if unit.status != "active":
            return RegistryOutcome.DEREGISTERED
        if _nfc(unit.legal_rep_name) != _nfc(legal_rep_name):
            return RegistryOutcome.REPRESENTATIVE_MISMATCH
        return RegistryOutcome.MATCH

    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            endpoint, _ = self.url_map.bind_to_environ(environ).match()
            response = getattr(self, f"_{endpoint}")(request)
        except (NotFound, MethodNotAllowed) as exc:
            response = _json({"error": "not_found" if isinstance(exc, NotFound) else "method_not_allowed"}, exc.code)
        except HTTPException as exc:
            response = _json({"error": "bad_request"}, exc.code or 400)
        return response(environ, start_response)

    def _health(self, request: Request) -> Response:
        return _json({"status": "ok", "units": len(self.units)})

    def _verify(self, request: Request) -> Response:
        body = request.get_data(cache=True)
        timestamp = request.headers.get(TIMESTAMP_HEADER, "")
        request_id = request.headers.get(REQUEST_ID_HEADER, "")
        expected = request_signature(self.secret, "POST", request.path, timestamp, request_id, body)
        if not request_id or not signature_matches(expected, request.headers.get(SIGNATURE_HEADER)):
            return _json({"error": "invalid_signature"}, 401)
        now = self.clock()
        if not timestamp.isdigit() or abs(now - int(timestamp)) > MAX_CLOCK_SKEW:
            return _json({"error": "stale_request"}, 401)
        if not self._first_use(request_id, now):
            return _json({"error": "replayed_request"}, 409)
        try:
            payload = json.loads(body)
            values = {k: payload[k] for k in REQUIRED}
        except (ValueError, KeyError, TypeError):
            return _json({"error": "invalid_request"}, 400)
        if values["request_id"] != request_id or not all(isinstance(v, str) for v in values.values()):
            return _json({"error": "invalid_request"}, 400)
        if self.latency:
            time.sleep(self.latency)
        values.pop("request_id")
        outcome = self.outcome(**values)
        with self._lock:
            self.calls += 1
        answer = json.dumps({"request_id": request_id, "outcome": outcome.value}).encode()
        answered_at = str(int(self.clock()))
        response = Response(answer, 200, content_type="application/json")
        response.headers[TIMESTAMP_HEADER] = answered_at
        response.headers[SIGNATURE_HEADER] = response_signature(self.secret, 200, answered_at, request_id, answer)
        return response

    def _first_use(self, request_id: str, now: float) -> bool:
        with self._lock:
            for seen, forget_at in list(self._seen.items()):
                if forget_at < now:
                    del self._seen[seen]
            if request_id in self._seen:
                return False
            self._seen[request_id] = now + 2 * MAX_CLOCK_SKEW
            return True


def _json(data: dict, status: int = 200) -> Response:
    return Response(json.dumps(data), status, content_type="application/json")
