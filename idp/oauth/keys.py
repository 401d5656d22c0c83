"""Signing keys: generated into ``keys/signing/``, published in the JWKS with a ``kid``.

``rotate()`` adds a new current key and retires the old one; a retired key stays published
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
from joserfc.jwk import ECKey, RSAKey

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

    def keys(self) -> list[SigningKey]:
        self._refresh()
        return list(self._keys)

    def current(self) -> SigningKey:
        self._refresh()
        for key in reversed(self._keys):
            if key.retired_at is None:
                return key
        raise RuntimeError("no current signing key: run `idp keys rotate`")

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
    def ensure(self, alg: str = "RS256") -> SigningKey:
        """The current key, generating the first one if there is none.  Several workers starting
        at once take a file lock, so exactly one of them generates it."""
        if self.index_path.exists():
            return self.current()
        import fcntl

        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not self.index_path.exists():
                return self.rotate(alg)
        self._mtime = None
        return self.current()

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
            if not entry.get("retired_at"):
                entry["retired_at"] = now.isoformat()
        entries.append({"kid": kid, "alg": alg, "created_at": now.isoformat(), "retired_at": None})
        tmp = self.index_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(entries, indent=2))
        tmp.replace(self.index_path)  # atomic: other processes see the old or the new index
        self._mtime = None
        self._refresh()
        return self.current()


def init_app(app: Flask, *, generate: bool = False) -> None:
    cfg = app.config
    longest = max(cfg["ID_TOKEN_LIFETIME"], cfg["ACCESS_TOKEN_LIFETIME"], 3600)
    store = KeyStore(Path(cfg["KEYS_DIR"]) / "signing", timedelta(seconds=longest),
                     recheck_seconds=cfg["SIGNING_KEYS_RECHECK_SECONDS"])
    if generate:
        store.ensure(cfg["SIGNING_ALG"])  # first start: create the signing key
    app.extensions["idp_keys"] = store


def key_store() -> KeyStore:
    return current_app.extensions["idp_keys"]
