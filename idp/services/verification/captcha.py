"""Captchas: generated server-side, single-use, expiring, kept in Redis.

One challenge has two renderings: the image, and a WAV that reads the same characters aloud (the
``captcha`` package's audio captcha, with the voices it ships: digits and letters spoken by their
English names, as Latin letters are read in China too) for citizens who cannot read the image.
One answer for both means the 语音验证码 needs no second challenge, no other form field and no
JavaScript; the alphabet (``CAPTCHA_ALPHABET``) leaves out characters that look *or* sound
alike, so neither rendering is a trap.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from io import BytesIO

from captcha.audio import AudioCaptcha
from captcha.image import ImageCaptcha
from flask import current_app

from ...extensions import redis_store

_PREFIX = "captcha:"
_audio: AudioCaptcha | None = None
_audio_lock = threading.Lock()


def alphabet() -> str:
    return current_app.config["CAPTCHA_ALPHABET"].upper()


def issue_captcha() -> str:
    """Create a challenge and return its id (the answer stays server-side)."""
    cfg = current_app.config
    letters = alphabet()
    answer = cfg["CAPTCHA_FIXED"] or "".join(secrets.choice(letters) for _ in range(cfg["CAPTCHA_LENGTH"]))
    captcha_id = secrets.token_urlsafe(16)
    redis_store.set(_PREFIX + captcha_id, answer, ex=cfg["CAPTCHA_TTL"])
    return captcha_id


def _answer(captcha_id: str) -> str | None:
    answer = redis_store.get(_PREFIX + captcha_id)
    return answer.decode() if answer is not None else None


def captcha_image(captcha_id: str) -> bytes | None:
    answer = _answer(captcha_id)
    if answer is None:
        return None
    image = ImageCaptcha(width=160, height=60).generate_image(answer)
    out = BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def captcha_audio(captcha_id: str) -> bytes | None:
    """The same challenge read aloud (8 kHz mono WAV, each character twisted and over noise made of
    other voices, so speech recognition is no easier than reading the image)."""
    answer = _answer(captcha_id)
    if answer is None:
        return None
    return bytes(_voices().generate(answer.upper()))


def _voices() -> AudioCaptcha:
    global _audio
    with _audio_lock:  # loading reads every voice file once per process
        if _audio is None:
            _audio = AudioCaptcha()
            _audio.load()
        return _audio


def check_captcha(captcha_id: str | None, answer: str | None) -> bool:
    """True when the answer is right.  The challenge is spent either way: single use."""
    if not captcha_id or not answer:
        return False
    stored = redis_store.getdel(_PREFIX + captcha_id)
    if stored is None:
        return False
    return hmac.compare_digest(stored.decode().upper(), answer.strip().upper())
