"""Encryption of personal data at rest (PIPL, MLPS level 3).

ID numbers, bank card numbers and phones are stored as authenticated ciphertext plus a keyed
hash for exact-match lookups (unique constraints, search by an operator).  Two ciphers:

- ``aes`` (default): AES-256-GCM, lookups HMAC-SHA256;
- ``sm4`` (national cryptography): SM4-GCM, lookups HMAC-SM3.

Both subkeys are derived with HKDF from one 32-byte master key kept outside the database
(``IDP_PII_KEY`` or ``keys/pii.key``).  A ciphertext starts with a one-byte cipher tag so a
database can hold both while it is being migrated.  The field name is bound in as associated
data: a phone ciphertext cannot be passed off as an ID number.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Flask, current_app

_TAG_AES = b"\x01"
_TAG_SM4 = b"\x02"
_NONCE = 12
_GCM_TAG = 16


class PersonalDataKeyError(RuntimeError):
    pass


def _derive(master: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(master)


@dataclass(frozen=True)
class PersonalDataCipher:
    master_key: bytes
    cipher: str = "aes"

    def __post_init__(self) -> None:
        if len(self.master_key) != 32:
            raise PersonalDataKeyError("the personal-data key must be 32 bytes")
        if self.cipher not in ("aes", "sm4"):
            raise PersonalDataKeyError("IDP_PII_CIPHER must be aes or sm4")
        # derived once: HKDF per call would sit on every registration and lookup
        object.__setattr__(self, "_aes_key", _derive(self.master_key, b"idp pii aes-256-gcm", 32))
        object.__setattr__(self, "_sm4_key", _derive(self.master_key, b"idp pii sm4-gcm", 16))
        object.__setattr__(
            self, "_lookup_key", _derive(self.master_key, b"idp pii lookup " + self.cipher.encode(), 32)
        )
        object.__setattr__(self, "_pairwise_key", _derive(self.master_key, b"idp pairwise subject", 32))

    # -- API ------------------------------------------------------------------------------------
    def encrypt(self, field: str, value: str) -> bytes:
        nonce = secrets.token_bytes(_NONCE)
        data = value.encode("utf-8")
        aad = field.encode()
        if self.cipher == "sm4":
            enc = Cipher(algorithms.SM4(self._sm4_key), modes.GCM(nonce)).encryptor()
            enc.authenticate_additional_data(aad)
            body = enc.update(data) + enc.finalize() + enc.tag
            return _TAG_SM4 + nonce + body
        return _TAG_AES + nonce + AESGCM(self._aes_key).encrypt(nonce, data, aad)

    def decrypt(self, field: str, blob: bytes) -> str:
        tag, nonce, body = blob[:1], blob[1 : 1 + _NONCE], blob[1 + _NONCE :]
        aad = field.encode()
        if tag == _TAG_SM4:
            dec = Cipher(
                algorithms.SM4(self._sm4_key), modes.GCM(nonce, body[-_GCM_TAG:])
            ).decryptor()
            dec.authenticate_additional_data(aad)
            data = dec.update(body[:-_GCM_TAG]) + dec.finalize()
        elif tag == _TAG_AES:
            data = AESGCM(self._aes_key).decrypt(nonce, body, aad)
        else:
            raise PersonalDataKeyError("unknown ciphertext format")
        return data.decode("utf-8")

    def lookup_hash(self, field: str, value: str) -> str:
        """A keyed hash for exact-match lookups: equal values give equal hashes, nothing else."""
        algorithm = hashes.SM3() if self.cipher == "sm4" else hashes.SHA256()
        mac = hmac.HMAC(self._lookup_key, algorithm)
        mac.update(field.encode() + b"\x00" + normalise(field, value).encode("utf-8"))
        return mac.finalize().hex()

    def pairwise_subject(self, sector: str, public_sub: str) -> str:
        """OpenID Connect Core 8.1: one person's sub as a sector sees it.  HMAC-SHA-256 whatever
        the field cipher: switching IDP_PII_CIPHER must not change the subs relying systems hold."""
        mac = hmac.HMAC(self._pairwise_key, hashes.SHA256())
        mac.update(sector.lower().encode() + b"\x00" + public_sub.encode())
        return base64.urlsafe_b64encode(mac.finalize()).rstrip(b"=").decode()


def normalise(field: str, value: str) -> str:
    value = value.strip()
    if field in ("id_number",):
        return value.upper()
    if field in ("phone", "card"):
        return "".join(ch for ch in value if ch.isdigit())
    return value


def init_app(app: Flask) -> None:
    raw = app.config.get("PII_KEY") or ""
    if raw:
        key = _parse_key(raw)
    elif app.config.get("ENV_NAME") == "production":
        # a key generated on one node's disk would differ per node and vanish with it, leaving
        # every ciphertext unreadable: production takes the key from its key store, or stops
        raise PersonalDataKeyError("IDP_PII_KEY is required in production (32 bytes, hex or base64)")
    else:
        path = Path(app.config["KEYS_DIR"]) / "pii.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32) + "\n")
        key = _parse_key(path.read_text().strip())
    app.extensions["idp_pii"] = PersonalDataCipher(key, app.config.get("PII_CIPHER", "aes"))


def _parse_key(raw: str) -> bytes:
    try:
        if len(raw) == 64:
            return bytes.fromhex(raw)
        return base64.b64decode(raw, validate=True)
    except (ValueError, binascii.Error):
        raise PersonalDataKeyError("IDP_PII_KEY must be 32 bytes in hex or base64") from None


def cipher() -> PersonalDataCipher:
    return current_app.extensions["idp_pii"]


# -- masking for display ------------------------------------------------------------------------
def mask_id_number(value: str) -> str:
    if len(value) <= 6:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_phone(value: str) -> str:
    digits = normalise("phone", value)
    return digits[:3] + "****" + digits[-4:] if len(digits) >= 7 else "*" * len(digits)


def mask_card(last4: str | None) -> str:
    return f"**** **** **** {last4}" if last4 else ""


def mask_name(value: str) -> str:
    chars = list(value)
    if len(chars) <= 1:
        return value
    return chars[0] + "*" * (len(chars) - 1)
