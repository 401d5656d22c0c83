"""HRSS Unified Identity — the OpenID Connect provider.  ``create_app`` is the factory."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from .config import BaseConfig, load_config


def create_app(config: BaseConfig | str | None = None, **overrides: Any) -> Flask:
    if not isinstance(config, BaseConfig):
        config = load_config(config, **overrides)
    app = Flask(__name__, instance_relative_config=False)
    app.config.from_mapping(config.as_flask_config())
    app.json.ensure_ascii = False  # Chinese messages readable in JSON errors
    configure_logging(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])

    register_extensions(app)
    register_sandboxes(app)
    register_blueprints(app)
    register_security(app)
    register_template_globals(app)
    register_commands(app)
    from .errors import register_error_handlers

    register_error_handlers(app)
    return app


def configure_logging(level: str, fmt: str) -> None:
    """Structured (JSON lines) in production, readable text in development.  Personal data never
    reaches a log call: services log identifiers only."""
    root = logging.getLogger()
    if getattr(root, "_idp_configured", None) == (level, fmt):
        return
    handler = logging.StreamHandler()
    if fmt == "json":
        import json

        class JsonFormatter(logging.Formatter):
            def format(self, record: logging.LogRecord) -> str:
                return json.dumps({
                    "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
                    "level": record.levelname,
                    "logger": record.name,
                    "message": record.getMessage(),
                    **({"exc": self.formatException(record.exc_info)} if record.exc_info else {}),
                }, ensure_ascii=False)

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler._idp = True  # type: ignore[attr-defined]
    # replace our own handler only: others (a test's log capture, an embedding app's) stay
    root.handlers = [h for h in root.handlers if not getattr(h, "_idp", False)
                     and type(h) is not logging.StreamHandler] + [handler]
    root.setLevel(level)
    root._idp_configured = (level, fmt)  # type: ignore[attr-defined]


def register_extensions(app: Flask) -> None:
    from . import models  # noqa: F401  (tables known to Alembic and the session)
    from .extensions import (csrf, db, init_sessions, limiter, migrate, redis_store,
                             skip_limiter_on_stateless_paths)
    from .oauth import keys
    from .services import limits
    from .services.accounts import claims_cache  # noqa: F401  (its commit hooks, in every process)
    from .services.identity import pii

    if app.config["DATABASE_URL"].startswith("sqlite:///"):
        from pathlib import Path

        Path(app.config["DATABASE_URL"].removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    db.init_app(app)
    with app.app_context():
        from .db_pool import check_idle_connections, give_up_on_silent_server

        check_idle_connections(db.engine)  # instead of pre-ping on every checkout (db_pool.py)
        give_up_on_silent_server(db.engine, app.config["DATABASE_STATEMENT_TIMEOUT"])
    migrate.init_app(app, db, directory=str(_migrations_dir()), render_as_batch=True)
    redis_store.init_app(app)
    limits.init_app(app)
    _ensure_secret_key(app)
    init_sessions(app)  # before any other before_request: the first to need the session
    csrf.init_app(app)
    # Flask-Limiter merges each app's RATELIMIT_STORAGE_OPTIONS into the one shared Limiter
    # object: start from this app's own, or a Sentinel app's options leak into the next app
    limiter._storage_options = {}
    limiter.init_app(app)
    skip_limiter_on_stateless_paths(app)
    pii.init_app(app)
    keys.init_app(app, generate=not app.testing)


def register_sandboxes(app: Flask) -> None:
    """Development and tests only: the SMS outbox (``SMS_BACKEND=outbox``), the sandbox bank and
    the sandbox enterprise registry, mounted in-process, which answer whenever ``BANK_URL`` (``REGISTRY_URL``) is empty (built on first use, so an
    app that never verifies never reads the sandbox's records).  Production never gets here, and
    ``idp.services`` never imports ``idp.sandbox``."""
    if app.config["ENV_NAME"] not in ("development", "testing"):
        return
    if app.config["SMS_BACKEND"] == "outbox":
        from .services.verification.sms import OutboxSmsSender

        app.extensions["idp_sms"] = OutboxSmsSender()
    secret = app.config["BANK_SECRET"]

    def bank_transport():
        from .sandbox.bank import BankSandbox
        from .sandbox.transport import WSGITransport

        return WSGITransport(BankSandbox.from_data_file(secret))

    app.extensions["idp_bank_transport"] = bank_transport
    registry_secret = app.config["REGISTRY_SECRET"]

    def registry_transport():
        from .sandbox.registry import RegistrySandbox
        from .sandbox.transport import WSGITransport

        return WSGITransport(RegistrySandbox.from_data_file(registry_secret))

    app.extensions["idp_registry_transport"] = registry_transport


def register_blueprints(app: Flask) -> None:
    from .account import edit, routes  # noqa: F401  (their views join the account blueprint)
    from .account.blueprint import bp as account_bp
    from .auth.routes import bp as auth_bp

    from . import metrics
    from .health import bp as health_bp

    metrics.init_app(app)

    app.register_blueprint(auth_bp)
    app.register_blueprint(account_bp)
    from .register import unit_routes  # noqa: F401  (单位用户注册 joins the registration blueprint)
    from .register.routes import bp as register_bp

    app.register_blueprint(register_bp)
    from .recovery.routes import bp as recovery_bp

    app.register_blueprint(recovery_bp)
    from .privacy.routes import bp as privacy_bp

    app.register_blueprint(privacy_bp)
    from .admin.routes import bp as admin_bp

    app.register_blueprint(admin_bp)
    from .mfa.routes import bp as mfa_bp

    app.register_blueprint(mfa_bp)
    if app.config.get("DEV_TOOLS"):
        from .dev.routes import bp as dev_bp

        app.register_blueprint(dev_bp)
    app.register_blueprint(health_bp)
    from .oauth import routes as oauth_routes
    from .oauth import server as oauth_server

    oauth_server.init_app(app)
    oauth_routes.init_app(app)


def register_template_globals(app: Flask) -> None:
    """What the pages show beside the forms: devices and audit events in words, contacts."""
    from . import support
    from .services.accounts import devices
    from .services.audit.names import event_name

    app.jinja_env.filters["device"] = devices.describe  # 登录设备: "Chrome · Windows"
    app.jinja_env.filters["event_name"] = event_name  # the audit log's codes in Chinese
    support.init_app(app)  # support_contacts(): whom a citizen may call


def register_security(app: Flask) -> None:
    from .security import init_app

    init_app(app)


def register_commands(app: Flask) -> None:
    from .cli import register

    register(app)


def _migrations_dir():
    from pathlib import Path

    return Path(__file__).resolve().parent / "migrations"


def _ensure_secret_key(app: Flask) -> None:
    """Development gets a generated key in keys/secret.key; production config refuses to start
    without IDP_SECRET_KEY (checked in ProductionConfig.validate)."""
    if app.config.get("SECRET_KEY"):
        return
    import os
    import secrets
    from pathlib import Path

    path = Path(app.config["KEYS_DIR"]) / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    app.config["SECRET_KEY"] = path.read_text().strip()
