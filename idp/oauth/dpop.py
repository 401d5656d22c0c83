"""DPoP (RFC 9449): tokens bound to a key the client proves it holds.

A client sends a ``DPoP`` header — a JWT it signed with its own key, whose public half is in
the header (``jwk``) — with a request.  At the token endpoint the proof binds what is issued:
the access token carries ``cnf.jkt`` (the key's RFC 7638 thumbprint) and ``token_type: DPoP``,
and a public client's refresh token can then only be used with a proof by the same key.  At
userinfo a ``DPoP``-scheme token needs a fresh proof by that key that also hashes the token
(``ath``); a bound token presented as ``Bearer`` is refused.  ``dpop_jkt`` in an authorization
request (or a proof sent to the PAR endpoint) binds the code to a key the same way.

Authlib has no DPoP support: the proof checks of RFC 9449 §4.3 are here, with joserfc.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc6750 import InsufficientScopeError, InvalidTokenError
from flask import after_this_request, current_app, request
from joserfc import jwk, jwt
from joserfc.errors import JoseError
from joserfc.jws import JWSRegistry, extract_compact

from ..extensions import redis_store
from .access_tokens import AccessTokenValidator

PROOF_TYP = "dpop+jwt"
TOKEN_TYPE = "DPoP"
#: asymmetric algorithms accepted for proofs, and advertised (dpop_signing_alg_values_supported)
DPOP_SIGNING_ALGS = ("ES256", "PS256", "RS256", "Ed25519", "EdDSA")
_KEY_TYPES = {"ES256": "EC", "PS256": "RSA", "RS256": "RSA", "Ed25519": "OKP", "EdDSA": "OKP"}
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_RSA_MIN_BITS = 2048
_JKT_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # base64url of a SHA-256 digest


class _ProofRegistry(JWSRegistry):
    # the header carries the key: an RSA key of 4096 bits is ~1,100 bytes encoded
    max_header_length = 2048

    # joserfc warns on every use of "EdDSA" (RFC 9864 names it deprecated in favour of
    # "Ed25519"); clients still send it, and accepting it here is deliberate
    def get_alg(self, name: str):
        if name not in (self.allowed or ()):
            return super().get_alg(name)
        return self.algorithms[name]


_REGISTRY = _ProofRegistry(algorithms=list(DPOP_SIGNING_ALGS))


# -- errors ----------------------------------------------------------------------------------------
class InvalidDPoPProofError(OAuth2Error):
    error = "invalid_dpop_proof"
    description = "The DPoP proof is invalid."
    status_code = 400


class UseDPoPNonceError(OAuth2Error):
    """RFC 9449 §8: the proof lacks the server's current nonce; it is in the DPoP-Nonce header."""

    error = "use_dpop_nonce"
    description = "Use the nonce in the DPoP-Nonce header in the DPoP proof."
    status_code = 400


class DPoPResourceError(InvalidTokenError):
    """A refusal at a protected resource, as a ``DPoP`` challenge (RFC 9449 §7.1)."""

    def __init__(self, description: str | None = None, error: str = "invalid_token") -> None:
        super().__init__(description)
        self.error = error

    def get_headers(self):
        headers = super(InvalidTokenError, self).get_headers()
        challenge = (f'DPoP error="{self.error}", error_description="{self.get_error_description()}", '
                     f'algs="{" ".join(DPOP_SIGNING_ALGS)}"')
        headers.append(("WWW-Authenticate", challenge))
        return headers


def _refusal(exc: OAuth2Error) -> DPoPResourceError:
    return DPoPResourceError(exc.description, error=exc.error)


# -- nonces (RFC 9449 §8) --------------------------------------------------------------------------
# A nonce is an HMAC of the current time window: every node computes the same one without shared
# state; the current and the previous window's nonces are accepted.
def _nonce_for(window: int) -> str:
    secret = current_app.secret_key
    secret = secret.encode() if isinstance(secret, str) else secret
    mac = hmac.new(hashlib.sha256(b"dpop-nonce\0" + secret).digest(), str(window).encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def _window() -> int:
    return int(time.time()) // max(1, int(current_app.config["DPOP_NONCE_LIFETIME"]))


def current_nonce() -> str:
    return _nonce_for(_window())


def _nonce_is_fresh(value: object) -> bool:
    if not isinstance(value, str):
        return False
    window = _window()
    return any(hmac.compare_digest(value.encode(), _nonce_for(w).encode()) for w in (window, window - 1))


def _send_nonce() -> None:
    # every answer to a DPoP request carries the nonce to use next, success or error
    @after_this_request
    def add_nonce(response):
        response.headers["DPoP-Nonce"] = current_nonce()
        return response


# -- proofs (RFC 9449 §4.3) ------------------------------------------------------------------------
@dataclass(frozen=True)
class Proof:
    jkt: str  # RFC 7638 thumbprint of the proof's key


def _b64_sha256(value: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(value.encode()).digest()).rstrip(b"=").decode()


def _rsa_bits(public: dict) -> int:
    n = public.get("n")
    if not isinstance(n, str):
        return 0
    try:
        return int.from_bytes(base64.urlsafe_b64decode(n + "=" * (-len(n) % 4)), "big").bit_length()
    except ValueError:
        return 0


def _normal_url(url: str) -> str | None:
    """scheme://host[:port]/path, compared case-insensitively where RFC 3986 §6.2 allows; query
    and fragment ignored (RFC 9449 §4.3)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != {"http": 80, "https": 443}.get(scheme):
        host = f"{host}:{port}"
    return f"{scheme}://{host}{parts.path or '/'}"


def _endpoint_url() -> str:
    # the URL the provider publishes for this endpoint (discovery builds it from the issuer too),
    # not what a proxy in front made of it
    return current_app.config["ISSUER"].rstrip("/") + request.path


def presented_proof() -> str | None:
    # WSGI joins repeated headers with commas, which a compact JWT never holds
    values = [part.strip() for value in request.headers.getlist("DPoP") for part in value.split(",")]
    if len(values) > 1:
        raise InvalidDPoPProofError("More than one DPoP header.")
    return values[0] if values else None


def verify_proof(value: str, *, access_token: str | None = None) -> Proof:
    """Check a proof for the current request; raises InvalidDPoPProofError or UseDPoPNonceError.
    Its ``jti`` is spent last, so a proof refused for another reason can be corrected and sent
    again."""
    config = current_app.config
    if config["DPOP_REQUIRE_NONCE"]:
        _send_nonce()
    try:
        header = extract_compact(value.encode(), registry=_REGISTRY).protected
    except (JoseError, ValueError, TypeError):
        raise InvalidDPoPProofError("The DPoP proof is not a signed JWT.") from None
    if header.get("typ") != PROOF_TYP:
        raise InvalidDPoPProofError("The DPoP proof's typ must be dpop+jwt.")
    alg = header.get("alg")
    if alg not in DPOP_SIGNING_ALGS:
        raise InvalidDPoPProofError("The DPoP proof's alg is not supported.")
    public = header.get("jwk")
    if not isinstance(public, dict) or public.get("kty") != _KEY_TYPES[alg] or _PRIVATE_MEMBERS & set(public):
        raise InvalidDPoPProofError("The DPoP proof must carry the public key of its alg in jwk.")
    if public["kty"] == "RSA" and _rsa_bits(public) < _RSA_MIN_BITS:
        raise InvalidDPoPProofError("The DPoP proof's RSA key is too short.")
    try:
        key = jwk.import_key(public, public["kty"])
        claims = jwt.decode(value, key, registry=_REGISTRY).claims
    except (JoseError, ValueError, TypeError):
        raise InvalidDPoPProofError("The DPoP proof's signature does not verify.") from None

    jti, htm, htu, iat = (claims.get(name) for name in ("jti", "htm", "htu", "iat"))
    if not (isinstance(jti, str) and jti and isinstance(htm, str) and isinstance(htu, str)
            and isinstance(iat, (int, float)) and not isinstance(iat, bool)):
        raise InvalidDPoPProofError("The DPoP proof must have jti, htm, htu and iat.")
    if htm != request.method:
        raise InvalidDPoPProofError("The DPoP proof's htm is not the request's method.")
    if _normal_url(htu) != _normal_url(_endpoint_url()):
        raise InvalidDPoPProofError("The DPoP proof's htu is not this endpoint.")
    window = int(config["DPOP_IAT_WINDOW"])
    if abs(time.time() - iat) > window:
        raise InvalidDPoPProofError("The DPoP proof's iat is too far from the current time.")
    nonce = claims.get("nonce")
    if (nonce is not None or config["DPOP_REQUIRE_NONCE"]) and not _nonce_is_fresh(nonce):
        if not config["DPOP_REQUIRE_NONCE"]:
            _send_nonce()  # a client using nonces gets the current one even when they are optional
        raise UseDPoPNonceError()
    if access_token is not None:
        ath = claims.get("ath")
        if not isinstance(ath, str) or not hmac.compare_digest(ath.encode(), _b64_sha256(access_token).encode()):
            raise InvalidDPoPProofError("The DPoP proof's ath does not match the access token.")
    jkt = key.thumbprint()
    # single use: remembered as long as its iat can be accepted (a window either side of now)
    replay_key = "dpop-jti:" + _b64_sha256(f"{jkt}\0{jti}")
    if not redis_store.set(replay_key, 1, nx=True, ex=2 * window):
        raise InvalidDPoPProofError("The DPoP proof has been used before.")
    return Proof(jkt)


def check_jkt_parameter(value: object) -> None:
    """``dpop_jkt`` of an authorization request: a SHA-256 thumbprint."""
    if value is not None and not (isinstance(value, str) and _JKT_RE.match(value)):
        raise InvalidRequestError("dpop_jkt must be the base64url SHA-256 JWK thumbprint of the DPoP key.")


def pushed_request_key() -> str | None:
    """The key a pushed authorization request's code is bound to, from a DPoP proof sent to the
    PAR endpoint (RFC 9449 §10.1); None without one."""
    value = presented_proof()
    return verify_proof(value).jkt if value is not None else None


# -- the token endpoint ----------------------------------------------------------------------------
class DPoPBinding:
    """Grant extension: checks the token request's proof before the code or refresh token is
    spent, and leaves the key on the request (``bound_key``) for the token it pays for."""

    def __call__(self, grant) -> None:
        grant.register_hook("before_create_token_response", self.bind)
        grant.register_hook("after_validate_authorization_request_payload", self.check_authorization_request)

    @staticmethod
    def check_authorization_request(grant, *_) -> None:
        check_jkt_parameter(grant.request.payload.data.get("dpop_jkt"))

    @staticmethod
    def bind(grant) -> None:
        req = grant.request
        client = req.client
        value = presented_proof()
        jkt = verify_proof(value).jkt if value is not None else None
        if jkt is None and client.dpop_bound_access_tokens:
            raise InvalidDPoPProofError("This client must send a DPoP proof with its token requests.")
        code = req.authorization_code
        if code is not None and code.dpop_jkt and code.dpop_jkt != jkt:
            raise InvalidGrantError("The code is bound to another DPoP key (dpop_jkt).")
        refresh = getattr(req.refresh_token, "row", None)
        if refresh is not None and refresh.dpop_jkt and client.is_public and refresh.dpop_jkt != jkt:
            # a public client's refresh token is sender-constrained: its own key only (RFC 9449 §5)
            raise InvalidGrantError("The refresh token is bound to another DPoP key.")
        req.dpop_jkt = jkt


def bound_key(req) -> str | None:
    """The thumbprint the tokens of this token request are bound to, or None (Bearer)."""
    return getattr(req, "dpop_jkt", None)


def confirmation(req) -> dict | None:
    """The access token's ``cnf`` claim (RFC 7800, RFC 9449 §6)."""
    jkt = bound_key(req)
    return {"jkt": jkt} if jkt else None


def confirmation_claims(subject) -> dict:
    """The access token generator's claim extension: ``cnf`` when the token request bound the
    tokens to a DPoP key (``subject.request`` is the grant's request; None outside a grant)."""
    cnf = confirmation(subject.request) if subject.request is not None else None
    return {"cnf": cnf} if cnf else {}


# -- protected resources (userinfo) ------------------------------------------------------------------
class BearerTokenValidator(AccessTokenValidator):
    """``Authorization: Bearer``: refuses a DPoP-bound token, whose whole point is that a copy
    of it is useless without the key (RFC 9449 §7.2)."""

    def validate_token(self, token, scopes, request):
        if token is not None and "cnf" in token.claims:
            raise DPoPResourceError("A DPoP-bound access token must be sent with the DPoP scheme and a proof.")
        super().validate_token(token, scopes, request)


class DPoPTokenValidator(AccessTokenValidator):
    """``Authorization: DPoP``: the token as for Bearer, then a proof for this request by the
    key it is bound to, hashing the token (``ath``)."""

    TOKEN_TYPE = "dpop"

    def validate_token(self, token, scopes, request):
        try:
            super().validate_token(token, scopes, request)
        except InsufficientScopeError:
            raise
        except InvalidTokenError as exc:
            raise DPoPResourceError(exc.description) from None
        jkt = (token.claims.get("cnf") or {}).get("jkt")
        if not jkt:
            raise DPoPResourceError("The access token is not DPoP-bound; send it with the Bearer scheme.")
        token_string = request.headers["Authorization"].split(None, 1)[1].strip()
        try:
            value = presented_proof()
            if value is None:
                raise InvalidDPoPProofError("A DPoP proof is required.")
            proof = verify_proof(value, access_token=token_string)
        except (InvalidDPoPProofError, UseDPoPNonceError) as exc:
            raise _refusal(exc) from None
        if proof.jkt != jkt:
            raise DPoPResourceError("The DPoP proof's key is not the key the token is bound to.",
                                    error="invalid_dpop_proof")
