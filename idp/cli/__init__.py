"""The ``idp`` command: a Flask CLI group that loads the app (``idp --help``).

Every command calls the same service functions as the web UI.
"""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import FlaskGroup


def _create_app() -> Flask:
    from .. import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=True, load_dotenv=False)
def main() -> None:
    """HRSS Unified Identity — the OpenID Connect provider."""


def register(app: Flask) -> None:
    from . import core

    core.register(app)
    # areas add their groups here (each module owns its commands)
    for name in ("sandbox", "demo", "admin_cli", "mfa_cli"):
        try:
            module = __import__(f"{__name__}.{name}", fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            continue
        module.register(app)
