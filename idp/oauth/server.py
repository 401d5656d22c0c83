"""Authlib's authorization server, configured for this provider (filled in by the OAuth work)."""

from flask import Flask


def init_app(app: Flask) -> None:
    pass
