"""Settings of 单位网上办事, every value overridable by a ``UNITPORTAL_<NAME>`` variable.

Like the exam service it knows the platform only by its issuer URL (the rest comes from
discovery) and by the credentials it was given when it was registered there.
"""

from __future__ import annotations

from typing import Any

from .. import common
from ..common import PROJECT_ROOT, ClientConfig, ClientConfigError


class UnitPortalConfigError(ClientConfigError):
    """A setting is missing or unsafe; the message says which."""


class UnitPortalConfig(ClientConfig):
    prefix = "UNITPORTAL"
    label = "unit portal"
    register_hint = ("register the portal at the platform first "
                     "(idp clients add --name 单位网上办事 --user-types unit --scope 'openid unit' ...)")
    error = UnitPortalConfigError

    SCOPE = "openid unit"  # the unit's name, code and type, and its handler's name
    BASE_URL = "http://127.0.0.1:5200"  # public URL; the redirect and post-logout URIs are built from it
    SECRET_KEY = ""  # empty: a random key per start (development only; sessions end with the process)
    SESSION_DIR = str(PROJECT_ROOT / "instance" / "unitportal-sessions")  # server-side sessions
    SESSION_LIFETIME = 8 * 3600

    @property
    def session_lifetime(self) -> int:
        return self.SESSION_LIFETIME


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
        self.refuse_for_production(self.production_problems())


CONFIGS: dict[str, type[UnitPortalConfig]] = {
    "development": DevelopmentConfig, "testing": TestingConfig, "production": ProductionConfig,
}


def load_config(name: str | None = None, **overrides: Any) -> UnitPortalConfig:
    return common.load_config(CONFIGS, name, **overrides)
