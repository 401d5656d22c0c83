"""The exam candidate service (考生服务系统): a relying system of the unified user platform.

It delegates registration, login, account maintenance and recovery to the platform through
OpenID Connect and keeps only its own candidate records.  ``create_app`` is the factory::

    EXAM_CLIENT_ID=... EXAM_CLIENT_SECRET=... flask --app clients.exam init-db
    EXAM_CLIENT_ID=... EXAM_CLIENT_SECRET=... flask --app clients.exam run --port 5100
    gunicorn 'clients.exam:create_app()'        # production (EXAM_ENV=production)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click
from flask import Flask

from .config import ExamConfig, load_config


def create_app(config: ExamConfig | str | None = None, **overrides: Any) -> Flask:
    if not isinstance(config, ExamConfig):
        config = load_config(config, **overrides)
    app = Flask(__name__)
    app.config.from_mapping(config.as_flask_config())
    logging.basicConfig(level=app.config["LOG_LEVEL"], format="%(asctime)s %(levelname)s %(name)s %(message)s")

    register_extensions(app)
    register_blueprints(app)
    register_security(app)
    register_errorhandlers(app)
    register_commands(app)
    return app


def register_extensions(app: Flask) -> None:
    from . import models  # noqa: F401  (tables known to the metadata)
    from . import platform, sealing
    from .extensions import csrf, db

    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    db.init_app(app)
    sealing.init_app(app)  # the Flask secret and the data key (generated in development)
    csrf.init_app(app)
    platform.init_app(app)


def register_blueprints(app: Flask) -> None:
    from .routes import bp

    app.register_blueprint(bp)


def register_security(app: Flask) -> None:
    from .security import init_app

    init_app(app)


def register_errorhandlers(app: Flask) -> None:
    from .errors import register_error_handlers

    register_error_handlers(app)


def register_commands(app: Flask) -> None:
    @app.cli.command("init-db")
    def init_db() -> None:
        """Create the service's tables if they are missing."""
        from .models import create_schema

        create_schema()
        click.echo("exam service database ready")
