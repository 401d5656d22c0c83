"""Which interaction an authorization request still needs: an ordered list of named checks, each
answering "login", "consent" or nothing, with a reason (node oidc-provider's interaction policy).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable
from urllib.parse import urlencode

from authlib.oauth2 import OAuth2Error
from flask import request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select

from ..extensions import db
from ..models import Client, Consent
from ..services.accounts.resume import login_answers_request
from ..services.accounts.second_factors import has_factor
from ..services.accounts.sessions import ACR_MFA, LoginSession
from .keys import key_store
from .subjects import subject_for


@dataclass(frozen=True)
class Interaction:
    prompt: str  # "create", "login", "user_type", "mfa" or "consent"
    reason: str


def requested_prompts() -> set[str]:
    return set(request.values.get("prompt", "").split())


def _prompt_create(client, scopes, login) -> Interaction | None:
    # OpenID Connect Prompt Create 1.0: the relying system asks for the sign-up page (立即注册)
    return Interaction("create", "create_prompt") if "create" in requested_prompts() else None


def _no_session(client: Client, scopes: set[str], login: LoginSession | None) -> Interaction | None:
    return Interaction("login", "no_session") if login is None else None


def _prompt_login(client, scopes, login) -> Interaction | None:
    return Interaction("login", "login_prompt") if "login" in requested_prompts() else None


def _max_age(client, scopes, login) -> Interaction | None:
    raw = request.values.get("max_age")
    if raw is None or not raw.isdigit():
        return None
    if time.time() - login.auth_time <= int(raw):
        return None
    if login_answers_request(resume_url_after_login(), login.auth_time):
        return None  # the login this request asked for has just happened (counts once)
    return Interaction("login", "max_age")


def _id_token_hint(client, scopes, login) -> Interaction | None:
    hint = request.values.get("id_token_hint")
    if not hint:
        return None
    claims = id_token_hint_claims(hint)
    if claims is None or claims.get("sub") != (subject_for(client, login.user) if login.user else None):
        return Interaction("login", "id_token_hint")
    return None


class UnmetAuthenticationRequirementsError(OAuth2Error):
    """OpenID Connect Core Unmet Authentication Requirements 1.0: the relying system asked for an
    authentication the account cannot give (a second factor it never enrolled)."""

    error = "unmet_authentication_requirements"
    description = "该应用系统要求第二因素验证，您尚未绑定第二因素"


def requested_acr_values() -> list[str]:
    return request.values.get("acr_values", "").split()


def _user_type(client: Client, scopes: set[str], login) -> Interaction | None:
    """允许登录的用户类型: a system for persons issues no code to a unit's account, and vice versa."""
    user = login.user
    if user is None or client.accepts(user.user_type or "personal"):
        return None
    return Interaction("user_type", user.user_type or "personal")


def _second_factor(client, scopes, login) -> Interaction | None:
    """The MFA level, asked for in acr_values (met by a login whose acr is one the relying system
    listed) or registered as the system's minimum (最低认证级别: met only by that level, on every
    request, whatever acr_values says); otherwise the citizen steps up, or, with nothing
    enrolled, cannot."""
    wanted = requested_acr_values()
    asked = ACR_MFA in wanted and login.acr not in wanted
    required = client.min_acr == ACR_MFA and login.acr != ACR_MFA
    if not (asked or required):
        return None
    if not has_factor(login.user_id):
        return Interaction("mfa", "no_factor")
    return Interaction("mfa", "min_acr" if required else "acr_values")


def _consent(client: Client, scopes: set[str], login) -> Interaction | None:
    if client.first_party:
        return None
    if "consent" in requested_prompts():
        return Interaction("consent", "consent_prompt")
    consent = db.session.scalar(
        select(Consent).where(Consent.user_id == login.user_id, Consent.client_id == client.client_id)
    )
    now = datetime.now(timezone.utc)
    if consent is None or (consent.expires_at and consent.expires_at <= now) or not consent.covers(scopes):
        return Interaction("consent", "scopes_missing")
    return None


# order matters: registration when asked for, then login checks (each needs the previous to have
# passed), then whether this kind of account may use the system, then the second factor a relying
# system asked for, then consent
POLICY: list[Callable[..., Interaction | None]] = [
    _prompt_create, _no_session, _prompt_login, _max_age, _id_token_hint, _user_type, _second_factor, _consent,
]


def needed_interaction(client: Client, scopes: set[str], login: LoginSession | None) -> Interaction | None:
    for check in POLICY:
        result = check(client, scopes, login)
        if result is not None:
            return result
    return None


def id_token_hint_claims(token: str) -> dict | None:
    """Claims of an ID token we issued (signature checked; expiry ignored, as the spec allows)."""
    try:
        keys = KeySet([k.key for k in key_store().published()])
        return dict(jwt.decode(token, keys, algorithms=["RS256", "ES256"]).claims)
    except (JoseError, ValueError):
        return None


def resume_url_after_login() -> str:
    """The same authorization request without the parts that asked for a fresh login, for
    registration or for a first page, so coming back after logging in (or registering, or
    recovering access) does not ask again."""
    params = [(k, v) for k, v in request.values.items(multi=True) if k not in ("csrf_token", "decision")]
    out = []
    for key, value in params:
        if key == "prompt":
            value = " ".join(p for p in value.split() if p not in ("login", "create"))
            if not value:
                continue
        if key in ("id_token_hint", "screen_hint"):
            continue
        out.append((key, value))
    return f"{request.path}?{urlencode(out)}"
