"""Where to go after login: the interrupted authorization request or page.

Kept server-side in the session (never a ``next`` query parameter), and only local paths are
accepted, so login can never be turned into an open redirect.  Registration and recovery keep
it too, so a citizen who came from a relying system lands back there signed in.
"""

from __future__ import annotations

from flask import session

_KEY = "pending_authz"


def is_local_path(url: str | None) -> bool:
    return bool(url) and url.startswith("/") and not url.startswith("//") and "\\" not in url


def resume_after_login(url: str) -> None:
    if is_local_path(url):
        session[_KEY] = url


def peek_resume_url() -> str | None:
    return session.get(_KEY)


def pop_resume_url() -> str | None:
    return session.pop(_KEY, None)
