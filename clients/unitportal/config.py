"""Settings of 单位网上办事, every value overridable by a ``UNITPORTAL_<NAME>`` variable.

Like the exam service it knows the platform only by its issuer URL (the rest comes from
discovery) and by the credentials it was given when it was registered there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class UnitPortalConfigError(RuntimeError):
    """A setting is missing or unsafe; the message says which."""


class UnitPortalConfig:
    ENV_NAME = "base"

    ISSUER = "http://127.0.0.1:5000"
    CLIENT_ID = ""
    CLIENT_SECRET = ""
    SCOPE = "openid unit"  # the unit's name, code and type, and its handler's name
    HTTP_TIMEOUT = 5.0  # seconds, for every call to the platform
    BASE_URL = "http://127.0.0.1:5200"  # public URL; the redirect and post-logout URIs are built from it
    SECRET_KEY = ""  # empty: a random key per start (development only; sessions end with the process)
    SESSION_DIR = str(PROJECT_ROOT / "instance" / "unitportal-sessions")  # server-side sessions
    SESSION_LIFETIME = 8 * 3600
    SECURE_COOKIES = False

    def __init__(self, **overrides: Any) -> None:
        for name in dir(self):
            if name.isupper() and (env := os.environ.get(f"UNITPORTAL_{name}")) is not None:
                default = getattr(self, name)
                try:
                    value: Any = type(default)(env) if isinstance(default, (int, float)) else env
                except ValueError:
                    raise UnitPortalConfigError(f"UNITPORTAL_{name} must be a number, not {env!r}") from None
                if isinstance(default, bool):
                    value = env.lower() in ("1", "true", "yes", "on")
                setattr(self, name, value)
        for name, value in overrides.items():
            if not name.isupper():
                raise UnitPortalConfigError(f"unknown setting {name!r}")
            setattr(self, name, value)
        self.ISSUER = self.ISSUER.rstrip("/")
        self.BASE_URL = self.BASE_URL.rstrip("/")

    @property
    def redirect_uri(self) -> str:
        return f"{self.BASE_URL}/auth/callback"

    @property
    def post_logout_redirect_uri(self) -> str:
        return f"{self.BASE_URL}/logged-out"

    def as_flask_config(self) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in dir(self) if name.isupper()}
        values.update(
            UNITPORTAL_ENV=self.ENV_NAME,
            REDIRECT_URI=self.redirect_uri,
            POST_LOGOUT_REDIRECT_URI=self.post_logout_redirect_uri,
            SESSION_COOKIE_NAME="unitportal_session",  # beside the exam service's on one host
            SESSION_COOKIE_SECURE=self.SECURE_COOKIES,
            SESSION_COOKIE_HTTPONLY=True,
            SESSION_COOKIE_SAMESITE="Lax",
            PERMANENT_SESSION_LIFETIME=self.SESSION_LIFETIME,
            WTF_CSRF_TIME_LIMIT=None,
        )
        return values

    def validate(self) -> None:
        problems = []
        if not self.CLIENT_ID:
            problems.append("UNITPORTAL_CLIENT_ID is not set: register the portal at the platform first "
                            "(idp clients add --name 单位网上办事 --user-types unit --scope 'openid unit' ...)")
        for name in ("ISSUER", "BASE_URL"):
            parts = urlsplit(getattr(self, name))
            if parts.scheme not in ("http", "https") or not parts.netloc:
                problems.append(f"UNITPORTAL_{name} must be an absolute http(s) URL")
        if problems:
            raise UnitPortalConfigError("unit portal settings refused:\n  - " + "\n  - ".join(problems))


class DevelopmentConfig(UnitPortalConfig):
    ENV_NAME = "development"


class TestingConfig(UnitPortalConfig):
    ENV_NAME = "testing"
    TESTING = True
    SECRET_KEY = "unitportal-testing-secret-key-not-for-production"


class ProductionConfig(UnitPortalConfig):
    ENV_NAME = "production"
    SECURE_COOKIES = True

    def validate(self) -> None:
        super().validate()
        problems = []
        if not self.CLIENT_SECRET:
            problems.append("UNITPORTAL_CLIENT_SECRET must be set (the secret the platform showed once)")
        if len(self.SECRET_KEY) < 32:
            problems.append("UNITPORTAL_SECRET_KEY must be set to at least 32 random characters")
        for name in ("ISSUER", "BASE_URL"):
            if not getattr(self, name).startswith("https://"):
                problems.append(f"UNITPORTAL_{name} must be an https:// URL")
        if problems:
            raise UnitPortalConfigError("production settings refused:\n  - " + "\n  - ".join(problems))


CONFIGS: dict[str, type[UnitPortalConfig]] = {
    "development": DevelopmentConfig, "testing": TestingConfig, "production": ProductionConfig,
}


def load_config(name: str | None = None, **overrides: Any) -> UnitPortalConfig:
    name = name or os.environ.get("UNITPORTAL_ENV", "development")
    try:
        config = CONFIGS[name](**overrides)
    except KeyError:
        raise UnitPortalConfigError(f"UNITPORTAL_ENV={name!r}: choose one of {', '.join(CONFIGS)}") from None
    config.validate()
    return config
