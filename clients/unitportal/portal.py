"""The pages of 单位网上办事 and its OpenID Connect client (Authlib, through discovery).

Authlib checks state, PKCE, the token response and the ID token (signature against the JWKS,
``iss``, ``aud``, expiry, nonce); this module adds the response's ``iss`` (RFC 9207) and refuses
an account that is not a unit, in case the platform was told to send persons here too.
"""

from __future__ import annotations

import secrets
from typing import Any

import requests
from authlib.integrations.base_client.errors import MismatchingStateError, OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Blueprint, Flask, current_app, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from joserfc.errors import JoseError

bp = Blueprint("unitportal", __name__)
UNIT_TYPES = {"enterprise": "企业", "organ": "机关", "institution": "事业单位", "social_group": "社会团体",
              "private_non_enterprise": "民办非企业单位", "individual_business": "个体工商户", "other": "其他"}


class LoginFailed(Exception):
    title = "登录失败"
    message = "登录未能完成，请返回单位网上办事重新登录。"
    status = 400

    def __init__(self, detail: str, message: str | None = None, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.message = message or self.message
        self.status = status or self.status


class LogoutForm(FlaskForm):
    pass


def init_app(app: Flask) -> None:
    oauth = OAuth()
    oauth.init_app(app)  # login state (nonce, PKCE verifier) in the server-side session
    app.extensions["unitportal_platform"] = oauth.register(
        "platform",
        client_id=app.config["CLIENT_ID"],
        client_secret=app.config["CLIENT_SECRET"],
        server_metadata_url=f"{app.config['ISSUER']}/.well-known/openid-configuration",
        client_kwargs={"scope": app.config["SCOPE"], "code_challenge_method": "S256",
                       "token_endpoint_auth_method": "client_secret_basic",
                       "default_timeout": app.config["HTTP_TIMEOUT"]},
    )


def platform():
    return current_app.extensions["unitportal_platform"]


def _metadata() -> dict[str, Any]:
    try:
        meta = platform().load_server_metadata()
    except (requests.RequestException, ValueError) as exc:
        raise LoginFailed(f"discovery: {type(exc).__name__}", "统一用户平台暂时无法访问，请稍后再试。", 502) from exc
    if meta.get("issuer") != current_app.config["ISSUER"]:
        platform().server_metadata.pop("_loaded_at", None)
        raise LoginFailed(f"discovery names issuer {meta.get('issuer')!r}", "统一用户平台暂时无法访问，请稍后再试。", 502)
    return meta


def mask_code(code: str) -> str:
    """统一社会信用代码 on screen: the first four and the last four characters."""
    return code[:4] + "*" * (len(code) - 8) + code[-4:] if len(code) > 8 else code


def mask_name(name: str) -> str:
    return name[:1] + "*" * (len(name) - 1) if len(name) > 1 else name


@bp.get("/")
def index():
    return render_template("unitportal/home.html", unit=session.get("unit"), logout_form=LogoutForm(),
                           links={"register": url_for("unitportal.register"), "login": url_for("unitportal.login")})


@bp.get("/login")
def login():
    """单位用户登录: the platform's login page (it opens on 单位用户登录 for a units-only system)."""
    _metadata()
    return platform().authorize_redirect(current_app.config["REDIRECT_URI"])


@bp.get("/register")
def register():
    """单位用户注册 at the platform (``prompt=create``); the unit comes back signed in."""
    params = {"prompt": "create"} if "create" in _metadata().get("prompt_values_supported", []) else {}
    return platform().authorize_redirect(current_app.config["REDIRECT_URI"], **params)


@bp.get("/auth/callback")
def callback():
    client, args = platform(), request.args
    meta = _metadata()
    if args.get("iss") != meta["issuer"] and (args.get("iss") or meta.get("authorization_response_iss_parameter_supported")):
        raise LoginFailed(f"iss {args.get('iss')!r}", "登录响应并非来自统一用户平台，已拒绝。")
    if args.get("error"):
        raise LoginFailed(f"{args['error'][:64]}", "统一用户平台未能完成登录，请重新登录。")
    try:
        token = client.authorize_access_token(claims_options={
            "iss": {"essential": True, "value": meta["issuer"]}, "aud": {"essential": True, "value": client.client_id}})
        claims = dict(token["userinfo"])
        info = client.userinfo(token=token)
    except MismatchingStateError as exc:
        raise LoginFailed("state mismatch", "登录请求已失效，请重新登录。") from exc
    except (OAuthError, JoseError, KeyError) as exc:
        raise LoginFailed(f"token or id_token: {type(exc).__name__}") from exc
    except (requests.RequestException, ValueError) as exc:
        raise LoginFailed(f"platform: {type(exc).__name__}", "统一用户平台暂时无法访问，请稍后再试。", 502) from exc
    if info.get("sub") == claims["sub"]:
        claims.update(info)
    if claims.get("user_type") != "unit":
        raise LoginFailed("not a unit account", "单位网上办事仅供单位用户使用，请使用单位用户账号登录。", 403)
    session.clear()  # a fresh session for the login (no fixation)
    session["unit"] = {
        "unit_name": claims.get("unit_name") or "",
        "uscc": mask_code(claims.get("uscc") or ""),
        "unit_type": UNIT_TYPES.get(claims.get("unit_type") or "", "—"),
        "handler_name": mask_name(claims.get("handler_name") or ""),
    }
    session["id_token"] = token["id_token"]
    return redirect(url_for("unitportal.index"))


@bp.post("/logout")
def logout():
    """退出: this portal's session, then the platform's (RP-initiated logout, posted so the ID
    token stays out of URLs)."""
    if not LogoutForm().validate_on_submit():
        return redirect(url_for("unitportal.index"))
    id_token = session.get("id_token")
    session.clear()
    try:
        endpoint = _metadata().get("end_session_endpoint") if id_token else None
    except LoginFailed:
        endpoint = None  # the platform is unreachable: this portal's session has ended all the same
    if not endpoint:
        return render_template("unitportal/message.html", title="已退出", message="您已退出单位网上办事。")
    state = secrets.token_urlsafe(24)
    session["logout_state"] = state
    fields = {"id_token_hint": id_token, "client_id": platform().client_id, "state": state,
              "post_logout_redirect_uri": current_app.config["POST_LOGOUT_REDIRECT_URI"]}
    return render_template("unitportal/logout.html", action=endpoint, fields=fields)


@bp.get("/logged-out")
def logged_out():
    expected = session.pop("logout_state", None)
    both = bool(expected) and secrets.compare_digest(expected, request.args.get("state", ""))
    return render_template("unitportal/message.html", title="已退出",
                           message="您已退出单位网上办事和统一用户平台。" if both else "您已退出单位网上办事。")


@bp.get("/healthz")
def health():
    return {"status": "ok"}
