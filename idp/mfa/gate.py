"""Where the second factor sits in a login, and how recent one must be.

After the password, a staff account's login is *pending*: nothing is signed in until the second
factor passes (or, without one yet, until it enrols one through its enrolment link).  A login
that passed a second factor carries ``mfa`` in its amr and ``urn:hrss:acr:mfa`` as its acr, and
the time of the last second factor; dangerous console actions want that time to be recent.
"""

from __future__ import annotations

import time

from flask import current_app, g, redirect, session, url_for

from ..extensions import db
from ..models import User
from ..services.accounts import second_factors
from ..services.accounts.sessions import ACR_MFA, add_authentication, start_login

PENDING = "mfa_pending"  # {"uid": …, "at": …}: the password passed, the second factor not yet
GRANT = "mfa_grant"  # the enrolment link's token, held until the enrolment succeeds
VERIFIED_AT = "mfa_at"  # when this login last passed a second factor


def second_factor_step(user: User):
    """Called right after a correct password: a redirect to the second factor, or None when this
    account signs in with the password alone."""
    if not second_factors.needs_second_factor(user):
        return None
    session.pop(PENDING, None)
    session[PENDING] = {"uid": user.id, "at": int(time.time())}
    return redirect(url_for("mfa.verify" if second_factors.has_factor(user.id) else "mfa.setup"))


def pending_user() -> User | None:
    data = session.get(PENDING)
    if not data or time.time() - data.get("at", 0) > current_app.config["MFA_CHALLENGE_TTL"]:
        return None
    user = db.session.get(User, data.get("uid"))
    return user if user is not None and user.is_active else None


def current_subject() -> tuple[User | None, bool]:
    """Who is answering a second factor: a pending password login first (a fresh login wins over
    an older one in the same browser), else the signed-in user.  (user, pending)."""
    user = pending_user()
    if user is not None:
        return user, True
    return g.get("user"), False


def recently_verified() -> bool:
    at = session.get(VERIFIED_AT)
    login = g.get("login")
    return bool(login and at and "mfa" in login.amr
                and time.time() - at <= current_app.config["MFA_STEP_UP_WINDOW"])


def complete(user: User, methods: list[str], pending: bool) -> None:
    """A second factor passed: finish the pending login, or step the current one up."""
    if pending:
        start_login(user, amr=["pwd", *methods, "mfa"], acr=ACR_MFA)
    else:
        add_authentication([*methods, "mfa"], ACR_MFA)
    session[VERIFIED_AT] = int(time.time())
