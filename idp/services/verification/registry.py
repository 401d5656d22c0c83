"""Enterprise credit registry verification (the market regulator's 企业信用信息核验 interface):
the API contract and ``RegistryVerifier``.

A unit registering (单位用户注册) is checked against the registry the way a person is checked
against the bank platform (``verification.bank``), and over the same kind of contract:
``POST {REGISTRY_URL}/v1/unit-verifications`` with a JSON body
``{request_id, unit_id_type, uscc, unit_name, legal_rep_name}``, answered with
``{request_id, outcome}``, the outcome one of ``RegistryOutcome``; both directions signed with
HMAC-SHA256 under a shared secret (the bank contract's signing functions: one implementation).

A check is never retried once sent (the registry may bill and rate-limit each one); only a
connection that could not be opened is tried once more.  Every failure to get a trustworthy
answer — refused, timed out, a 5xx, a bad signature, an unknown outcome — is
``RegistryUnavailable``: the unit is told to try later and nothing is saved.  Every call is
logged with its request id and outcome, never the unit's or a person's data; the use case
audits the outcome (``audited_check``).

When ``REGISTRY_URL`` is empty, development and tests get the sandbox of
``idp.sandbox.registry`` mounted in-process by the application factory (this module never
imports the sandbox).
"""

from __future__ import annotations

import enum
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

import requests
from flask import current_app
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ...config import ConfigError
from ...errors import UserError
from ..audit import events as audit
from ..limits import Charge, charged
from .bank import (
    REQUEST_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    request_signature,
    signed_answer,
)

log = logging.getLogger(__name__)

VERIFY_PATH = "/v1/unit-verifications"
IN_PROCESS_URL = "http://registry-sandbox.invalid"  # RFC 2606 name: can never reach a real host


class RegistryOutcome(str, enum.Enum):
    MATCH = "match"
    UNIT_MISMATCH = "unit_mismatch"  # no unit of that code, or of that code under another name
    REPRESENTATIVE_MISMATCH = "representative_mismatch"
    DEREGISTERED = "deregistered"  # 注销 or 吊销


class RegistryCheckFailed(UserError):
    """The registry answered, and the answer is not a match."""

    outcome: RegistryOutcome

    @property
    def reason_code(self) -> str:
        return self.outcome.value


class RegistryUnitMismatch(RegistryCheckFailed):
    outcome = RegistryOutcome.UNIT_MISMATCH
    message = "单位名称或统一社会信用代码与登记信息不一致"


class RegistryRepresentativeMismatch(RegistryCheckFailed):
    outcome = RegistryOutcome.REPRESENTATIVE_MISMATCH
    message = "法定代表人（负责人）姓名与登记信息不一致"
    field = "legal_rep_name"


class RegistryDeregistered(RegistryCheckFailed):
    outcome = RegistryOutcome.DEREGISTERED
    message = "该单位登记状态为注销或吊销，不能注册"


class RegistryUnavailable(UserError):
    message = "单位登记信息核验服务暂不可用，请稍后再试"
    status = 503


FAILURES: dict[RegistryOutcome, type[RegistryCheckFailed]] = {
    cls.outcome: cls for cls in (RegistryUnitMismatch, RegistryRepresentativeMismatch, RegistryDeregistered)
}


@dataclass(frozen=True)
class UnitCheck:
    """What the registry compares.  Values normalised by the identity rules (NFC names, the
    code upper-case)."""

    unit_id_type: str
    uscc: str
    unit_name: str
    legal_rep_name: str

    def __repr__(self) -> str:  # the representative's name is personal data
        return f"<UnitCheck {self.unit_id_type}>"


def raise_for(outcome: RegistryOutcome) -> None:
    if outcome is not RegistryOutcome.MATCH:
        raise FAILURES[outcome]()


class RegistryVerifier:
    """Calls the registry over HTTP and returns its ``RegistryOutcome``."""

    def __init__(self, base_url: str, secret: str, timeout: float, session: requests.Session | None = None):
        if not secret:
            raise ValueError("the registry verification secret (IDP_REGISTRY_SECRET) is empty")
        self.url = base_url.rstrip("/") + VERIFY_PATH
        self.path = urlsplit(self.url).path
        self.secret = secret
        self.timeout = timeout
        if session is None:
            session = requests.Session()
            # a connection never opened sent nothing: one more try is safe; a sent check never is
            retry = Retry(total=1, connect=1, read=0, status=0, other=0, redirect=0)
            session.mount(base_url.rstrip("/") + "/", HTTPAdapter(max_retries=retry))
        self.session = session

    def verify(self, check: UnitCheck, *, charges: tuple[Charge, ...] = ()) -> RegistryOutcome:
        """The registry's outcome.  ``charges`` are taken first and given back when no answer came."""
        with charged(charges, refund_on=(RegistryUnavailable,)):
            return self._call(check)

    def _call(self, check: UnitCheck) -> RegistryOutcome:
        request_id = secrets.token_hex(16)
        body = json.dumps({"request_id": request_id, **asdict(check)}, ensure_ascii=False).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
            TIMESTAMP_HEADER: timestamp,
            REQUEST_ID_HEADER: request_id,
            SIGNATURE_HEADER: request_signature(self.secret, "POST", self.path, timestamp, request_id, body),
        }
        started = time.monotonic()
        try:
            response = self.session.post(self.url, data=body, headers=headers, timeout=self.timeout,
                                         allow_redirects=False)
        except requests.Timeout:
            log.warning("registry verification timed out after %.1fs (request %s)", self.timeout, request_id)
            raise RegistryUnavailable() from None
        except requests.RequestException as exc:
            log.warning("registry verification unreachable (request %s): %s", request_id, type(exc).__name__)
            raise RegistryUnavailable() from None
        outcome = self._read(response, request_id)
        log.info("registry verification request=%s outcome=%s in %.0f ms", request_id, outcome.value,
                 (time.monotonic() - started) * 1000)
        return outcome

    def _read(self, response: requests.Response, request_id: str) -> RegistryOutcome:
        data = signed_answer(response, self.secret, request_id, "registry verification", RegistryUnavailable)
        try:
            return RegistryOutcome(data.get("outcome"))
        except ValueError:
            log.error("registry verification answer not understood (request %s)", request_id)
            raise RegistryUnavailable() from None


def audited_check(check: UnitCheck, *, actor: str | None, channel: str = "web",
                  charges: tuple[Charge, ...] = ()) -> None:
    """Verify ``check`` at the app's registry and add a ``registry.check`` audit event (outcome
    and reason only: no name, no code) to the caller's transaction; raise the failure the unit
    sees.  The caller commits (a refusal is committed by it as an attempt)."""
    try:
        outcome = registry_verifier().verify(check, charges=charges)
    except UserError as exc:
        audit.add("registry.check", "failure", actor=actor, channel=channel,
                  reason=exc.reason_code)
        raise
    audit.add("registry.check", "success" if outcome is RegistryOutcome.MATCH else "failure", actor=actor,
              channel=channel, reason=outcome.value)
    raise_for(outcome)


def registry_verifier() -> RegistryVerifier:
    """The verifier of the running app: ``REGISTRY_URL`` over HTTP, or with it empty the
    transport the factory installed as ``app.extensions["idp_registry_transport"]`` (the
    in-process sandbox, development and tests only)."""
    app = current_app
    verifier = app.extensions.get("idp_registry")
    if verifier is None:
        cfg = app.config
        if cfg.get("REGISTRY_URL"):
            verifier = RegistryVerifier(cfg["REGISTRY_URL"], cfg["REGISTRY_SECRET"], float(cfg["REGISTRY_TIMEOUT"]))
        else:
            transport: Callable[[], requests.adapters.BaseAdapter] | None = app.extensions.get(
                "idp_registry_transport")
            if transport is None:
                raise ConfigError("IDP_REGISTRY_URL is empty: name the enterprise credit registry")
            session = requests.Session()
            session.mount(IN_PROCESS_URL + "/", transport())
            verifier = RegistryVerifier(IN_PROCESS_URL, cfg["REGISTRY_SECRET"], float(cfg["REGISTRY_TIMEOUT"]),
                                        session=session)
        app.extensions["idp_registry"] = verifier
    return verifier
