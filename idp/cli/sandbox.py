"""``idp sandbox bank|registry|sms``: the sandboxes of the external services on their own ports, so
the provider can be pointed at them over real HTTP (``IDP_BANK_URL``, ``IDP_REGISTRY_URL``,
``IDP_SMS_URL``)."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup

sandbox_cli = AppGroup("sandbox", help="Sandboxes of the bank verification platform, the enterprise registry and the SMS gateway.")


def register(app: Flask) -> None:
    app.cli.add_command(sandbox_cli)


def _serve(wsgi_app, host: str, port: int) -> None:
    from werkzeug.serving import run_simple

    run_simple(host, port, wsgi_app, threaded=True, use_reloader=False, use_debugger=False)


@sandbox_cli.command("bank")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8601, show_default=True, type=int)
@click.option("--data", "data_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="bank records JSON (default: the fictitious records shipped in idp/sandbox/data)")
@click.option("--secret", default=None, help="shared signing secret (default: IDP_BANK_SECRET)")
@click.option("--latency", default=0.0, show_default=True, type=float, help="seconds to wait before answering")
def sandbox_bank(host: str, port: int, data_file: str | None, secret: str | None, latency: float) -> None:
    """Serve the sandbox bank verification platform."""
    from ..sandbox.bank import BankSandbox

    app = BankSandbox.from_data_file(secret or current_app.config["BANK_SECRET"], data_file, latency=latency)
    click.echo(f"sandbox bank verification platform: {len(app.cards)} fictitious cards")
    click.echo(f"point the provider at it with IDP_BANK_URL=http://{host}:{port}  (Ctrl+C to stop)")
    _serve(app, host, port)


@sandbox_cli.command("registry")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8603, show_default=True, type=int)
@click.option("--data", "data_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="registry units JSON (default: the fictitious units shipped in idp/sandbox/data)")
@click.option("--secret", default=None, help="shared signing secret (default: IDP_REGISTRY_SECRET)")
@click.option("--latency", default=0.0, show_default=True, type=float, help="seconds to wait before answering")
def sandbox_registry(host: str, port: int, data_file: str | None, secret: str | None, latency: float) -> None:
    """Serve the sandbox enterprise credit registry (单位登记信息核验)."""
    from ..sandbox.registry import RegistrySandbox

    app = RegistrySandbox.from_data_file(secret or current_app.config["REGISTRY_SECRET"], data_file, latency=latency)
    click.echo(f"sandbox enterprise credit registry: {len(app.units)} fictitious units")
    click.echo(f"point the provider at it with IDP_REGISTRY_URL=http://{host}:{port}  (Ctrl+C to stop)")
    _serve(app, host, port)


@sandbox_cli.command("sms")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8602, show_default=True, type=int)
@click.option("--key", default=None, help="API key the gateway expects (default: IDP_SMS_KEY, or 'sandbox-sms-key')")
def sandbox_sms(host: str, port: int, key: str | None) -> None:
    """Serve the sandbox SMS gateway (keeps messages in memory; GET /v1/messages lists them)."""
    from ..sandbox.sms import MESSAGES_PATH, SmsGatewaySandbox

    key = key or current_app.config.get("SMS_KEY") or "sandbox-sms-key"
    click.echo("sandbox SMS gateway; point the provider at it with")
    click.echo(f"  IDP_SMS_BACKEND=http IDP_SMS_URL=http://{host}:{port}{MESSAGES_PATH} IDP_SMS_KEY={key}")
    _serve(SmsGatewaySandbox(key), host, port)
