"""``login_required`` and ``g.user``: loaded once per request from the login session."""

from __future__ import annotations

import functools

from flask import g, redirect, request, url_for

from ..services.accounts.sessions import current_login
from ..services.accounts.resume import resume_after_login


def load_user() -> None:
    login = current_login()
    g.login = login
    g.user = login.user if login else None


def login_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if g.get("user") is None:
            resume_after_login(request.full_path if request.query_string else request.path)
            return redirect(url_for("auth.login"))
        return view(*args, **kwargs)

    return wrapped
