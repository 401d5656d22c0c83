"""SMS: the sender adapters and the one-time codes of SPEC §6.

``SmsSender`` is the interface (``send(phone, text, purpose=…)``); two implementations:

- ``OutboxSmsSender`` (development, tests, demo): keeps each message in a Redis outbox shown at
  ``/dev/sms-outbox`` and logs it; production settings refuse it.
- ``HttpSmsSender``: a gateway reached by URL and key (``IDP_SMS_URL``, ``IDP_SMS_KEY``).

``SmsCode`` issues and checks codes bound to a purpose and a phone; their length, lifetime,
resend delay, tries per code and the daily cap per phone are settings (``SMS_*`` in
``idp/config.py``).  Only a keyed hash of the code is stored, in Redis under a keyed hash of the
phone, so Redis holds neither.

Budgets are taken before the work and given back when nothing was sent: ``send`` checks the
resend delay first (``SmsResendTooSoon`` spends nothing), then takes the caller's charges (a
flow's SMS budget: ``KeyedLimit(...).charge(flow_id)``) and the phone's daily cap, and returns
all of them if the gateway did not take the message.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Protocol

import requests
from flask import current_app
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ...errors import UserError
from ...extensions import db, redis_store
from ..audit import events as audit
from ..identity import pii
from ..limits import Charge, KeyedLimit, charged

log = logging.getLogger(__name__)

CHINA = timezone(timedelta(hours=8))  # the daily cap follows the citizen's calendar day

PURPOSES: dict[str, str] = {
    "register": "注册",
    "recovery": "找回账号",
    "phone_change": "更换手机号",
    "profile": "变更用户信息",
    "account_closure": "注销账号",
}
SIGNATURE = "【人社局统一用户平台】"


# -- failures a citizen sees -------------------------------------------------------------------
class SmsResendTooSoon(UserError):
    status = 429

    def __init__(self, seconds: int) -> None:
        super().__init__(f"短信验证码已发送，请{seconds}秒后再重新获取")
        self.seconds = seconds


class SmsDailyCapReached(UserError):
    message = "该手机号今日获取短信验证码的次数已达上限，请明天再试"
    status = 429


class SmsUnavailable(UserError):
    message = "短信发送失败，请稍后再试"
    status = 503


class SmsCodeInvalid(UserError):
    message = "短信验证码错误或已失效"
    field = "sms_code"


class SmsCodeExpired(SmsCodeInvalid):
    message = "短信验证码已失效，请重新获取"


class SmsCodeExhausted(SmsCodeInvalid):
    message = "短信验证码错误次数过多，请重新获取"


class SmsCodeNotRequested(SmsCodeInvalid):
    message = "请先点击“发送短信验证”获取短信验证码"


# -- policy (the settings, read when used) --------------------------------------------------------
@dataclass(frozen=True)
class SmsPolicy:
    code_length: int
    code_ttl: int
    resend_after: int
    max_tries: int
    daily_cap: int

    @classmethod
    def current(cls) -> SmsPolicy:
        cfg = current_app.config
        return cls(int(cfg["SMS_CODE_LENGTH"]), int(cfg["SMS_CODE_TTL"]), int(cfg["SMS_RESEND_AFTER"]),
                   int(cfg["SMS_MAX_TRIES"]), int(cfg["SMS_DAILY_CAP"]))


# codes per phone per calendar day (the day is in the key; the window only lets Redis forget it)
DAILY_CAP = KeyedLimit("SMS_DAILY_CAP", SmsDailyCapReached, namespace="sms-daily", window=2 * 24 * 3600)
# typed codes checked per code sent (keyed by the code's own id: a new code starts afresh)
TRIES = KeyedLimit("SMS_MAX_TRIES", SmsCodeExhausted, namespace="sms-tries", window="SMS_CODE_TTL")


# -- senders -------------------------------------------------------------------------------------
class SmsSender(Protocol):
    def send(self, phone: str, text: str, *, purpose: str) -> None:
        """Deliver ``text`` to the mainland mobile ``phone`` (11 digits) or raise ``SmsUnavailable``."""


_OUTBOX = "dev:sms-outbox"
OUTBOX_KEEP = 500
OUTBOX_TTL = 24 * 3600


class OutboxSmsSender:
    """Development sender: the message goes to an outbox in Redis and to the log, nowhere else."""

    def send(self, phone: str, text: str, *, purpose: str) -> None:
        entry = {"phone": phone, "text": text, "purpose": purpose,
                 "sent_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        pipe = redis_store.pipeline()
        pipe.lpush(_OUTBOX, json.dumps(entry, ensure_ascii=False))
        pipe.ltrim(_OUTBOX, 0, OUTBOX_KEEP - 1)
        pipe.expire(_OUTBOX, OUTBOX_TTL)
        pipe.execute()
        log.warning("SMS outbox (development, not delivered) to %s: %s", pii.mask_phone(phone), text)

    @staticmethod
    def messages(phone: str | None = None, limit: int = 50) -> list[dict]:
        """Newest first, optionally only those to one phone."""
        out = []
        for raw in redis_store.lrange(_OUTBOX, 0, OUTBOX_KEEP - 1):
            entry = json.loads(raw)
            if phone is None or entry["phone"] == phone:
                out.append(entry)
                if len(out) >= limit:
                    break
        return out


class HttpSmsSender:
    """A gateway speaking ``POST {url}`` with ``Authorization: Bearer {key}`` and
    ``{request_id, to, text}``, answering 2xx when it accepted the message.  A message is not
    retried once sent (the citizen would get two codes); the request id lets a gateway drop a
    duplicate should a proxy retry."""

    def __init__(self, url: str, key: str, timeout: float = 5.0, session: requests.Session | None = None):
        if not url or not key:
            raise ValueError("IDP_SMS_URL and IDP_SMS_KEY are required for the http SMS backend")
        self.url, self.key, self.timeout = url, key, timeout
        if session is None:
            session = requests.Session()
            retry = Retry(total=1, connect=1, read=0, status=0, other=0, redirect=0)
            session.mount(url.split("://", 1)[0] + "://", HTTPAdapter(max_retries=retry))
        self.session = session

    def send(self, phone: str, text: str, *, purpose: str) -> None:
        request_id = secrets.token_hex(16)
        try:
            response = self.session.post(
                self.url,
                json={"request_id": request_id, "to": phone, "text": text},
                headers={"Authorization": f"Bearer {self.key}", "Accept": "application/json"},
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            log.warning("SMS gateway unreachable (request %s): %s", request_id, type(exc).__name__)
            raise SmsUnavailable() from None
        if not 200 <= response.status_code < 300:
            log.warning("SMS gateway answered HTTP %s (request %s)", response.status_code, request_id)
            raise SmsUnavailable()
        log.info("SMS sent through gateway (request %s, purpose %s)", request_id, purpose)


def sms_sender() -> SmsSender:
    """The app's sender: the gateway (``SMS_BACKEND=http``), or the outbox the application
    factory installed for development and tests."""
    app = current_app
    sender = app.extensions.get("idp_sms")
    if sender is None:
        cfg = app.config
        if cfg["SMS_BACKEND"] == "http":
            sender = HttpSmsSender(cfg["SMS_URL"], cfg["SMS_KEY"], float(cfg["SMS_TIMEOUT"]))
        elif cfg["SMS_BACKEND"] == "outbox":
            raise ValueError("IDP_SMS_BACKEND=outbox serves development and tests only; use http with IDP_SMS_URL")
        else:
            raise ValueError(f"IDP_SMS_BACKEND={cfg['SMS_BACKEND']!r}: choose outbox or http")
        app.extensions["idp_sms"] = sender
    return sender


# -- codes ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SmsSent:
    phone: str
    expires_in: int
    resend_after: int

    @property
    def masked_phone(self) -> str:
        return pii.mask_phone(self.phone)

    @property
    def notice(self) -> str:
        """What the page says once the code is on its way."""
        return f"短信验证码已发送至{self.masked_phone}，{self.expires_in // 60}分钟内有效"


class SmsCode:
    """One-time codes for one purpose (``register``, ``recovery``, ``phone_change``, …)."""

    #: a decoy (``phone_proof.DecoyCode``) keeps a record no code matches and sends nothing
    delivers = True

    def __init__(self, purpose: str, *, clock: Callable[[], float] = time.time,
                 sender: SmsSender | None = None) -> None:
        if purpose not in PURPOSES:
            raise ValueError(f"unknown SMS purpose {purpose!r}")
        self.purpose = purpose
        self.clock = clock
        self._sender = sender

    # Redis keys carry a keyed hash of the phone, never the phone
    def _phone_key(self, phone: str) -> str:
        return pii.cipher().lookup_hash("phone", phone)[:32]

    def _code_key(self, phone: str) -> str:
        return f"sms:code:{self.purpose}:{self._phone_key(phone)}"

    def _cooldown_key(self, phone: str) -> str:
        return f"sms:resend:{self.purpose}:{self._phone_key(phone)}"

    def _day(self) -> str:
        return datetime.fromtimestamp(self.clock(), CHINA).strftime("%Y%m%d")

    def _digest(self, phone: str, code: str) -> str:
        key = current_app.config["SECRET_KEY"].encode()
        return hmac.new(key, f"sms|{self.purpose}|{phone}|{code}".encode(), hashlib.sha256).hexdigest()

    def sent_today(self, phone: str) -> int:
        """Codes of any purpose counted against ``phone``'s daily cap today."""
        return DAILY_CAP.used(self._phone_key(phone), self._day())

    def check_resend(self, phone: str) -> None:
        """Raise ``SmsResendTooSoon`` if a code of this purpose went to ``phone`` within the resend
        delay (a read: ``send`` takes the gate itself, atomically)."""
        wait = SmsPolicy.current().resend_after
        last = redis_store.get(self._cooldown_key(phone))
        if last is not None and self.clock() - float(last) < wait:
            raise SmsResendTooSoon(max(1, int(wait - (self.clock() - float(last)) + 0.999)))

    def send(self, phone: str, *, actor: str | None = None, charges: tuple[Charge, ...] = ()) -> SmsSent:
        """Issue a fresh code to ``phone`` (11 digits) and send it; the previous code of this
        purpose and phone stops working.

        Raises before spending anything: ``SmsResendTooSoon``; then the error of the first
        exhausted budget among ``charges`` (the caller's, e.g. a flow's) and the phone's daily cap
        (``SmsDailyCapReached``), having given back what it took; ``SmsUnavailable`` when the
        gateway did not take the message, with every budget given back."""
        policy = SmsPolicy.current()
        now = self.clock()
        cooldown = self._cooldown_key(phone)
        # the resend gate is taken atomically (SET NX): two parallel presses send one code
        if not redis_store.set(cooldown, str(now), nx=True, ex=policy.resend_after):
            last = float(redis_store.get(cooldown) or now)
            if now - last < policy.resend_after:
                raise SmsResendTooSoon(max(1, int(policy.resend_after - (now - last) + 0.999)))
            redis_store.set(cooldown, str(now), ex=policy.resend_after)  # outlived its window (clock skew)
        key = self._code_key(phone)
        daily = DAILY_CAP.charge(self._phone_key(phone), self._day())
        try:
            with charged((*charges, daily), refund_on=(SmsUnavailable,)):
                code = "".join(secrets.choice("0123456789") for _ in range(policy.code_length))
                digest = self._digest(phone, code) if self.delivers else secrets.token_hex(32)
                record = {"digest": digest, "expires_at": str(now + policy.code_ttl), "id": secrets.token_hex(8)}
                pipe = redis_store.pipeline()
                pipe.delete(key)
                pipe.hset(key, mapping=record)
                pipe.expire(key, policy.code_ttl + 60)
                pipe.execute()
                text = (f"{SIGNATURE}您的{PURPOSES[self.purpose]}验证码为{code}，"
                        f"{policy.code_ttl // 60}分钟内有效。请勿泄露给他人。")
                if self.delivers:
                    (self._sender or sms_sender()).send(phone, text, purpose=self.purpose)
        except SmsDailyCapReached:
            redis_store.delete(cooldown)  # nothing was sent
            audit.add("sms.sent", "denied", actor=actor, purpose=self.purpose, reason="daily_cap")
            db.session.commit()
            raise
        except SmsUnavailable:
            # nothing went out: the citizen may try again at once, and it cost no budget
            redis_store.delete(key, cooldown)
            audit.add("sms.sent", "error", actor=actor, purpose=self.purpose, reason="gateway")
            db.session.commit()
            raise
        except UserError:
            redis_store.delete(cooldown)  # a caller's budget refused: nothing was sent
            raise
        if self.delivers:
            audit.add("sms.sent", actor=actor, purpose=self.purpose)
            db.session.commit()
        else:
            audit.add("sms.sent", "skipped", actor=actor, purpose=self.purpose, reason="no_account")
            db.session.commit()
        return SmsSent(phone, policy.code_ttl, policy.resend_after)

    def verify(self, phone: str, code: str) -> None:
        """Accept the code once, or raise an ``SmsCodeInvalid`` subclass.  Every try is taken
        from the code's budget before the comparison (so parallel guesses cannot exceed it); a
        right code is spent at once."""
        policy = SmsPolicy.current()
        key = self._code_key(phone)
        stored = redis_store.hgetall(key)
        if b"digest" not in stored:  # no code (never sent, expired, spent)
            raise SmsCodeInvalid()
        code_id = stored.get(b"id", b"").decode()
        try:
            TRIES.take(code_id)
        except SmsCodeExhausted:
            redis_store.delete(key)
            raise
        if self.clock() > float(stored[b"expires_at"]):
            redis_store.delete(key)
            raise SmsCodeExpired()
        presented = (code or "").strip()
        if not (presented.isdigit() and len(presented) == policy.code_length) or not hmac.compare_digest(
            stored[b"digest"].decode(), self._digest(phone, presented)
        ):
            if TRIES.spent(code_id):
                redis_store.delete(key)
                raise SmsCodeExhausted()
            raise SmsCodeInvalid()
        if not redis_store.delete(key):
            raise SmsCodeInvalid()  # a parallel request spent it first

    def discard(self, phone: str) -> None:
        redis_store.delete(self._code_key(phone))
