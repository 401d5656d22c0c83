"""The service's own secrets (Flask secret, data key) and sealing of stored ID tokens.

An ID token from the platform carries every claim granted, the full ID number included, and the
service must keep it for the ``id_token_hint`` of RP-initiated logout; so it is stored sealed with
AES-256-GCM under a key kept outside the database.  Development generates both secrets into
``keys/exam/``; production refuses to start without ``EXAM_SECRET_KEY`` and ``EXAM_DATA_KEY``.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Flask, current_app

from .config import ExamConfigError

_AAD = b"exam-service id_token v1"


class SealBroken(Exception):
    """A sealed value was altered or sealed under another key."""


class TokenSeal:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ExamConfigError("EXAM_DATA_KEY must be 32 bytes (64 hex characters or base64)")
        self._aead = AESGCM(key)

    def seal(self, plaintext: str) -> str:
        nonce = os.urandom(12)
        return base64.urlsafe_b64encode(nonce + self._aead.encrypt(nonce, plaintext.encode(), _AAD)).decode()

    def open(self, sealed: str) -> str:
        try:
            raw = base64.urlsafe_b64decode(sealed.encode())
            return self._aead.decrypt(raw[:12], raw[12:], _AAD).decode()
        except (InvalidTag, ValueError, binascii.Error) as exc:
            raise SealBroken() from exc


def seal() -> TokenSeal:
    return current_app.extensions["exam_seal"]


def init_app(app: Flask) -> None:
    keys_dir = Path(app.config["KEYS_DIR"])
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _generated_secret(keys_dir / "secret.key", lambda: secrets.token_urlsafe(48))
    raw = app.config.get("DATA_KEY") or _generated_secret(keys_dir / "data.key", lambda: secrets.token_hex(32))
    app.extensions["exam_seal"] = TokenSeal(_parse_key(raw))


def _parse_key(raw: str) -> bytes:
    raw = raw.strip()
    try:
        return bytes.fromhex(raw) if len(raw) == 64 else base64.b64decode(raw, validate=True)
    except (ValueError, binascii.Error):
        raise ExamConfigError("EXAM_DATA_KEY must be 32 bytes, hex or base64") from None


def _generated_secret(path: Path, make) -> str:
    """A development secret in a file readable only by this user, created once (race-safe)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(make())
    return path.read_text().strip()
