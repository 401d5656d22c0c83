"""Settings of the exam candidate service, every value overridable by an ``EXAM_<NAME>`` variable.

The service knows the platform only by its issuer URL (everything else comes from discovery) and
by the client credentials it was given when it was registered there (``idp clients add``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class ExamConfigError(RuntimeError):
    """A setting is missing or unsafe; the message says which and how to fix it."""


class ExamConfig:
    ENV_NAME = "base"

    # -- the platform (OpenID Provider) and our registration there --------------------------------
    ISSUER = "http://127.0.0.1:5000"  # discovery at {ISSUER}/.well-known/openid-configuration
    CLIENT_ID = ""
    CLIENT_SECRET = ""
    SCOPE = "openid profile phone realname"  # realname is granted only if an administrator allowed it
    HTTP_TIMEOUT = 5.0  # seconds, for every call to the platform

    # -- the platform's pages we link to (empty: derived from ISSUER) ---------------------------
    ACCOUNT_URL = ""  # 用户信息维护: {ISSUER}/account/
    PASSWORD_URL = ""  # 修改密码: {ISSUER}/account/password (the platform asks for a login only if needed)

    # -- where candidates turn (注册指南 / 常见问题, the footer); one contact per line -----------------
    CONTACTS = ("联系电话：(0755)12333，(0755)88100099\n"
                "电子邮箱：ksykwb@szhrss.gov.cn，来邮时请在邮件中注明姓名、身份证号和事由")

    # -- this service -----------------------------------------------------------------------------
    BASE_URL = "http://127.0.0.1:5100"  # public URL; the redirect and logout URIs are built from it
    DATABASE_URL = f"sqlite:///{PROJECT_ROOT / 'instance' / 'exam.sqlite'}"
    KEYS_DIR = str(PROJECT_ROOT / "keys" / "exam")
    SECRET_KEY = ""  # empty: keys/exam/secret.key, generated (development only)
    DATA_KEY = ""  # 32 bytes, hex or base64: seals stored ID tokens; empty: keys/exam/data.key
    SESSION_IDLE_TIMEOUT = 30 * 60
    SESSION_ABSOLUTE_LIFETIME = 8 * 3600
    SECURE_COOKIES = False
    TRUSTED_PROXIES = 0
    LOG_LEVEL = "INFO"

    def __init__(self, **overrides: Any) -> None:
        for name in dir(self):
            if not name.isupper():
                continue
            env = os.environ.get(f"EXAM_{name}")
            if env is not None:
                setattr(self, name, _coerce(env, getattr(self, name), name))
        for name, value in overrides.items():
            if not name.isupper():
                raise ExamConfigError(f"unknown setting {name!r}")
            setattr(self, name, value)
        self.ISSUER = self.ISSUER.rstrip("/")
        self.BASE_URL = self.BASE_URL.rstrip("/")
        self.ACCOUNT_URL = self.ACCOUNT_URL or f"{self.ISSUER}/account/"
        self.PASSWORD_URL = self.PASSWORD_URL or f"{self.ISSUER}/account/password"

    # the URIs registered for this service at the platform
    @property
    def redirect_uri(self) -> str:
        return f"{self.BASE_URL}/auth/callback"

    @property
    def post_logout_redirect_uri(self) -> str:
        return f"{self.BASE_URL}/logged-out"

    @property
    def backchannel_logout_uri(self) -> str:
        return f"{self.BASE_URL}/backchannel-logout"

    def as_flask_config(self) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in dir(self) if name.isupper()}
        values.update(
            EXAM_ENV=self.ENV_NAME,
            REDIRECT_URI=self.redirect_uri,
            POST_LOGOUT_REDIRECT_URI=self.post_logout_redirect_uri,
            BACKCHANNEL_LOGOUT_URI=self.backchannel_logout_uri,
            SQLALCHEMY_DATABASE_URI=self.DATABASE_URL,
            SQLALCHEMY_ENGINE_OPTIONS=_engine_options(self.DATABASE_URL),
            # both services may share a host name in development: cookies ignore ports
            SESSION_COOKIE_NAME="exam_session",
            SESSION_COOKIE_SECURE=self.SECURE_COOKIES,
            SESSION_COOKIE_HTTPONLY=True,
            SESSION_COOKIE_SAMESITE="Lax",
            PERMANENT_SESSION_LIFETIME=self.SESSION_ABSOLUTE_LIFETIME,
            WTF_CSRF_TIME_LIMIT=None,
        )
        return values

    def validate(self) -> None:
        problems = []
        if not self.CLIENT_ID:
            problems.append("EXAM_CLIENT_ID is not set: register the service at the platform first "
                            "(idp clients add --name 考生服务系统 --first-party ...)")
        for name in ("ISSUER", "BASE_URL"):
            parts = urlsplit(getattr(self, name))
            if parts.scheme not in ("http", "https") or not parts.netloc:
                problems.append(f"EXAM_{name} must be an absolute http(s) URL")
        if problems:
            raise ExamConfigError("exam service settings refused:\n  - " + "\n  - ".join(problems))


class DevelopmentConfig(ExamConfig):
    ENV_NAME = "development"


class TestingConfig(ExamConfig):
    ENV_NAME = "testing"
    TESTING = True
    DATABASE_URL = "sqlite://"
    SECRET_KEY = "exam-testing-secret-key-not-for-production"
    DATA_KEY = "22" * 32


class ProductionConfig(ExamConfig):
    ENV_NAME = "production"
    SECURE_COOKIES = True
    TRUSTED_PROXIES = 1

    def validate(self) -> None:
        super().validate()
        problems = []
        if not self.CLIENT_SECRET:
            problems.append("EXAM_CLIENT_SECRET must be set (the secret the platform showed once)")
        for name in ("ISSUER", "BASE_URL"):
            if not getattr(self, name).startswith("https://"):
                problems.append(f"EXAM_{name} must be an https:// URL")
        if len(self.SECRET_KEY) < 32:
            problems.append("EXAM_SECRET_KEY must be set to at least 32 random characters")
        if not self.DATA_KEY:
            problems.append("EXAM_DATA_KEY must be set (32 random bytes, hex or base64)")
        if problems:
            raise ExamConfigError("production settings refused:\n  - " + "\n  - ".join(problems))


CONFIGS: dict[str, type[ExamConfig]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def load_config(name: str | None = None, **overrides: Any) -> ExamConfig:
    name = name or os.environ.get("EXAM_ENV", "development")
    try:
        cls = CONFIGS[name]
    except KeyError:
        raise ExamConfigError(f"EXAM_ENV={name!r}: choose one of {', '.join(CONFIGS)}") from None
    config = cls(**overrides)
    config.validate()
    return config


def _coerce(raw: str, default: Any, name: str) -> Any:
    if isinstance(default, bool):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off", ""):
            return False
        raise ExamConfigError(f"EXAM_{name} must be true or false, not {raw!r}")
    try:
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        raise ExamConfigError(f"EXAM_{name} must be a number, not {raw!r}") from None
    return raw


def _engine_options(url: str) -> dict[str, Any]:
    if url in ("sqlite://", "sqlite:///:memory:"):
        from sqlalchemy.pool import StaticPool

        return {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    if url.startswith("sqlite"):
        return {"connect_args": {"check_same_thread": False, "timeout": 15}}
    return {"pool_pre_ping": True}
