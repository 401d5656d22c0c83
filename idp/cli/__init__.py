"""The ``idp`` command: a Flask CLI group that loads the app (``idp --help``).

Every command calls the same service functions as the web UI.
"""

from __future__ import annotations

import logging

import click
from flask import Flask
from flask.cli import FlaskGroup

# libraries that narrate their start-up at INFO (Alembic lists its plugins, then each migration
# step): a command's own output comes first unless -v asks for the narration
CHATTY_LOGGERS = ("alembic", "flask_migrate")


def _create_app() -> Flask:
    from .. import create_app

    return create_app()


def _verbosity(_ctx: click.Context, _param: click.Parameter, verbose: bool) -> None:
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=True, load_dotenv=False)
@click.option("-v", "--verbose", is_flag=True, is_eager=True, expose_value=False, callback=_verbosity,
              help="Also show the start-up and migration messages of the libraries (Alembic).")
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
