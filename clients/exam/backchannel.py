"""Back-channel logout: the platform tells this service that a login ended (OpenID Connect
Back-Channel Logout 1.0).  The logout token is validated as §2.6 says before anything is ended:

1. a signed JWT (never ``alg: none`` or a MAC), signature checked against the platform's JWKS,
   typed ``logout+jwt`` when it says its type;
2. ``iss`` is the platform, ``aud`` contains our client_id, ``iat`` present and recent, ``exp``
   not passed, ``jti`` present;
3. ``events`` holds the back-channel logout event (an object);
4. ``sub`` or ``sid`` present; ``nonce`` absent (so an ID token can never pass as a logout token);
5. a ``jti`` is acted on once (replays refused until it expires).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from flask import current_app
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact
from joserfc.jwt import JWTClaimsRegistry
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from .extensions import db
from .models import SeenLogoutToken
from .platform import jwks, metadata

log = logging.getLogger(__name__)

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
SIGNING_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
LEEWAY = 60  # seconds of clock difference tolerated
MAX_AGE = 300  # a logout token issued longer ago than this is stale


class LogoutTokenInvalid(Exception):
    """The token must not be acted on; the message is the ``error_description``."""


@dataclass(frozen=True)
class LogoutNotice:
    sub: str | None
    sid: str | None
    jti: str
    exp: int


def verify_logout_token(raw: str) -> LogoutNotice:
    if not raw or raw.count(".") != 2:
        raise LogoutTokenInvalid("logout_token must be a signed JWT")
    try:
        header = extract_compact(raw.encode()).protected
    except (JoseError, ValueError) as exc:
        raise LogoutTokenInvalid("logout_token is not a valid JWS") from exc
    meta = metadata()
    allowed = [a for a in meta.get("id_token_signing_alg_values_supported") or ["RS256"] if a in SIGNING_ALGS]
    if header.get("alg") not in allowed:
        raise LogoutTokenInvalid(f"alg {header.get('alg')!r} is not accepted")
    typ = str(header.get("typ", "logout+jwt")).lower().removeprefix("application/")
    if typ != "logout+jwt":
        raise LogoutTokenInvalid("typ must be logout+jwt")

    try:
        token = _decode(raw, allowed, force_jwks=False)
    except InvalidKeyIdError:
        token = _decode(raw, allowed, force_jwks=True)  # the platform may have rotated its keys

    claims = dict(token.claims)
    registry = JWTClaimsRegistry(
        leeway=LEEWAY,
        iss={"essential": True, "value": meta["issuer"]},
        aud={"essential": True, "value": current_app.config["CLIENT_ID"]},
        iat={"essential": True},
        exp={"essential": True},
        jti={"essential": True},
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise LogoutTokenInvalid(f"claim check failed: {exc.error}: {exc.description or ''}".strip()) from exc
    if not isinstance(claims["iat"], (int, float)) or claims["iat"] < time.time() - MAX_AGE - LEEWAY:
        raise LogoutTokenInvalid("iat is too old")
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_EVENT), dict):
        raise LogoutTokenInvalid("events must contain the back-channel logout event")
    if "nonce" in claims:
        raise LogoutTokenInvalid("a logout token must not contain nonce")
    sub, sid = claims.get("sub"), claims.get("sid")
    if sub is not None and not isinstance(sub, str) or sid is not None and not isinstance(sid, str):
        raise LogoutTokenInvalid("sub and sid must be strings")
    if not sub and not sid:
        raise LogoutTokenInvalid("a logout token must contain sub or sid")
    if not isinstance(claims["jti"], str):
        raise LogoutTokenInvalid("jti must be a string")
    notice = LogoutNotice(sub=sub or None, sid=sid or None, jti=claims["jti"], exp=int(claims["exp"]))
    _spend(notice)
    return notice


def _decode(raw: str, algorithms: list[str], *, force_jwks: bool):
    try:
        keys = KeySet.import_key_set(jwks(force=force_jwks))
        return jwt.decode(raw, keys, algorithms=algorithms)
    except InvalidKeyIdError:
        if force_jwks:
            raise LogoutTokenInvalid("signed with a key the platform does not publish") from None
        raise
    except (JoseError, ValueError) as exc:
        raise LogoutTokenInvalid(f"signature check failed: {type(exc).__name__}") from exc


def _spend(notice: LogoutNotice) -> None:
    """Remember the jti until the token expires; a second use is a replay."""
    now = datetime.now(timezone.utc)
    db.session.execute(delete(SeenLogoutToken).where(SeenLogoutToken.expires_at <= now))
    db.session.add(SeenLogoutToken(
        jti=notice.jti[:255],
        expires_at=datetime.fromtimestamp(notice.exp + LEEWAY, timezone.utc),
    ))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise LogoutTokenInvalid("logout token already used (jti replay)") from None
