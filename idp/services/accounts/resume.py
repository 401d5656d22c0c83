"""Where to go after login: the interrupted authorization request or page.

Kept server-side in the session (never a ``next`` query parameter), and only local paths are
accepted, so login can never be turned into an open redirect.  Registration and recovery keep
it too, so a citizen who came from a relying system lands back there signed in.

When an authorization request sends the user to log in, it also notes when it asked: coming
back to that same request, a login made since then satisfies it once, even with ``max_age=0``
(node oidc-provider counts the login of the interaction it just finished the same way) —
otherwise ``max_age=0`` would send the user between login and authorize for ever.
"""

from __future__ import annotations

import time

from flask import session

_KEY = "pending_authz"
_LOGIN_ASKED = "pending_authz_login_asked"

#: the pushed authorization requests this browser opened (``oauth/requests.py``)
PUSHED_REQUESTS = "pushed_requests"

#: what a login keeps of the session it replaces (``sessions.start_login``)
CARRIED_THROUGH_LOGIN = (_KEY, _LOGIN_ASKED, PUSHED_REQUESTS)


def is_local_path(url: str | None) -> bool:
    return bool(url) and url.startswith("/") and not url.startswith("//") and "\\" not in url


def resume_after_login(url: str) -> None:
    if is_local_path(url):
        session[_KEY] = url


def ask_login_then_resume(url: str) -> None:
    """Resume ``url`` after login, and remember that it asked for that login now."""
    if is_local_path(url):
        session[_KEY] = url
        session[_LOGIN_ASKED] = [url, int(time.time())]


def login_answers_request(url: str, auth_time: int) -> bool:
    """True once if ``url`` asked for a login and the login of ``auth_time`` came after."""
    asked = session.get(_LOGIN_ASKED)
    if not asked or asked[0] != url or auth_time < asked[1]:
        return False
    session.pop(_LOGIN_ASKED, None)
    return True


def peek_resume_url() -> str | None:
    return session.get(_KEY)


def pop_resume_url() -> str | None:
    return session.pop(_KEY, None)
