"""WSGI entry point: ``gunicorn wsgi:app`` (settings from IDP_* variables, IDP_ENV=production)."""

from idp import create_app

app = create_app()
