"""Where an authorization request's parameters come from: the query, a pushed request (RFC 9126)
or a signed request object (RFC 9101).

Before Authlib and the interaction policy read the authorization endpoint's parameters,
``expand_authorization_request`` puts the pushed or signed ones in their place, so every step
downstream (grant validation, prompt, max_age, acr_values, id_token_hint, resume after login)
reads one set of parameters whatever their source.

A request object is single-use too when it carries a ``jti``: the first presentation claims it
(Redis SET NX, kept as long as the object could still be accepted); the browser that presented it
may present it again (the consent form posts the request once more) until a code is issued from
it, and no one may after that.  Its ``exp`` is required and at most ``REQUEST_OBJECT_MAX_LIFETIME``
away.

A pushed request is single-use: the first browser to open its ``request_uri`` claims it (the
pushed copy is deleted); that browser keeps it, bound to its session, through login or
registration until a code is issued, when it is spent.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time

from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc9101.errors import (
    InvalidRequestObjectError,
    InvalidRequestUriError,
    RequestUriNotSupportedError,
)
from flask import current_app, g, request, session
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from werkzeug.datastructures import ImmutableMultiDict

from ..extensions import redis_store
from ..models import Client
from ..services.accounts.resume import PUSHED_REQUESTS
from .access_tokens import issuer
from .dpop import InvalidDPoPProofError, check_jkt_parameter

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
REQUEST_OBJECT_ALGS = ["RS256", "PS256", "ES256"]
#: parameters that authenticate the client at the PAR endpoint: never part of the request
_CLIENT_AUTH_PARAMS = {"client_secret", "client_assertion", "client_assertion_type"}
#: JWT claims of a request object that are not authorization parameters
_JWT_CLAIMS = {"iss", "aud", "exp", "iat", "nbf", "jti"}
_SESSION_KEY = PUSHED_REQUESTS  # a login carries it over (services.accounts.resume)
_SESSION_MAX = 5
#: the request objects (their jti keys) this browser presented and no code has spent yet; after
#: a login the resumed request carries the object's parameters, not the object
_REQUEST_OBJECTS = "request_objects"
_JTI_CLAIMED, _JTI_SPENT = b"claimed", b"spent"


class PushedRequestRequired(InvalidRequestError):
    description = "This client must push its authorization requests (pushed authorization request required)."


# -- request objects (RFC 9101) ------------------------------------------------------------------
def request_object_params(client: Client, token: str, *, in_browser: bool = False) -> dict[str, str]:
    """The parameters of a request object the client signed with a key it registered; the only
    source of the request's parameters (RFC 9101 §6.3).  ``in_browser``: presented at the
    authorization endpoint (the browser may present it again until a code is issued), not pushed."""
    if not client.jwks:
        raise InvalidRequestObjectError(description="The client has no registered keys to verify a request object.")
    try:
        keys = KeySet.import_key_set(client.jwks)
        claims = jwt.decode(token, keys, algorithms=REQUEST_OBJECT_ALGS).claims
        jwt.JWTClaimsRegistry(
            leeway=current_app.config["REQUEST_OBJECT_LEEWAY"],
            iss={"essential": True, "value": client.client_id},
            aud={"essential": True, "value": issuer()},
            exp={"essential": True},
        ).validate(claims)
    except (JoseError, ValueError, TypeError):
        raise InvalidRequestObjectError() from None
    if claims.get("client_id", client.client_id) != client.client_id:
        raise InvalidRequestObjectError(description="client_id in the request object does not match.")
    if "request" in claims or "request_uri" in claims:
        raise InvalidRequestObjectError(description="A request object cannot carry request or request_uri.")
    _check_lifetime(claims)
    if "jti" in claims:
        _claim_jti(client, claims, in_browser)
    params = {k: v if isinstance(v, str) else json.dumps(v) if isinstance(v, (dict, list)) else str(v)
              for k, v in claims.items() if k not in _JWT_CLAIMS}
    params["client_id"] = client.client_id
    return params


def _check_lifetime(claims: dict) -> None:
    """exp no further than REQUEST_OBJECT_MAX_LIFETIME from the object's start (iat, nbf, or now):
    a long-lived object would be a long-lived credential to start a login with."""
    cfg = current_app.config
    issued = min([time.time()] + [claims[k] for k in ("iat", "nbf") if isinstance(claims.get(k), (int, float))])
    longest = cfg["REQUEST_OBJECT_MAX_LIFETIME"] + cfg["REQUEST_OBJECT_LEEWAY"]
    if not isinstance(claims["exp"], (int, float)) or claims["exp"] - issued > longest:
        raise InvalidRequestObjectError(
            description=f"The request object's lifetime exceeds {cfg['REQUEST_OBJECT_MAX_LIFETIME']} seconds.")


def _claim_jti(client: Client, claims: dict, in_browser: bool) -> None:
    """Single use of a request object's jti (see the module's docstring)."""
    jti = claims["jti"]
    if not isinstance(jti, str) or not jti:
        raise InvalidRequestObjectError(description="jti must be a non-empty string.")
    cfg = current_app.config
    key = f"jar:jti:{client.client_id}:{hashlib.sha256(jti.encode()).hexdigest()}"
    # kept while the object could be accepted: until its exp (and the clock skew), no longer
    # than the longest lifetime an object may have
    ttl = int(min(claims["exp"] - time.time(), cfg["REQUEST_OBJECT_MAX_LIFETIME"])) + cfg["REQUEST_OBJECT_LEEWAY"]
    presented = (session.get(_REQUEST_OBJECTS) or []) if in_browser else []
    if redis_store.set(key, _JTI_CLAIMED, nx=True, ex=max(ttl, 1)):
        if in_browser:
            session[_REQUEST_OBJECTS] = (presented + [key])[-_SESSION_MAX:]
    elif not (key in presented and redis_store.get(key) == _JTI_CLAIMED):
        raise InvalidRequestObjectError(description="The request object has already been used (jti).")
    if in_browser:
        g.idp_request_object = key


# -- pushed authorization requests (RFC 9126) ----------------------------------------------------
def push(client: Client, form, *, dpop_jkt: str | None = None) -> dict:
    """Store an authorization request the client pushed; the PAR endpoint's answer.
    ``dpop_jkt``: the key of a DPoP proof sent with the push, which binds the code to it."""
    params = {k: v for k, v in form.items() if k not in _CLIENT_AUTH_PARAMS}
    if "request_uri" in params:
        raise InvalidRequestError(description="request_uri is not allowed at the pushed authorization endpoint.")
    if params.get("client_id", client.client_id) != client.client_id:
        raise InvalidRequestError(description="client_id does not match the authenticated client.")
    if "request" in params:
        params = request_object_params(client, params["request"])
    params["client_id"] = client.client_id
    # checked now (RFC 9126 §2.1), so a mistake is the client's answer here, not a browser's page
    redirect_uri = params.get("redirect_uri")
    if not redirect_uri or not client.check_redirect_uri(redirect_uri):
        raise InvalidRequestError(description="redirect_uri is missing or not registered.")
    if params.get("response_type") != "code":
        raise InvalidRequestError(description="response_type must be code.")
    check_jkt_parameter(params.get("dpop_jkt"))
    if dpop_jkt is not None:
        if params.get("dpop_jkt", dpop_jkt) != dpop_jkt:  # RFC 9449 §10.1: both, then the same key
            raise InvalidDPoPProofError("dpop_jkt is not the thumbprint of the DPoP proof's key.")
        params["dpop_jkt"] = dpop_jkt
    lifetime = current_app.config["PAR_REQUEST_URI_LIFETIME"]
    key = secrets.token_urlsafe(32)
    redis_store.set(f"par:{key}", json.dumps({"client_id": client.client_id, "params": params}), ex=lifetime)
    return {"request_uri": REQUEST_URI_PREFIX + key, "expires_in": lifetime}


def _claim(key: str, client_id: str | None) -> dict[str, str]:
    claimed = session.get(_SESSION_KEY) or []
    raw = redis_store.get(f"par:claimed:{key}") if key in claimed else None
    if raw is None:
        raw = redis_store.getdel(f"par:{key}")  # the first browser takes it: single use
        if raw is None:
            raise InvalidRequestUriError(description="The request_uri is unknown, expired or already used.")
        redis_store.set(f"par:claimed:{key}", raw, ex=current_app.config["PAR_CLAIMED_LIFETIME"])
        session[_SESSION_KEY] = (claimed + [key])[-_SESSION_MAX:]
    stored = json.loads(raw)
    if stored["client_id"] != client_id:
        raise InvalidRequestUriError(description="The request_uri was pushed by another client.")
    return stored["params"]


def expand_authorization_request(query_client) -> None:
    """Replace the authorization endpoint's parameters with pushed or signed ones (see above);
    refuse a plain request from a client that must push."""
    args = request.args
    client_id = args.get("client_id")
    request_uri = args.get("request_uri")
    request_object = args.get("request")
    if not request_uri and not request_object:
        client = query_client(client_id) if client_id else None
        if client is not None and client.require_pushed_authorization_requests:
            raise PushedRequestRequired()
        return
    if request_uri:
        if not request_uri.startswith(REQUEST_URI_PREFIX):
            raise RequestUriNotSupportedError(description="Only request_uri values from the pushed authorization endpoint are accepted.")
        params = dict(_claim(request_uri[len(REQUEST_URI_PREFIX):], client_id))
        # coming back after login, the query drops the prompts already answered: only fewer
        if "prompt" in args and set(args["prompt"].split()) <= set(params.get("prompt", "").split()):
            params["prompt"] = args["prompt"]
        params["request_uri"] = request_uri
        g.idp_pushed_request = request_uri[len(REQUEST_URI_PREFIX):]
    else:
        client = query_client(client_id) if client_id else None
        if client is None:
            return  # Authlib answers invalid_client
        if client.require_pushed_authorization_requests:
            raise PushedRequestRequired()
        params = request_object_params(client, request_object, in_browser=True)
    request.args = ImmutableMultiDict(params)  # werkzeug's cached properties: read again from these
    request.__dict__.pop("values", None)


def spend_pushed_request() -> None:
    """A code is being issued: the pushed request or the request object it came from cannot be
    used again."""
    jti_key = g.pop("idp_request_object", None)
    if jti_key is not None:
        if redis_store.set(jti_key, _JTI_SPENT, xx=True, keepttl=True) is None:
            raise InvalidRequestObjectError(description="The request object has expired.")
        session[_REQUEST_OBJECTS] = [k for k in session.get(_REQUEST_OBJECTS) or [] if k != jti_key]
    key = g.pop("idp_pushed_request", None)
    if key is None:
        return
    if not redis_store.delete(f"par:claimed:{key}"):
        raise InvalidRequestUriError(description="The request_uri has already been used.")
    session[_SESSION_KEY] = [k for k in session.get(_SESSION_KEY) or [] if k != key]

