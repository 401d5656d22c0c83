"""Signing keys: generated into ``keys/signing/``, published in the JWKS with a ``kid``.

There is one current key per algorithm (an RSA key for RS256, an EC P-256 key for ES256), both
published: access tokens are signed with ``IDP_ACCESS_TOKEN_ALG``, ID tokens with the algorithm
the relying system registered (RS256 when it registered none).

``rotate(alg)`` adds a new current key of that algorithm and retires the old one; a retired key stays published
until every token it signed has expired (retired_at + the longest JWT lifetime), then it drops
out of the JWKS.  Parsed keys and the JWKS document are cached in memory; a cheap ``stat`` of
the index every few seconds picks up a rotation made by another process (``idp keys rotate``).
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from flask import Flask, current_app
from joserfc.jwk import ECKey, KeySet, RSAKey

SUPPORTED_ALGS = ("RS256", "ES256")


@dataclass
class SigningKey:
    kid: str
    alg: str
    created_at: datetime
    retired_at: datetime | None
    key: RSAKey | ECKey

    def status(self, publish_for: timedelta, now: datetime) -> str:
        if self.retired_at is None:
            return "current"
        if self.retired_at + publish_for > now:
            return "published"
        return "expired"


def _generate(alg: str) -> RSAKey | ECKey:
    if alg == "RS256":
        return RSAKey.generate_key(2048, private=True)
    if alg == "ES256":
        return ECKey.generate_key("P-256", private=True)
    raise ValueError(f"unsupported signing algorithm {alg!r}; choose {', '.join(SUPPORTED_ALGS)}")


class KeyStore:
    def __init__(self, directory: Path, publish_for: timedelta, recheck_seconds: float = 5.0) -> None:
        self.directory = directory
        self.publish_for = publish_for
        #: how often the index is stat'ed: the longest a process signs with a replaced key
        self.recheck_seconds = recheck_seconds
        self._lock = threading.Lock()
        self._keys: list[SigningKey] = []
        self._mtime: float | None = None
        self._checked = 0.0
        self._jwks: dict | None = None
        self._key_sets: dict[str, KeySet] = {}

    @property
    def index_path(self) -> Path:
        return self.directory / "keys.json"

    # -- loading ---------------------------------------------------------------------------------
    def _refresh(self) -> None:
        now = time.monotonic()
        if self._mtime is not None and now - self._checked < self.recheck_seconds:
            return
        with self._lock:
            self._checked = now
            try:
                mtime = self.index_path.stat().st_mtime
            except FileNotFoundError:
                raise RuntimeError(
                    f"no signing keys in {self.directory}: run `idp init` (or `idp keys rotate`)"
                ) from None
            if mtime == self._mtime:
                return
            entries = json.loads(self.index_path.read_text())
            keys = []
            for entry in entries:
                pem = (self.directory / f"{entry['kid']}.pem").read_bytes()
                cls = RSAKey if entry["alg"] == "RS256" else ECKey
                keys.append(
                    SigningKey(
                        kid=entry["kid"],
                        alg=entry["alg"],
                        created_at=datetime.fromisoformat(entry["created_at"]),
                        retired_at=datetime.fromisoformat(entry["retired_at"]) if entry.get("retired_at") else None,
                        key=cls.import_key(pem, {"kid": entry["kid"], "alg": entry["alg"], "use": "sig"}),
                    )
                )
            self._keys = keys
            self._mtime = mtime
            self._jwks = None
            self._key_sets = {}

    def keys(self) -> list[SigningKey]:
        self._refresh()
        return list(self._keys)

    def current(self, alg: str = "RS256") -> SigningKey:
        """The key that signs with ``alg`` now."""
        self._refresh()
        for key in reversed(self._keys):
            if key.retired_at is None and key.alg == alg:
                return key
        raise RuntimeError(f"no current {alg} signing key: run `idp keys rotate --alg {alg}`")

    def signing_set(self, alg: str) -> KeySet:
        """The current key of ``alg`` alone, as a key set (what Authlib's JWT access token
        generator signs with; joserfc writes its ``kid`` into the header).  Built once per key
        change."""
        self._refresh()
        name = f"sign:{alg}"
        if name not in self._key_sets:
            self._key_sets[name] = KeySet([self.current(alg).key])
        return self._key_sets[name]

    def verification_set(self) -> KeySet:
        """Every published key (the JWKS, with the private halves): tokens are verified by
        ``kid``, and a key only verifies the algorithm it was made for."""
        self._refresh()
        if "verify" not in self._key_sets:
            self._key_sets["verify"] = KeySet([k.key for k in self.published()])
        return self._key_sets["verify"]

    def find(self, kid: str | None) -> SigningKey | None:
        self._refresh()
        for key in self._keys:
            if key.kid == kid:
                return key
        return None

    def published(self) -> list[SigningKey]:
        now = datetime.now(timezone.utc)
        return [k for k in self.keys() if k.status(self.publish_for, now) != "expired"]

    def jwks(self) -> dict:
        self._refresh()
        if self._jwks is None:
            self._jwks = {
                "keys": [
                    {**k.key.as_dict(private=False), "kid": k.kid, "alg": k.alg, "use": "sig"}
                    for k in self.published()
                ]
            }
        return self._jwks

    # -- changing ----------------------------------------------------------------------------------
    def _missing(self, algs: tuple[str, ...]) -> list[str]:
        if not self.index_path.exists():
            return list(algs)
        self._mtime = None
        self._refresh()
        have = {k.alg for k in self._keys if k.retired_at is None}
        return [alg for alg in algs if alg not in have]

    def ensure(self, algs: tuple[str, ...] = SUPPORTED_ALGS) -> None:
        """A current key for each algorithm, generating those missing (the first start, or a
        key store made before ES256 keys were kept).  Several workers starting at once take a
        file lock, so exactly one of them generates each."""
        if not self._missing(algs):
            return
        import fcntl

        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            for alg in self._missing(algs):
                self.rotate(alg)
        self._mtime = None

    def rotate(self, alg: str = "RS256") -> SigningKey:
        key = _generate(alg)
        kid = key.thumbprint()[:16]
        now = datetime.now(timezone.utc)
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        pem_path = self.directory / f"{kid}.pem"
        fd = os.open(pem_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key.as_pem(private=True))
        entries = json.loads(self.index_path.read_text()) if self.index_path.exists() else []
        for entry in entries:
            if not entry.get("retired_at") and entry["alg"] == alg:
                entry["retired_at"] = now.isoformat()
        entries.append({"kid": kid, "alg": alg, "created_at": now.isoformat(), "retired_at": None})
        tmp = self.index_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(entries, indent=2))
        tmp.replace(self.index_path)  # atomic: other processes see the old or the new index
        self._mtime = None
        self._refresh()
        return self.current(alg)


def init_app(app: Flask, *, generate: bool = False) -> None:
    cfg = app.config
    longest = max(cfg["ID_TOKEN_LIFETIME"], cfg["ACCESS_TOKEN_LIFETIME"], 3600)
    store = KeyStore(Path(cfg["KEYS_DIR"]) / "signing", timedelta(seconds=longest),
                     recheck_seconds=cfg["SIGNING_KEYS_RECHECK_SECONDS"])
    if generate:
        store.ensure()  # first start: create the signing keys
    app.extensions["idp_keys"] = store


def key_store() -> KeyStore:
    return current_app.extensions["idp_keys"]


def access_token_alg() -> str:
    return current_app.config["ACCESS_TOKEN_ALG"]


def id_token_alg(client) -> str:
    """The algorithm the relying system registered for its ID tokens, RS256 by default."""
    return getattr(client, "id_token_signed_response_alg", None) or "RS256"
