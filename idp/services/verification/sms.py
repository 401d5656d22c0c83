"""SMS: the sender adapters and the one-time codes of SPEC §6.

``SmsSender`` is the interface (``send(phone, text, purpose=…)``); two implementations:

- ``OutboxSmsSender`` (development, tests, demo): keeps each message in a Redis outbox shown at
  ``/dev/sms-outbox`` and logs it; production settings refuse it.
- ``HttpSmsSender``: a gateway reached by URL and key (``IDP_SMS_URL``, ``IDP_SMS_KEY``).

``SmsCode`` issues and checks codes: 6 digits, valid 5 minutes, resend after 60 seconds, at most
5 tries per code, bound to a purpose and a phone, a daily cap per phone.  Only a keyed hash of
the code is stored, in Redis under a keyed hash of the phone, so Redis holds neither.
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
from ...extensions import redis_store
from ..audit import events as audit
from ..identity import pii

log = logging.getLogger(__name__)

CODE_LENGTH = 6
CODE_TTL = 5 * 60
RESEND_AFTER = 60
MAX_TRIES = 5
CHINA = timezone(timedelta(hours=8))  # the daily cap follows the citizen's calendar day

PURPOSES: dict[str, str] = {
    "register": "注册",
    "recovery": "找回账号",
    "phone_change": "更换手机号",
    "profile": "变更用户信息",
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
    app = current_app
    sender = app.extensions.get("idp_sms")
    if sender is None:
        cfg = app.config
        if cfg["SMS_BACKEND"] == "http":
            sender = HttpSmsSender(cfg["SMS_URL"], cfg["SMS_KEY"], float(cfg["SMS_TIMEOUT"]))
        elif cfg["SMS_BACKEND"] == "outbox":
            sender = OutboxSmsSender()
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

    def _daily_key(self, phone: str) -> str:
        day = datetime.fromtimestamp(self.clock(), CHINA).strftime("%Y%m%d")
        return f"sms:daily:{self._phone_key(phone)}:{day}"

    def _digest(self, phone: str, code: str) -> str:
        key = current_app.config["SECRET_KEY"].encode()
        return hmac.new(key, f"sms|{self.purpose}|{phone}|{code}".encode(), hashlib.sha256).hexdigest()

    def send(self, phone: str, *, actor: str | None = None) -> SmsSent:
        """Issue a fresh code to ``phone`` (11 digits) and send it; the previous code of this
        purpose and phone stops working."""
        now = self.clock()
        cooldown = self._cooldown_key(phone)
        # the resend gate is taken atomically (SET NX): two parallel presses send one code
        if not redis_store.set(cooldown, str(now), nx=True, ex=RESEND_AFTER):
            last = float(redis_store.get(cooldown) or now)
            if now - last < RESEND_AFTER:
                raise SmsResendTooSoon(max(1, int(RESEND_AFTER - (now - last) + 0.999)))
            redis_store.set(cooldown, str(now), ex=RESEND_AFTER)  # outlived its window (clock skew)
        daily = self._daily_key(phone)
        pipe = redis_store.pipeline()
        pipe.incr(daily)
        pipe.expire(daily, 2 * 24 * 3600)
        count, _ = pipe.execute()
        if count > int(current_app.config["SMS_DAILY_CAP"]):
            redis_store.delete(cooldown)  # nothing was sent
            audit.record("sms.sent", "denied", actor=actor, purpose=self.purpose, reason="daily_cap")
            raise SmsDailyCapReached()
        code = "".join(secrets.choice("0123456789") for _ in range(CODE_LENGTH))
        record = {"digest": self._digest(phone, code), "expires_at": str(now + CODE_TTL), "tries": "0"}
        key = self._code_key(phone)
        pipe = redis_store.pipeline()
        pipe.delete(key)
        pipe.hset(key, mapping=record)
        pipe.expire(key, CODE_TTL + 60)
        pipe.execute()
        text = f"{SIGNATURE}您的{PURPOSES[self.purpose]}验证码为{code}，{CODE_TTL // 60}分钟内有效。请勿泄露给他人。"
        try:
            (self._sender or sms_sender()).send(phone, text, purpose=self.purpose)
        except SmsUnavailable:
            # nothing went out: the citizen may try again at once, and it costs no daily quota
            redis_store.delete(key, cooldown)
            redis_store.decr(daily)
            audit.record("sms.sent", "error", actor=actor, purpose=self.purpose, reason="gateway")
            raise
        audit.record("sms.sent", actor=actor, purpose=self.purpose)
        return SmsSent(phone, CODE_TTL, RESEND_AFTER)

    def verify(self, phone: str, code: str) -> None:
        """Accept the code once, or raise an ``SmsCodeInvalid`` subclass.  Every try counts
        before the comparison (so parallel guesses cannot exceed the limit); a right code is
        spent at once."""
        key = self._code_key(phone)
        pipe = redis_store.pipeline()  # one round trip; MULTI keeps the count and the read together
        pipe.hincrby(key, "tries", 1)
        pipe.hgetall(key)
        tries, stored = pipe.execute()
        if b"digest" not in stored:  # no code (never sent, expired, spent): drop the stray counter
            redis_store.delete(key)
            raise SmsCodeInvalid()
        if tries > MAX_TRIES:
            redis_store.delete(key)
            raise SmsCodeExhausted()
        if self.clock() > float(stored[b"expires_at"]):
            redis_store.delete(key)
            raise SmsCodeExpired()
        presented = (code or "").strip()
        if not (presented.isdigit() and len(presented) == CODE_LENGTH) or not hmac.compare_digest(
            stored[b"digest"].decode(), self._digest(phone, presented)
        ):
            if tries >= MAX_TRIES:
                redis_store.delete(key)
                raise SmsCodeExhausted()
            raise SmsCodeInvalid()
        if not redis_store.delete(key):
            raise SmsCodeInvalid()  # a parallel request spent it first

    def discard(self, phone: str) -> None:
        redis_store.delete(self._code_key(phone))
