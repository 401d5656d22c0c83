"""The sandbox bank verification platform: our API contract (``idp.services.verification.bank``) answered from
a data file of fictitious bank records.

A plain WSGI app (werkzeug, no Flask): mounted in-process for development, the demo and tests
(``idp.sandbox.transport``), or served on its own port (``idp sandbox bank --port 8601``) so the
provider reaches it over real HTTP with ``IDP_BANK_URL=http://127.0.0.1:8601``.  It enforces
the contract as the real platform would: signed requests, a clock-skew window, no replayed
request id, signed answers.
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
    CARD_LOOKUP_PATH,
    VERIFY_PATH,
    BankOutcome,
    CardKind,
    request_signature,
    response_signature,
    signature_matches,
)

REQUIRED = ("request_id", "bank", "card_number", "name", "id_type", "id_number", "phone")


@dataclass(frozen=True)
class BankRecord:
    """One card as a bank holds it: the card and the four elements registered with it."""

    bank: str
    card_number: str
    card_type: str  # debit, social_security (Shenzhen financial social-security card) or credit
    status: str  # active or inactive (not activated, reported lost, closed)
    name: str
    id_type: str
    id_number: str
    phone: str
    note: str = ""
    demo: bool = False
    # what the bank also holds but the four-element check does not compare; given for holders
    # whose document number does not encode them (permits, passports)
    gender: str | None = None
    birthdate: str | None = None

    @classmethod
    def from_dict(cls, data: dict) -> BankRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def load_records(path: str | Path | None = None) -> list[BankRecord]:
    if path is None:
        text = resources.files("idp.sandbox").joinpath("data/bank_records.json").read_text("utf-8")
    else:
        text = Path(path).read_text("utf-8")
    return [BankRecord.from_dict(r) for r in json.loads(text)["records"]]


def _same_name(a: str, b: str) -> bool:
    return unicodedata.normalize("NFC", a) == unicodedata.normalize("NFC", b)


class BankSandbox:
    """WSGI app: ``POST /v1/verifications``, ``POST /v1/cards/lookup`` and ``GET /health``."""

    def __init__(self, records: list[BankRecord], secret: str, *, latency: float = 0.0, clock=time.time):
        self.cards = {(r.bank, r.card_number): r for r in records}
        self.secret = secret
        self.latency = latency
        self.clock = clock
        self._seen: dict[str, float] = {}  # request id → when it may be forgotten
        self._lock = threading.Lock()
        self.calls = 0  # verifications answered (tests assert "not called" / "called once")
        self.lookups = 0  # card lookups answered
        self.url_map = Map([
            Rule(VERIFY_PATH, endpoint="verify", methods=["POST"]),
            Rule(CARD_LOOKUP_PATH, endpoint="lookup", methods=["POST"]),
            Rule("/health", endpoint="health", methods=["GET"]),
        ])

    @classmethod
    def from_data_file(cls, secret: str, path: str | Path | None = None, **kwargs) -> BankSandbox:
        return cls(load_records(path), secret, **kwargs)

    # -- the rules of the four-element check ----------------------------------------------------
    def outcome(self, bank: str, card_number: str, name: str, id_type: str, id_number: str, phone: str) -> BankOutcome:
        record = self.cards.get((bank, card_number))
        if record is None:
            return BankOutcome.CARD_NOT_FOUND
        if record.card_type == "credit":
            return BankOutcome.CARD_NOT_DEBIT
        if record.status != "active":
            return BankOutcome.CARD_INACTIVE
        if (
            not _same_name(record.name, name)
            or record.id_type != id_type
            or record.id_number.upper() != id_number.upper()
        ):
            return BankOutcome.IDENTITY_MISMATCH
        if record.phone != phone:
            return BankOutcome.PHONE_MISMATCH
        return BankOutcome.MATCH

    def card_kind(self, bank: str, card_number: str) -> CardKind:
        record = self.cards.get((bank, card_number))
        if record is None:
            return CardKind.UNKNOWN
        if record.card_type == "credit":
            return CardKind.CREDIT
        if record.status != "active":
            return CardKind.INACTIVE
        return CardKind.DEBIT

    # -- WSGI ----------------------------------------------------------------------------------
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
        return _json({"status": "ok", "records": len(self.cards)})

    def _signed_request(self, request: Request, required: tuple[str, ...]) -> tuple[dict | None, Response | None]:
        """The request's JSON values when it is signed, fresh, first seen and complete; else the
        refusal to send."""
        body = request.get_data(cache=True)
        timestamp = request.headers.get(TIMESTAMP_HEADER, "")
        request_id = request.headers.get(REQUEST_ID_HEADER, "")
        expected = request_signature(self.secret, "POST", request.path, timestamp, request_id, body)
        if not request_id or not signature_matches(expected, request.headers.get(SIGNATURE_HEADER)):
            return None, _json({"error": "invalid_signature"}, 401)
        now = self.clock()
        if not timestamp.isdigit() or abs(now - int(timestamp)) > MAX_CLOCK_SKEW:
            return None, _json({"error": "stale_request"}, 401)
        if not self._first_use(request_id, now):
            return None, _json({"error": "replayed_request"}, 409)
        try:
            payload = json.loads(body)
            values = {k: payload[k] for k in required}
        except (ValueError, KeyError, TypeError):
            return None, _json({"error": "invalid_request"}, 400)
        if values["request_id"] != request_id or not all(isinstance(v, str) for v in values.values()):
            return None, _json({"error": "invalid_request"}, 400)
        return values, None

    def _signed_answer(self, request_id: str, data: dict) -> Response:
        answer = json.dumps({"request_id": request_id, **data}).encode()
        answered_at = str(int(self.clock()))
        response = Response(answer, 200, content_type="application/json")
        response.headers[TIMESTAMP_HEADER] = answered_at
        response.headers[SIGNATURE_HEADER] = response_signature(self.secret, 200, answered_at, request_id, answer)
        return response

    def _lookup(self, request: Request) -> Response:
        values, refusal = self._signed_request(request, ("request_id", "bank", "card_number"))
        if refusal is not None:
            return refusal
        if self.latency:
            time.sleep(self.latency)
        kind = self.card_kind(values["bank"], values["card_number"])
        with self._lock:
            self.lookups += 1
        return self._signed_answer(values["request_id"], {"card": kind.value})

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
