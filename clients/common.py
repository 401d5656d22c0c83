"""What the relying systems' settings have in common.

Each relying system knows the platform only by its issuer URL (the rest comes from discovery)
and by the credentials it was given when it was registered there; every setting can be
overridden by a ``<PREFIX>_<NAME>`` variable.  A system subclasses ``ClientConfig`` with its
prefix, its error class and its own settings, and gets the reading of the environment, the URIs
registered at the platform, the cookie settings, the checks every system needs and
``load_config``.  Nothing here comes from ``idp/``: the relying systems stand apart from it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class ClientConfigError(RuntimeError):
    """A setting is missing or unsafe; the message says which and how to fix it."""


class ClientConfig:
    prefix = ""  # of the environment variables: EXAM, UNITPORTAL
    label = ""  # the system in messages: "exam service"
    register_hint = ""  # how the system gets its CLIENT_ID (the ``idp clients add`` command)
    error: type[ClientConfigError] = ClientConfigError

    ENV_NAME = "base"

    ISSUER = "http://127.0.0.1:5000"  # discovery at {ISSUER}/.well-known/openid-configuration
    CLIENT_ID = ""
    CLIENT_SECRET = ""
    HTTP_TIMEOUT = 5.0  # seconds, for every call to the platform
    BASE_URL = ""  # public URL; the redirect and logout URIs are built from it
    SECRET_KEY = ""
    SECURE_COOKIES = False

    def __init__(self, **overrides: Any) -> None:
        for name in dir(self):
            if not name.isupper():
                continue
            env = os.environ.get(f"{self.prefix}_{name}")
            if env is not None:
                setattr(self, name, self._coerce(env, getattr(self, name), name))
        for name, value in overrides.items():
            if not name.isupper():
                raise self.error(f"unknown setting {name!r}")
            setattr(self, name, value)
        self.ISSUER = self.ISSUER.rstrip("/")
        self.BASE_URL = self.BASE_URL.rstrip("/")

    # the URIs registered for this system at the platform
    @property
    def redirect_uri(self) -> str:
        return f"{self.BASE_URL}/auth/callback"

    @property
    def post_logout_redirect_uri(self) -> str:
        return f"{self.BASE_URL}/logged-out"

    @property
    def session_lifetime(self) -> int:
        raise NotImplementedError

    def as_flask_config(self) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in dir(self) if name.isupper()}
        values.update({
            f"{self.prefix}_ENV": self.ENV_NAME,
            "REDIRECT_URI": self.redirect_uri,
            "POST_LOGOUT_REDIRECT_URI": self.post_logout_redirect_uri,
            # the systems may share a host name in development: cookies ignore ports
            "SESSION_COOKIE_NAME": f"{self.prefix.lower()}_session",
            "SESSION_COOKIE_SECURE": self.SECURE_COOKIES,
            "SESSION_COOKIE_HTTPONLY": True,
            "SESSION_COOKIE_SAMESITE": "Lax",
            "PERMANENT_SESSION_LIFETIME": self.session_lifetime,
            "WTF_CSRF_TIME_LIMIT": None,
        })
        return values

    def validate(self) -> None:
        problems = []
        if not self.CLIENT_ID:
            problems.append(f"{self.prefix}_CLIENT_ID is not set: {self.register_hint}")
        for name in ("ISSUER", "BASE_URL"):
            parts = urlsplit(getattr(self, name))
            if parts.scheme not in ("http", "https") or not parts.netloc:
                problems.append(f"{self.prefix}_{name} must be an absolute http(s) URL")
        if problems:
            raise self.error(f"{self.label} settings refused:\n  - " + "\n  - ".join(problems))

    def production_problems(self) -> list[str]:
        """What a production configuration of any system must not lack."""
        problems = []
        if not self.CLIENT_SECRET:
            problems.append(f"{self.prefix}_CLIENT_SECRET must be set (the secret the platform showed once)")
        for name in ("ISSUER", "BASE_URL"):
            if not getattr(self, name).startswith("https://"):
                problems.append(f"{self.prefix}_{name} must be an https:// URL")
        if len(self.SECRET_KEY) < 32:
            problems.append(f"{self.prefix}_SECRET_KEY must be set to at least 32 random characters")
        return problems

    def refuse_for_production(self, problems: list[str]) -> None:
        if problems:
            raise self.error("production settings refused:\n  - " + "\n  - ".join(problems))

    def _coerce(self, raw: str, default: Any, name: str) -> Any:
        if isinstance(default, bool):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off", ""):
                return False
            raise self.error(f"{self.prefix}_{name} must be true or false, not {raw!r}")
        try:
            if isinstance(default, int):
                return int(raw)
            if isinstance(default, float):
                return float(raw)
        except ValueError:
            raise self.error(f"{self.prefix}_{name} must be a number, not {raw!r}") from None
        return raw


C = TypeVar("C", bound=ClientConfig)


def load_config(configs: dict[str, type[C]], name: str | None = None, **overrides: Any) -> C:
    """The configuration called ``name`` (default: the ``<PREFIX>_ENV`` variable, else
    development), with the environment and ``overrides`` applied, checked."""
    base = next(iter(configs.values()))
    name = name or os.environ.get(f"{base.prefix}_ENV", "development")
    try:
        cls = configs[name]
    except KeyError:
        raise base.error(f"{base.prefix}_ENV={name!r}: choose one of {', '.join(configs)}") from None
    config = cls(**overrides)
    config.validate()
    return config
