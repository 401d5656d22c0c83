"""A stand-in OpenID Provider that answers correctly except for one chosen defect in the ID token,
so the exam service's verification can be shown to refuse each defect (our real provider never
produces them).  ``defect="none"`` is the control: the same double, nothing wrong, login works."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import secrets
import time
from urllib.parse import urlencode

from flask import Flask, abort, jsonify, redirect, request
from joserfc import jwt
from joserfc.jwk import RSAKey

DEFECTS = ("none", "bad_signature", "unknown_kid", "wrong_audience", "wrong_issuer", "wrong_nonce",
           "expired", "alg_none", "alg_hs256", "missing_id_token", "malformed")

SUB = "double-subject-0001"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@functools.cache
def _keys() -> tuple[RSAKey, RSAKey]:
    """The double's signing key and an impostor key (generated once per test run)."""
    return (RSAKey.generate_key(2048, private=True, parameters={"kid": "double-1", "use": "sig", "alg": "RS256"}),
            RSAKey.generate_key(2048, private=True))


def provider_double(issuer: str, client_id: str, client_secret: str, defect: str, *,
                    prompts: tuple[str, ...] = ("none", "login", "consent", "create")) -> Flask:
    assert defect in DEFECTS, defect
    app = Flask("provider_double")
    key, impostor = _keys()
    grants: dict[str, dict] = {}

    @app.get("/.well-known/openid-configuration")
    def discovery():
        return jsonify(
            issuer=issuer,
            authorization_endpoint=f"{issuer}/authorize",
            token_endpoint=f"{issuer}/token",
            userinfo_endpoint=f"{issuer}/userinfo",
            jwks_uri=f"{issuer}/jwks",
            end_session_endpoint=f"{issuer}/logout",
            response_types_supported=["code"],
            id_token_signing_alg_values_supported=["RS256"],
            code_challenge_methods_supported=["S256"],
            prompt_values_supported=list(prompts),
            authorization_response_iss_parameter_supported=True,
        )

    @app.get("/jwks")
    def jwks():
        return jsonify(keys=[key.as_dict(private=False)])

    @app.get("/authorize")
    def authorize():
        args = request.args
        if args.get("client_id") != client_id or args.get("code_challenge_method") != "S256":
            abort(400)
        code = secrets.token_urlsafe(16)
        grants[code] = {"nonce": args.get("nonce"), "challenge": args["code_challenge"],
                        "redirect_uri": args["redirect_uri"]}
        query = urlencode({"code": code, "state": args["state"], "iss": issuer})
        return redirect(f"{args['redirect_uri']}?{query}")

    @app.post("/token")
    def token():
        expected = "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return jsonify(error="invalid_client"), 401
        grant = grants.pop(request.form.get("code", ""), None)
        verifier = request.form.get("code_verifier", "")
        if grant is None or _b64(hashlib.sha256(verifier.encode()).digest()) != grant["challenge"]:
            return jsonify(error="invalid_grant"), 400
        access_token = secrets.token_urlsafe(24)
        body = {"access_token": access_token, "token_type": "Bearer", "expires_in": 600,
                "scope": "openid profile"}
        if defect != "missing_id_token":
            body["id_token"] = _id_token(grant["nonce"])
        return jsonify(body)

    @app.get("/userinfo")
    def userinfo():
        return jsonify(sub=SUB, name="替身用户")

    def _id_token(nonce: str) -> str:
        now = int(time.time())
        claims = {"iss": issuer, "sub": SUB, "aud": [client_id], "iat": now, "exp": now + 300,
                  "nonce": nonce, "name": "替身用户", "sid": "double-sid"}
        header = {"alg": "RS256", "kid": "double-1", "typ": "JWT"}
        signer = key
        if defect == "bad_signature":
            signer = impostor  # same kid, another key: the signature cannot verify
        elif defect == "unknown_kid":
            signer, header["kid"] = impostor, "rotated-away"
        elif defect == "wrong_audience":
            claims["aud"] = ["another-system"]
        elif defect == "wrong_issuer":
            claims["iss"] = "http://127.0.0.1:9/other-provider"
        elif defect == "wrong_nonce":
            claims["nonce"] = "not-the-nonce-we-were-sent"
        elif defect == "expired":
            claims["iat"], claims["exp"] = now - 7200, now - 3600
        elif defect == "alg_none":
            return f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{_b64(json.dumps(claims).encode())}."
        elif defect == "alg_hs256":
            # the classic confusion attack: an HMAC keyed with the public key's bytes
            signing_input = (f"{_b64(json.dumps({'alg': 'HS256', 'kid': 'double-1'}).encode())}."
                             f"{_b64(json.dumps(claims).encode())}")
            mac = hmac.new(key.as_pem(private=False), signing_input.encode(), "sha256").digest()
            return f"{signing_input}.{_b64(mac)}"
        elif defect == "malformed":
            return "not-a-jwt"
        return jwt.encode(header, claims, signer)

    return app
