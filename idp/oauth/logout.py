"""Back-channel and front-channel logout (OpenID Connect Back-Channel / Front-Channel Logout 1.0).

When a login session ends for any reason (logout, RP-initiated logout, password change, an
operator's force logout) every relying system that received tokens in that session and registered
a back-channel logout URI gets a signed logout token, and the session's online tokens are revoked.

When the user ends it in the browser (退出, or a relying system's RP-initiated logout), the page
that says so also loads, in hidden iframes, the front-channel logout URI of every relying system
the login signed in to (``end_browser_login``): for systems that cannot take a server-to-server
call.  That page's CSP names those URIs as frame sources, and no other page's does.
"""

from __future__ import annotations

import logging
import secrets
import time

import requests
from authlib.common.urls import add_params_to_uri
from flask import Flask, current_app
from joserfc import jwt
from sqlalchemy import select

from ..extensions import db
from ..models import AuthorizationCode, Client, User
from ..services.audit import events as audit
from ..security import allow_frame_source
from ..services.accounts.sessions import current_login, end_login, login_ended
from .access_tokens import issuer
from .keys import id_token_alg, key_store
from .subjects import subject_for
from ..services.accounts.revocation import revoke_session_tokens

log = logging.getLogger(__name__)

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def logout_token(client: Client, user: User, sid: str) -> str:
    now = int(time.time())
    key = key_store().current(id_token_alg(client))  # signed as the client's ID tokens are
    claims = {
        "iss": issuer(),
        "aud": client.client_id,
        "iat": now,
        "exp": now + current_app.config["LOGOUT_TOKEN_LIFETIME"],
        "jti": secrets.token_urlsafe(16),
        "sub": subject_for(client, user),
        "sid": sid,
        "events": {BACKCHANNEL_EVENT: {}},
    }
    return jwt.encode({"alg": key.alg, "kid": key.kid, "typ": "logout+jwt"}, claims, key.key)


def clients_in_session(sid: str) -> list[Client]:
    client_ids = db.session.scalars(
        select(AuthorizationCode.client_id).where(AuthorizationCode.sid == sid).distinct()
    ).all()
    if not client_ids:
        return []
    return list(
        db.session.scalars(
            select(Client).where(
                Client.client_id.in_(client_ids),
                Client.backchannel_logout_uri.is_not(None),
                Client.enabled.is_(True),
            )
        )
    )


def notify_backchannel(user: User, sid: str) -> dict[str, bool]:
    results: dict[str, bool] = {}
    for client in clients_in_session(sid):
        try:
            response = requests.post(
                client.backchannel_logout_uri,
                data={"logout_token": logout_token(client, user, sid)},
                timeout=current_app.config["BACKCHANNEL_LOGOUT_TIMEOUT"],
                allow_redirects=False,
            )
            ok = response.status_code in (200, 204)
        except requests.RequestException as exc:
            log.warning("back-channel logout to %s failed: %s", client.client_id, type(exc).__name__)
            ok = False
        results[client.client_id] = ok
        audit.add("logout.backchannel", "success" if ok else "failure", actor="system",
                  subject=user.sub, client_id=client.client_id)
    return results


def frontchannel_logout_urls(sid: str) -> list[str]:
    """The front-channel logout URIs of the relying systems this login signed in to, with ``iss``
    and ``sid`` for those that asked for them (Front-Channel Logout 1.0 §2, §3)."""
    signed_in = select(AuthorizationCode.client_id).where(AuthorizationCode.sid == sid).distinct()
    rows = db.session.execute(
        select(Client.frontchannel_logout_uri, Client.frontchannel_logout_session_required).where(
            Client.client_id.in_(signed_in),
            Client.frontchannel_logout_uri.is_not(None),
            Client.enabled.is_(True),
        ).order_by(Client.client_id)
    ).all()
    return [add_params_to_uri(uri, {"iss": issuer(), "sid": sid}) if with_session else uri
            for uri, with_session in rows]


def end_browser_login(reason: str) -> list[str]:
    """End this browser's login (back-channel notices follow the login_ended signal) and return
    the front-channel logout URIs the page that says so must load; this response may frame them."""
    login = current_login()
    urls = frontchannel_logout_urls(login.sid) if login is not None else []
    end_login(reason=reason)
    for url in urls:
        allow_frame_source(url)
    return urls


def _on_login_ended(app: Flask, user_id: int | None = None, sid: str | None = None, reason: str = "", **_) -> None:
    if not sid:
        return
    revoke_session_tokens(sid)
    user = db.session.get(User, user_id) if user_id else None
    if user is not None:
        notify_backchannel(user, sid)
    db.session.commit()


def init_app(app: Flask) -> None:
    login_ended.connect(_on_login_ended, app)
