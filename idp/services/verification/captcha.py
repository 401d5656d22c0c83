"""Image captchas: generated server-side, single-use, expiring, kept in Redis."""

from __future__ import annotations

import hmac
import secrets
from io import BytesIO

from captcha.image import ImageCaptcha
from flask import current_app

from ...extensions import redis_store

# no look-alikes (0/O, 1/I/L) so citizens on phones are not failed by the font
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXY3456789"
_PREFIX = "captcha:"


def issue_captcha() -> str:
    """Create a challenge and return its id (the answer stays server-side)."""
    cfg = current_app.config
    answer = cfg["CAPTCHA_FIXED"] or "".join(
        secrets.choice(ALPHABET) for _ in range(cfg["CAPTCHA_LENGTH"])
    )
    captcha_id = secrets.token_urlsafe(16)
    redis_store.set(_PREFIX + captcha_id, answer, ex=cfg["CAPTCHA_TTL"])
    return captcha_id


def captcha_image(captcha_id: str) -> bytes | None:
    answer = redis_store.get(_PREFIX + captcha_id)
    if answer is None:
        return None
    image = ImageCaptcha(width=160, height=60).generate_image(answer.decode())
    out = BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def check_captcha(captcha_id: str | None, answer: str | None) -> bool:
    """True when the answer is right.  The challenge is spent either way: single use."""
    if not captcha_id or not answer:
        return False
    stored = redis_store.getdel(_PREFIX + captcha_id)
    if stored is None:
        return False
    return hmac.compare_digest(stored.decode().upper(), answer.strip().upper())
