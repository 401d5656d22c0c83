"""Bank real-name verification (联网银行信息核验平台): the API contract and ``BankVerifier``.

The contract is ours (SPEC §6): ``POST {BANK_URL}/v1/verifications`` with a JSON body
``{request_id, bank, card_number, name, id_type, id_number, phone}``, answered with
``{request_id, outcome}``, the outcome being one of ``BankOutcome``.  Both directions are signed
with HMAC-SHA256 under a shared secret over the method, path, timestamp, request id and a digest
of the body, so neither a request nor an answer can be forged or replayed (the platform refuses
a request id it has seen and a timestamp more than five minutes off).  ``POST {BANK_URL}/v1/cards/lookup``
with ``{request_id, bank, card_number}``, signed the same way, answers ``{request_id, card}``
(``CardKind``): what card it is, asked before an SMS code or a check is spent on it.  The README's
"bank verification platform's contract" spells both out.

A verification is not idempotent (the platform may bill and rate-limit each one), so it is never
retried once sent; only a connection that could not be opened is tried once more.  Every failure
to get a trustworthy answer — refused, timed out, a 5xx, a bad signature, an unknown outcome —
is ``BankUnavailable``: the citizen is told to try later and nothing is saved.

A slow platform must not take the node with it: a worker process runs at most
``BANK_MAX_CONCURRENT`` verifications at once, and one citizen (one document) at most
``BANK_MAX_CONCURRENT_PER_CITIZEN`` across all nodes (a Redis lease that expires, so a crashed
worker frees it); a call over either bound is refused at once (``BankBusy``,
``BankCheckInProgress``, both kinds of ``BankUnavailable``).  Budgets the caller hands in
(``charges``) are taken before the call and given back when the platform gave no answer.

When ``BANK_URL`` is empty, development and tests get the sandbox of ``idp.sandbox.bank``
mounted in-process under a reserved host name through a requests transport adapter — wired by
the application factory (this module never imports the sandbox) — so this same adapter — request
building, signing, JSON, answer checks — is what runs in development, the demo and tests.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

import requests
from flask import current_app
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ...config import ConfigError
from ...errors import UserError
from ..identity import pii
from ..limits import Charge, ConcurrencyLimit, charged

log = logging.getLogger(__name__)

VERIFY_PATH = "/v1/verifications"
CARD_LOOKUP_PATH = "/v1/cards/lookup"
SIGNATURE_HEADER = "X-HRSS-Signature"
TIMESTAMP_HEADER = "X-HRSS-Timestamp"
REQUEST_ID_HEADER = "X-HRSS-Request-Id"
MAX_CLOCK_SKEW = 300  # seconds either way
IN_PROCESS_URL = "http://bank-sandbox.invalid"  # RFC 2606 name: can never reach a real host


class BankOutcome(str, enum.Enum):
    MATCH = "match"
    IDENTITY_MISMATCH = "identity_mismatch"
    PHONE_MISMATCH = "phone_mismatch"
    CARD_NOT_DEBIT = "card_not_debit"
    CARD_NOT_FOUND = "card_not_found"
    CARD_INACTIVE = "card_inactive"


class CardKind(str, enum.Enum):
    """The card lookup's answer: what the bank knows of a card before any four-element check."""

    DEBIT = "debit"  # a debit card or a Shenzhen financial social-security card
    CREDIT = "credit"
    INACTIVE = "inactive"  # not activated, reported lost, closed
    UNKNOWN = "unknown"


# -- what the citizen sees -----------------------------------------------------------------------
class BankCheckFailed(UserError):
    """The bank answered, and the answer is not a match."""

    outcome: BankOutcome

    @property
    def reason_code(self) -> str:
        return self.outcome.value  # the bank's own word for it


class BankIdentityMismatch(BankCheckFailed):
    outcome = BankOutcome.IDENTITY_MISMATCH
    message = "人员姓名或证件类型或证件号与银行登记不匹配"


class BankPhoneMismatch(BankCheckFailed):
    outcome = BankOutcome.PHONE_MISMATCH
    message = "手机号与银行预留手机号不一致，请更换银行卡验证或去对应银行网点修改预留手机号"
    field = "phone"


class BankCardNotDebit(BankCheckFailed):
    outcome = BankOutcome.CARD_NOT_DEBIT
    message = "该卡不是借记卡，不能用于实名认证，请使用所列银行的借记卡或深圳金融社保卡"
    field = "card_number"


class BankCardNotFound(BankCheckFailed):
    outcome = BankOutcome.CARD_NOT_FOUND
    message = "所选银行未查询到该银行账号，请核对银行和银行账号，或使用所列银行的借记卡或深圳金融社保卡"
    field = "card_number"


class BankCardInactive(BankCheckFailed):
    outcome = BankOutcome.CARD_INACTIVE
    message = "该银行卡状态异常（未激活、已挂失或已销户），请使用所列银行的其他有效借记卡或深圳金融社保卡"
    field = "card_number"


class BankUnavailable(UserError):
    message = "银行核验服务暂不可用，请稍后再试"
    status = 503


class BankCheckInProgress(BankUnavailable):
    """A verification for the same citizen is still running (a double click, parallel tabs)."""

    message = "银行核验正在进行中，请稍后再试"
    status = 429


class BankBusy(BankUnavailable):
    """Every bank slot of this worker is taken by calls still waiting for the platform."""

    message = "银行核验服务繁忙，请稍后再试"
    status = 503


# one verification at a time per citizen (keyed hash of the document), across every node
CITIZEN_SLOTS = ConcurrencyLimit("BANK_MAX_CONCURRENT_PER_CITIZEN", "BANK_SLOT_LEASE", BankCheckInProgress,
                                 namespace="bank-calls")


FAILURES: dict[BankOutcome, type[BankCheckFailed]] = {
    cls.outcome: cls
    for cls in (BankIdentityMismatch, BankPhoneMismatch, BankCardNotDebit, BankCardNotFound, BankCardInactive)
}


@dataclass(frozen=True)
class BankCheck:
    """The four elements (and the bank they are checked against).  Values already normalised
    by the identity rules: NFC name, canonical document number, digits only."""

    bank: str
    card_number: str
    name: str
    id_type: str
    id_number: str
    phone: str

    def __repr__(self) -> str:  # never print personal data
        return f"<BankCheck bank={self.bank} id_type={self.id_type}>"


def raise_for(outcome: BankOutcome) -> None:
    if outcome is not BankOutcome.MATCH:
        raise FAILURES[outcome]()


CARD_REFUSALS: dict[CardKind, type[BankCheckFailed]] = {
    CardKind.CREDIT: BankCardNotDebit, CardKind.INACTIVE: BankCardInactive, CardKind.UNKNOWN: BankCardNotFound,
}


def raise_for_card(kind: CardKind) -> None:
    """The refusal the four-element check would give this card anyway, said before an SMS code
    is spent on it."""
    if kind is not CardKind.DEBIT:
        raise CARD_REFUSALS[kind]()


# -- signing (shared with the sandbox: one contract, one implementation) --------------------------
def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def request_signature(secret: str, method: str, path: str, timestamp: str, request_id: str, body: bytes) -> str:
    message = "\n".join([method.upper(), path, timestamp, request_id, _digest(body)])
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def response_signature(secret: str, status: int, timestamp: str, request_id: str, body: bytes) -> str:
    message = "\n".join(["RESPONSE", str(status), timestamp, request_id, _digest(body)])
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def signature_matches(expected: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(expected, presented)


def signed_answer(response: requests.Response, secret: str, request_id: str, what: str,
                  unavailable: type[Exception]) -> dict:
    """The JSON answer of a signed platform (the bank, the enterprise registry) to ``request_id``:
    HTTP 200, a valid signature over status, timestamp, request id and body, and the same request
    id inside; anything else raises ``unavailable`` (the platform did not answer usably)."""
    if response.status_code != 200:
        log.warning("%s answered HTTP %s (request %s)", what, response.status_code, request_id)
        raise unavailable()
    timestamp = response.headers.get(TIMESTAMP_HEADER, "")
    expected = response_signature(secret, 200, timestamp, request_id, response.content)
    if not signature_matches(expected, response.headers.get(SIGNATURE_HEADER)):
        log.error("%s answer has a bad signature (request %s)", what, request_id)
        raise unavailable()
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict) or data.get("request_id") != request_id:
        log.error("%s answer not understood (request %s)", what, request_id)
        raise unavailable()
    return data


# -- the adapter -----------------------------------------------------------------------------------
class BankVerifier:
    """Calls the verification platform over HTTP and returns its ``BankOutcome``.

    ``max_concurrent`` bounds the calls this instance (one per app, so per worker process) runs
    at once; ``citizen_slots`` bounds them per citizen across nodes (the app's verifier has both;
    a bare verifier neither)."""

    def __init__(self, base_url: str, secret: str, timeout: float, session: requests.Session | None = None,
                 *, max_concurrent: int | None = None, citizen_slots: ConcurrencyLimit | None = None):
        self._calls = threading.BoundedSemaphore(max_concurrent) if max_concurrent else None
        self.citizen_slots = citizen_slots
        if not secret:
            raise ValueError("the bank verification secret (IDP_BANK_SECRET) is empty")
        self.url = base_url.rstrip("/") + VERIFY_PATH
        self.path = urlsplit(self.url).path
        self.lookup_url = base_url.rstrip("/") + CARD_LOOKUP_PATH
        self.lookup_path = urlsplit(self.lookup_url).path
        self.secret = secret
        self.timeout = timeout
        if session is None:
            session = requests.Session()
            # a connection that was never opened sent nothing, so one more try is safe; a request
            # that reached the platform is never repeated (read=0, status=0)
            retry = Retry(total=1, connect=1, read=0, status=0, other=0, redirect=0)
            session.mount(base_url.rstrip("/") + "/", HTTPAdapter(max_retries=retry))
        self.session = session

    def verify(self, check: BankCheck, *, charges: tuple[Charge, ...] = ()) -> BankOutcome:
        """The platform's outcome for ``check``.  ``charges`` (budgets such as a flow's bank
        checks or an account's per day: ``KeyedLimit(...).charge(key)``) are taken first — the
        first exhausted one raises its error — and given back if no answer came
        (``BankUnavailable`` and its kinds: down, timed out, busy, already running)."""
        with charged(charges, refund_on=(BankUnavailable,)), self._slot(check):
            return self._call(check)

    @contextmanager
    def _slot(self, check: BankCheck) -> Iterator[None]:
        if self._calls is not None and not self._calls.acquire(blocking=False):
            log.warning("bank verification refused: every slot of this worker is busy")
            raise BankBusy()
        try:
            if self.citizen_slots is None:
                yield
            else:
                citizen = pii.cipher().lookup_hash("id_number", f"{check.id_type}|{check.id_number}")[:32]
                with self.citizen_slots.held(citizen):
                    yield
        finally:
            if self._calls is not None:
                self._calls.release()

    def lookup_card(self, bank: str, card_number: str) -> CardKind:
        """``POST /v1/cards/lookup``: whether the bank knows the card and of which kind, signed
        like a verification.  Reads only, so it is safe to ask before an SMS code is spent."""
        if self._calls is not None and not self._calls.acquire(blocking=False):
            raise BankBusy()
        try:
            request_id = secrets.token_hex(16)
            payload = {"request_id": request_id, "bank": bank, "card_number": card_number}
            response = self._post(self.lookup_url, self.lookup_path, payload, request_id, "card lookup")
            data = self._answer(response, request_id, "card lookup")
            try:
                return CardKind(data["card"])
            except (ValueError, KeyError, TypeError):
                log.error("bank card lookup answer not understood (request %s)", request_id)
                raise BankUnavailable() from None
        finally:
            if self._calls is not None:
                self._calls.release()

    def _post(self, url: str, path: str, payload: dict, request_id: str, what: str) -> requests.Response:
        body = json.dumps(payload, ensure_ascii=False).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
            TIMESTAMP_HEADER: timestamp,
            REQUEST_ID_HEADER: request_id,
            SIGNATURE_HEADER: request_signature(self.secret, "POST", path, timestamp, request_id, body),
        }
        try:
            return self.session.post(url, data=body, headers=headers, timeout=self.timeout, allow_redirects=False)
        except requests.Timeout:
            log.warning("bank %s timed out after %.1fs (request %s)", what, self.timeout, request_id)
            raise BankUnavailable() from None
        except requests.RequestException as exc:
            log.warning("bank %s unreachable (request %s): %s", what, request_id, type(exc).__name__)
            raise BankUnavailable() from None

    def _answer(self, response: requests.Response, request_id: str, what: str) -> dict:
        """The signed JSON answer to ``request_id``, or ``BankUnavailable``."""
        return signed_answer(response, self.secret, request_id, f"bank {what}", BankUnavailable)

    def _call(self, check: BankCheck) -> BankOutcome:
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
            response = self.session.post(
                self.url, data=body, headers=headers, timeout=self.timeout, allow_redirects=False
            )
        except requests.Timeout:
            log.warning("bank verification timed out after %.1fs (request %s)", self.timeout, request_id)
            raise BankUnavailable() from None
        except requests.RequestException as exc:
            log.warning("bank verification unreachable (request %s): %s", request_id, type(exc).__name__)
            raise BankUnavailable() from None
        outcome = self._read(response, request_id)
        log.info(
            "bank verification request=%s bank=%s outcome=%s in %.0f ms",
            request_id, check.bank, outcome.value, (time.monotonic() - started) * 1000,
        )
        return outcome

    def _read(self, response: requests.Response, request_id: str) -> BankOutcome:
        data = self._answer(response, request_id, "verification")
        try:
            return BankOutcome(data.get("outcome"))
        except ValueError:
            log.error("bank verification answer not understood (request %s)", request_id)
            raise BankUnavailable() from None


def bank_verifier() -> BankVerifier:
    """The verifier of the running app (one per app: it keeps its connection pool and its slots).

    With ``BANK_URL`` set it speaks HTTP to that platform; with it empty, to the transport the
    application factory installed as ``app.extensions["idp_bank_transport"]`` (the in-process
    sandbox, development and tests only)."""
    app = current_app
    verifier = app.extensions.get("idp_bank")
    if verifier is None:
        cfg = app.config
        limits = dict(max_concurrent=int(cfg["BANK_MAX_CONCURRENT"]), citizen_slots=CITIZEN_SLOTS)
        if cfg.get("BANK_URL"):
            verifier = BankVerifier(cfg["BANK_URL"], cfg["BANK_SECRET"], float(cfg["BANK_TIMEOUT"]), **limits)
        else:
            transport: Callable[[], requests.adapters.BaseAdapter] | None = app.extensions.get("idp_bank_transport")
            if transport is None:
                raise ConfigError("IDP_BANK_URL is empty: name the bank verification platform")
            session = requests.Session()
            session.mount(IN_PROCESS_URL + "/", transport())
            verifier = BankVerifier(IN_PROCESS_URL, cfg["BANK_SECRET"], float(cfg["BANK_TIMEOUT"]), session=session,
                                    **limits)
        app.extensions["idp_bank"] = verifier
    return verifier
