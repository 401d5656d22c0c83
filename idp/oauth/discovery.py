"""The OpenID Provider metadata (discovery document): every endpoint listed here works."""

from __future__ import annotations

from flask import current_app

from ..services.admin.clients import SUPPORTED_SCOPES
from ..services.accounts.sessions import ACR_VALUES
from .dpop import DPOP_SIGNING_ALGS
from .requests import REQUEST_OBJECT_ALGS


def provider_metadata() -> dict:
    base = current_app.config["ISSUER"]
    auth_methods = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
    return {
        "issuer": base,
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "userinfo_endpoint": f"{base}/oauth/userinfo",
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "introspection_endpoint": f"{base}/oauth/introspect",
        "end_session_endpoint": f"{base}/oauth/logout",
        "pushed_authorization_request_endpoint": f"{base}/oauth/par",
        "require_pushed_authorization_requests": False,  # per client: require_pushed_authorization_requests
        "scopes_supported": list(SUPPORTED_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "userinfo_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256"],
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "pushed_authorization_request_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": auth_methods[:3],
        "code_challenge_methods_supported": ["S256"],
        "dpop_signing_alg_values_supported": list(DPOP_SIGNING_ALGS),
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "name",
            "preferred_username", "gender", "birthdate", "updated_at", "phone_number",
            "phone_number_verified", "real_name_verified", "id_type", "id_number", "user_type", "unit_name",
            "uscc", "unit_type", "handler_name", "handler_id_type", "handler_id_number",
        ],
        "claims_parameter_supported": False,
        "request_parameter_supported": True,  # signed request objects (RFC 9101)
        "request_object_signing_alg_values_supported": list(REQUEST_OBJECT_ALGS),
        # no request_uri is fetched: only the ones the pushed authorization endpoint hands out
        "request_uri_parameter_supported": False,
        "acr_values_supported": list(ACR_VALUES),
        "prompt_values_supported": ["none", "login", "consent", "create"],
        "authorization_response_iss_parameter_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "frontchannel_logout_supported": True,
        "frontchannel_logout_session_supported": True,
        "ui_locales_supported": ["zh-CN"],
        "claims_locales_supported": ["zh-CN"],
    }
