"""WSGI entry point: ``granian --interface wsgi … wsgi:app`` (the README's Production section; gunicorn
serves it too), settings from IDP_* variables, IDP_ENV=production."""

from idp import create_app

app = create_app()
