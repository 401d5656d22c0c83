"""Settings of the exam candidate service, every value overridable by an ``EXAM_<NAME>`` variable.

The service knows the platform only by its issuer URL (everything else comes from discovery) and
by the client credentials it was given when it was registered there (``idp clients add``).
"""

from __future__ import annotations

from typing import Any

from .. import common
from ..common import PROJECT_ROOT, ClientConfig, ClientConfigError


class ExamConfigError(ClientConfigError):
    """A setting is missing or unsafe; the message says which and how to fix it."""


class ExamConfig(ClientConfig):
    prefix = "EXAM"
    label = "exam service"
    register_hint = ("register the service at the platform first "
                     "(idp clients add --name 考生服务系统 --first-party ...)")
    error = ExamConfigError

    # -- the platform (OpenID Provider) and our registration there --------------------------------
    SCOPE = "openid profile phone realname"  # realname is granted only if an administrator allowed it

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
    TRUSTED_PROXIES = 0
    LOG_LEVEL = "INFO"

    def __init__(self, **overrides: Any) -> None:
        super().__init__(**overrides)
        self.ACCOUNT_URL = self.ACCOUNT_URL or f"{self.ISSUER}/account/"
        self.PASSWORD_URL = self.PASSWORD_URL or f"{self.ISSUER}/account/password"

    @property
    def backchannel_logout_uri(self) -> str:
        return f"{self.BASE_URL}/backchannel-logout"

    @property
    def session_lifetime(self) -> int:
        return self.SESSION_ABSOLUTE_LIFETIME

    def as_flask_config(self) -> dict[str, Any]:
        values = super().as_flask_config()
        values.update(
            BACKCHANNEL_LOGOUT_URI=self.backchannel_logout_uri,
            SQLALCHEMY_DATABASE_URI=self.DATABASE_URL,
            SQLALCHEMY_ENGINE_OPTIONS=_engine_options(self.DATABASE_URL),
        )
        return values


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
        problems = self.production_problems()
        if not self.DATA_KEY:
            problems.append("EXAM_DATA_KEY must be set (32 random bytes, hex or base64)")
        self.refuse_for_production(problems)


CONFIGS: dict[str, type[ExamConfig]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def load_config(name: str | None = None, **overrides: Any) -> ExamConfig:
    return common.load_config(CONFIGS, name, **overrides)


def _engine_options(url: str) -> dict[str, Any]:
    if url in ("sqlite://", "sqlite:///:memory:"):
        from sqlalchemy.pool import StaticPool

        return {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    if url.startswith("sqlite"):
        return {"connect_args": {"check_same_thread": False, "timeout": 15}}
    return {"pool_pre_ping": True}
