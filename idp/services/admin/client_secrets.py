"""Client secrets: generated with 256 bits of entropy, stored as a keyed digest.

A slow password hash (argon2) protects low-entropy human passwords from guessing; a secret we
generate has 256 bits, so guessing is hopeless and a keyed HMAC-SHA256 compared in constant time
is the right tool — it costs microseconds on the token endpoint's hot path instead of tens of
milliseconds.  The key is derived from the personal-data master key (outside the database), so a
stolen database alone does not even allow offline checking of secrets.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timedelta, timezone

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

from ...models import Client

_SCHEME = "hs256$"


def _key() -> bytes:
    key = current_app.extensions.get("idp_client_secret_key")
    if key is None:
        master = current_app.extensions["idp_pii"].master_key
        key = HKDF(hashes.SHA256(), 32, None, b"idp client secret digest").derive(master)
        current_app.extensions["idp_client_secret_key"] = key
    return key


def new_client_secret() -> str:
    return secrets.token_urlsafe(32)


def digest_client_secret(secret: str) -> str:
    return _SCHEME + hmac.new(_key(), secret.encode(), "sha256").hexdigest()


def verify_client_secret(client: Client, secret: str | None) -> bool:
    if not secret:
        return False
    candidate = digest_client_secret(secret)
    if client.secret_digest and hmac.compare_digest(candidate, client.secret_digest):
        return True
    expires = client.previous_secret_expires_at
    if client.previous_secret_digest and expires and expires > datetime.now(timezone.utc):
        return hmac.compare_digest(candidate, client.previous_secret_digest)
    return False


def set_client_secret(client: Client, *, overlap: timedelta | None = None) -> str:
    """Give the client a new secret and return it (shown once).  With ``overlap`` the old
    secret keeps working for that long so the relying system can be redeployed."""
    secret = new_client_secret()
    if overlap and client.secret_digest:
        client.previous_secret_digest = client.secret_digest
        client.previous_secret_expires_at = datetime.now(timezone.utc) + overlap
    else:
        client.previous_secret_digest = None
        client.previous_secret_expires_at = None
    client.secret_digest = digest_client_secret(secret)
    return secret
