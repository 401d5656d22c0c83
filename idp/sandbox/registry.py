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
import time
import unicodedata
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path

from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from ..services.verification.registry import VERIFY_PATH, RegistryOutcome
from .signed import SignedPlatform, json_response

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


class RegistrySandbox(SignedPlatform):
    """WSGI app: ``POST /v1/unit-verifications`` and ``GET /health``."""

    def __init__(self, units: list[RegistryUnit], secret: str, *, latency: float = 0.0, clock=time.time):
        super().__init__(secret, latency=latency, clock=clock)
        self.units = {(u.unit_id_type, u.uscc.upper()): u for u in units}
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

    def _health(self, request: Request) -> Response:
        return json_response({"status": "ok", "units": len(self.units)})

    def _verify(self, request: Request) -> Response:
        values, refusal = self._signed_request(request, REQUIRED)
        if refusal is not None:
            return refusal
        request_id = values.pop("request_id")
        outcome = self.outcome(**values)
        with self._lock:
            self.calls += 1
        return self._signed_answer(request_id, {"outcome": outcome.value})
