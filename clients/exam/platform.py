"""The unified user platform as this service sees it: an OpenID Provider found through discovery.

Authlib's Flask OAuth client does the protocol: the authorization code flow with PKCE (S256), a
confidential client (client_secret_basic), ``state`` and ``nonce`` kept server-side
(``PendingAuthorizationStore``), and the ID token verified against the platform's JWKS (a key it
does not know makes it fetch the JWKS again once, so key rotation just works).  On top of that
this module checks what Authlib leaves to the application: the ``iss`` of the authorization
response (RFC 9207, mix-up defence) and the ``aud`` of the ID token.  Every way a login can fail
ends as one typed error from ``errors.py``.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import requests
from authlib.integrations.base_client.errors import MismatchingStateError, OAuthError
from authlib.integrations.flask_client import FlaskOAuth2App, OAuth
from flask import Flask, current_app, request, session
from joserfc.errors import JoseError
from sqlalchemy import delete

from .errors import (
    IdTokenInvalid,
    IssuerMismatch,
    LoginDenied,
    LoginStateInvalid,
    PlatformUnavailable,
    TokenExchangeFailed,
)
from .extensions import db
from .models import PendingAuthorization

log = logging.getLogger(__name__)

NAME = "platform"
LOGIN_LIFETIME = 600  # seconds a started login may take (registration included) before it expires


class PendingAuthorizationStore:
    """Authlib's cache interface (get/set/delete) over the service's own database."""

    def get(self, key: str) -> str | None:
        row = db.session.get(PendingAuthorization, key)
        if row is None or row.expires_at <= datetime.now(timezone.utc):
            return None
        return row.value

    def set(self, key: str, value: str, timeout: int | None = None) -> None:
        now = datetime.now(timezone.utc)
        db.session.execute(delete(PendingAuthorization).where(PendingAuthorization.expires_at <= now))
        db.session.merge(PendingAuthorization(
            key=key, value=value, expires_at=now + timedelta(seconds=min(timeout or LOGIN_LIFETIME, LOGIN_LIFETIME)),
        ))
        db.session.commit()

    def delete(self, key: str) -> None:
        db.session.execute(delete(PendingAuthorization).where(PendingAuthorization.key == key))
        db.session.commit()


@dataclass(frozen=True)
class PlatformLogin:
    """A login the platform vouched for: verified ID token claims (merged with userinfo)."""

    claims: dict[str, Any]
    id_token: str
    scope: str

    @property
    def sub(self) -> str:
        return self.claims["sub"]

    @property
    def sid(self) -> str | None:
        return self.claims.get("sid")


def init_app(app: Flask) -> None:
    # one registry per app: tests and the demo run several apps with different platforms
    oauth = OAuth()
    oauth.init_app(app, cache=PendingAuthorizationStore())
    client = oauth.register(
        NAME,
        client_id=app.config["CLIENT_ID"],
        client_secret=app.config["CLIENT_SECRET"],
        server_metadata_url=f"{app.config['ISSUER']}/.well-known/openid-configuration",
        client_kwargs={
            "scope": app.config["SCOPE"],
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": "client_secret_basic",
            "default_timeout": app.config["HTTP_TIMEOUT"],
        },
    )
    app.extensions["exam_platform"] = client


def platform() -> FlaskOAuth2App:
    return current_app.extensions["exam_platform"]


def metadata() -> dict[str, Any]:
    """The discovery document (fetched once, then cached by Authlib); its issuer must be ours."""
    try:
        meta = platform().load_server_metadata()
    except (requests.RequestException, ValueError) as exc:
        raise PlatformUnavailable(f"discovery: {type(exc).__name__}") from exc
    if meta.get("issuer") != current_app.config["ISSUER"]:
        # OpenID Connect Discovery §4.3: the issuer in the document must be the one we asked
        platform().server_metadata.pop("_loaded_at", None)
        raise PlatformUnavailable(f"discovery names issuer {meta.get('issuer')!r}")
    return meta


def start_login(*, register: bool = False, screen: str | None = None):
    """Redirect to the platform's authorization endpoint.  ``register`` asks for its sign-up page
    first (``prompt=create``) when the platform supports it; otherwise its login page, which links
    to registration anyway.  ``screen`` (``forgot_password``, ``forgot_username``) asks for the
    page a needed login starts on (``screen_hint``): the recovery there ends in a login that
    comes back here.  A platform that does not know the hint shows its login page, which links
    to recovery."""
    params: dict[str, str] = {}
    meta = metadata()
    if register and "create" in meta.get("prompt_values_supported", []):
        params["prompt"] = "create"
    if screen:
        params["screen_hint"] = screen
    return platform().authorize_redirect(current_app.config["REDIRECT_URI"], **params)


def complete_login() -> PlatformLogin:
    """Handle the authorization response on the redirect URI; raises one typed error per failure."""
    client = platform()
    args = request.args
    state = args.get("state", "")
    if not state or client.framework.get_state_data(session, state) is None:
        raise LoginStateInvalid(f"state {'missing' if not state else 'unknown, used or expired'}")
    try:
        meta = metadata()
        _check_response_issuer(meta, args.get("iss"))
        if args.get("error"):
            raise LoginDenied(args["error"][:64], args.get("error_description", "")[:200])
        if not args.get("code"):
            raise TokenExchangeFailed("no code in the authorization response")
    except Exception:
        client.framework.clear_state_data(session, state)  # a state is good for one answer only
        raise

    claims_options = {
        "iss": {"essential": True, "value": meta["issuer"]},
        "aud": {"essential": True, "value": client.client_id},
        "sub": {"essential": True},
    }
    try:
        # state (again, and spent), PKCE verifier, token request, ID token: signature against the
        # JWKS, iss, aud, exp, iat, nonce, at_hash
        token = client.authorize_access_token(claims_options=claims_options)
    except MismatchingStateError as exc:
        raise LoginStateInvalid("state mismatch") from exc
    except OAuthError as exc:
        raise TokenExchangeFailed(f"token endpoint: {exc.error}") from exc
    except JoseError as exc:
        raise IdTokenInvalid(f"id_token: {type(exc).__name__}: {exc}") from exc
    except (requests.RequestException, ValueError, KeyError) as exc:
        raise PlatformUnavailable(f"token exchange: {type(exc).__name__}") from exc
    verified = token.get("userinfo")
    if not verified or not token.get("id_token"):
        raise IdTokenInvalid("no id_token in the token response")

    claims = dict(verified)
    claims.update(_userinfo(token, claims["sub"]))
    return PlatformLogin(claims=claims, id_token=token["id_token"], scope=token.get("scope", ""))


def _check_response_issuer(meta: dict[str, Any], iss: str | None) -> None:
    """RFC 9207: a platform that announces ``iss`` in responses must send ours, and nobody else's."""
    if iss is None:
        if meta.get("authorization_response_iss_parameter_supported"):
            raise IssuerMismatch("iss missing from the authorization response")
        return
    if iss != meta["issuer"]:
        raise IssuerMismatch(f"iss {iss!r} is not {meta['issuer']!r}")


def _userinfo(token: dict, sub: str) -> dict[str, Any]:
    """Fresh claims from the userinfo endpoint; its ``sub`` must be the ID token's (Core §5.3.4).
    If the platform cannot answer, the ID token's verified claims are enough to sign in."""
    try:
        info = platform().userinfo(token=token)
    except (requests.RequestException, OAuthError, ValueError) as exc:
        log.warning("userinfo unavailable (%s); using the ID token claims", type(exc).__name__)
        return {}
    if info.get("sub") != sub:
        log.warning("userinfo sub differs from the ID token sub; ignored")
        return {}
    return dict(info)


def logout_form(id_token: str) -> dict[str, Any]:
    """What the browser posts to the platform's end_session endpoint (RP-initiated logout).

    A form post rather than a redirect keeps the ID token (which carries personal data) out of
    URLs, browser history and access logs.  The state is remembered in the session and checked
    when the platform sends the user back."""
    endpoint = metadata().get("end_session_endpoint")
    if not endpoint:
        raise PlatformUnavailable("no end_session_endpoint in discovery")
    back_to = current_app.config["POST_LOGOUT_REDIRECT_URI"]
    state = secrets.token_urlsafe(24)
    platform().framework.set_state_data(session, state, {"post_logout_redirect_uri": back_to})
    return {
        "action": endpoint,
        "fields": {
            "id_token_hint": id_token,
            "post_logout_redirect_uri": back_to,
            "client_id": platform().client_id,
            "state": state,
        },
    }


def logout_returned() -> bool:
    """The platform sent the user back after logout with the state we gave it."""
    try:
        platform().validate_logout_response()
    except OAuthError:
        return False
    return True


def jwks(force: bool = False) -> dict:
    try:
        return platform().fetch_jwk_set(force=force)
    except (requests.RequestException, ValueError) as exc:
        raise PlatformUnavailable(f"jwks: {type(exc).__name__}") from exc
