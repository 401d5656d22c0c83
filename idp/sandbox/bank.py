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
import time
import unicodedata
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from ..services.verification.bank import CARD_LOOKUP_PATH, VERIFY_PATH, BankOutcome, CardKind
from .signed import SignedPlatform, json_response

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


class BankSandbox(SignedPlatform):
    """WSGI app: ``POST /v1/verifications``, ``POST /v1/cards/lookup`` and ``GET /health``."""

    def __init__(self, records: list[BankRecord], secret: str, *, latency: float = 0.0, clock=time.time):
        super().__init__(secret, latency=latency, clock=clock)
        self.cards = {(r.bank, r.card_number): r for r in records}
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
    def _health(self, request: Request) -> Response:
        return json_response({"status": "ok", "records": len(self.cards)})

    def _lookup(self, request: Request) -> Response:
        values, refusal = self._signed_request(request, ("request_id", "bank", "card_number"))
        if refusal is not None:
            return refusal
        kind = self.card_kind(values["bank"], values["card_number"])
        with self._lock:
            self.lookups += 1
        return self._signed_answer(values["request_id"], {"card": kind.value})

    def _verify(self, request: Request) -> Response:
        values, refusal = self._signed_request(request, REQUIRED)
        if refusal is not None:
            return refusal
        request_id = values.pop("request_id")
        outcome = self.outcome(**values)
        with self._lock:
            self.calls += 1
        return self._signed_answer(request_id, {"outcome": outcome.value})


