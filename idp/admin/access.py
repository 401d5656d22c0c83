"""The one guard of the console: ``@requires(permission)`` on every route.

- nobody logged in → the login page, then back here;
- logged in without the permission → 403 with nothing of the page (and an audit event), checked
  before anything is looked up, so a 403 never says whether a user or system exists;
- logged in with the permission but too long ago (``ADMIN_MAX_AUTH_AGE``) → log in again, then
  back here (sudo mode: a session left open on a desk cannot be used to administer);
- logged in without a second factor (a login older than the role, a password reset) → the
  second factor (or its enrolment), then back here;
- a dangerous action (``step_up``) without a second factor in the last ``MFA_STEP_UP_WINDOW``
  seconds → the second factor again, then back to the page the action was sent from; nothing
  was done, the action is submitted again.

The blueprint also refuses any of its routes that lacks the decorator (fail closed).
"""

from __future__ import annotations

import functools
import time
from typing import Callable

from flask import Blueprint, abort, current_app, flash, g, redirect, request, session, url_for

from ..extensions import db
from ..mfa.gate import recently_verified
from ..services.accounts.resume import resume_after_login
from ..services.audit import events as audit
from ..services.admin.staff import may

STALE_LOGIN_MESSAGE = "为保障管理操作安全，请重新登录后继续"


STEP_UP_MESSAGE = "该操作需要再次验证第二因素，验证后请重新提交"


def login_problem(login) -> str | None:
    """Why this login may not administer now, or None."""
    if login is None:
        return "no_login"
    if time.time() - login.auth_time > current_app.config["ADMIN_MAX_AUTH_AGE"]:
        return "stale"
    if "mfa" not in login.amr:
        return "second_factor"
    return None


def _return_path() -> str:
    """Where to come back after logging in: this page, or for an action (POST only) the page
    it was sent from, which is its parent path (``/admin/users/<sub>/lock`` → the user)."""
    rule = request.url_rule
    if request.method == "GET" or (rule is not None and "GET" in (rule.methods or ())):
        return request.full_path if request.query_string else request.path
    return request.path.rsplit("/", 1)[0] or "/admin/"


def requires(permission: str, *, step_up: bool | Callable[..., bool] = False):
    """``step_up``: the route (or, as a function of the route's arguments, some of its actions)
    is dangerous and wants a recent second factor."""

    def decorate(view):
        @functools.wraps(view)
        def guarded(*args, **kwargs):
            user = g.get("user")
            if user is None:
                resume_after_login(_return_path())
                return redirect(url_for("auth.login"))
            if not may(user.role, permission):
                audit.add("admin.access", "denied", actor=user.username, subject=user.sub,
                          path=request.path, method=request.method, permission=permission)
                db.session.commit()
                abort(403)
            problem = login_problem(g.get("login"))
            if problem == "second_factor":
                resume_after_login(_return_path())
                return redirect(url_for("mfa.verify"))
            if problem is not None:
                resume_after_login(_return_path())
                session["login_hint"] = user.username
                flash(STALE_LOGIN_MESSAGE, "error")
                return redirect(url_for("auth.login"))
            dangerous = step_up(**kwargs) if callable(step_up) else step_up
            if dangerous and not recently_verified():
                resume_after_login(_return_path())
                flash(STEP_UP_MESSAGE, "info")
                return redirect(url_for("mfa.verify"))
            return view(*args, **kwargs)

        guarded.admin_permission = permission  # type: ignore[attr-defined]
        return guarded

    return decorate


def fail_closed(bp: Blueprint) -> None:
    @bp.before_request
    def _every_route_is_guarded():
        view = current_app.view_functions.get(request.endpoint or "")
        if view is None or not hasattr(view, "admin_permission"):
            abort(403)

    @bp.context_processor
    def _permissions():
        user = g.get("user")
        return {"can": lambda permission: user is not None and may(user.role, permission)}
