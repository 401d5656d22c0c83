"""Protocol endpoints.  Each view is a line or two over Authlib; the authorization endpoint adds
the interaction policy (login, consent) and answers errors safely: to the client's redirect URI
only once the client and that URI are known good, otherwise on an error page."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlsplit

from authlib.oauth2.rfc6749 import scope_to_list
from authlib.oidc.core.errors import ConsentRequiredError, InteractionRequiredError, LoginRequiredError
from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from sqlalchemy import select

from ..extensions import csrf, db, serve_without_browser_state
from ..models import Consent
from ..security import add_form_target_source, allow_form_target
from ..services.accounts.resume import ask_login_then_resume, peek_resume_url, resume_after_login
from ..services.audit import events as audit
from ..services.accounts.sessions import current_login
from ..services.admin.clients import USER_TYPE_LABELS
from . import documents
from .claims import SCOPE_LABELS
from .discovery import provider_metadata
from .interaction import (UnmetAuthenticationRequirementsError, needed_interaction, requested_prompts,
                          resume_url_after_login)
from .keys import key_store
from .requests import expand_authorization_request
from .server import query_client, server

bp = Blueprint("oauth", __name__)

#: ``screen_hint`` (the name Auth0 gives it): the page a login that is needed starts on.  A
#: relying system's own 忘记密码？ / 忘记用户名？ start an authorization request with it, so the
#: recovery ends in a login that continues that request (an unknown hint: the login page)
SCREEN_HINTS = {"forgot_password": "recovery.password", "forgot_username": "recovery.username"}


@bp.route("/oauth/authorize", methods=["GET", "POST"])
def authorize():
    srv = server()
    expand_authorization_request(query_client)  # pushed (PAR) or signed (JAR) parameters
    login = current_login()
    user = login.user if login else None
    grant = srv.get_consent_grant(end_user=user)  # errors: errors.register_error_handlers
    client = grant.request.client
    scopes = set(scope_to_list(grant.request.scope or ""))
    prompts = requested_prompts()

    if request.method == "POST":
        csrf.protect()
        if user is None:
            return redirect(url_for("auth.login"))
        if request.form.get("decision") != "allow":
            audit.add("consent", "denied", actor=user.username, subject=user.sub, client_id=client.client_id)
            db.session.commit()
            return srv.create_authorization_response(grant_user=None, grant=grant)
        # the consent, its audit event and the code are one transaction, committed where the
        # code is saved: no consent recorded without its event, no reload of the user between
        _remember_consent(user.id, client.client_id, scopes)
        audit.add("consent", actor=user.username, subject=user.sub, client_id=client.client_id,
                  scope=" ".join(sorted(scopes)))
        response = srv.create_authorization_response(grant_user=user, grant=grant)
        db.session.commit()  # nothing left when the code was saved (no round trip); else the consent
        return response

    needed = needed_interaction(client, scopes, login)
    if needed is not None and needed.prompt == "create":
        # prompt=create: straight to registration; the wizard signs the new user in and resumes
        resume_after_login(resume_url_after_login())
        # a system that accepts units only is sent to 单位用户注册, any other to the personal one
        units_only = client.allowed_user_types == "unit"
        return redirect(url_for("register.unit_start" if units_only else "register.start"))
    if needed is not None and needed.prompt == "login":
        if "none" in prompts:
            raise LoginRequiredError(redirect_uri=grant.redirect_uri, state=grant.request.payload.state)
        ask_login_then_resume(resume_url_after_login())
        if hint := request.values.get("login_hint"):
            session["login_hint"] = hint[:32]
        endpoint = SCREEN_HINTS.get(request.values.get("screen_hint", ""))
        if endpoint:
            return redirect(url_for(endpoint))
        # the login page opens on the tab of the only kind of account this system accepts
        return redirect(url_for("auth.login", type="unit") if client.allowed_user_types == "unit"
                        else url_for("auth.login"))
    if needed is not None and needed.prompt == "user_type":
        if "none" in prompts:
            raise LoginRequiredError(redirect_uri=grant.redirect_uri, state=grant.request.payload.state)
        # no code: the page says which kind of account this system accepts, and offers to sign
        # in with one (the request resumes after that login)
        ask_login_then_resume(resume_url_after_login())
        accepted = client.allowed_user_types
        return render_template("oauth/user_type.html", client=client, accepted=USER_TYPE_LABELS[accepted],
                               current=USER_TYPE_LABELS[needed.reason],
                               login_tab="unit" if accepted == "unit" else None), 403
    if needed is not None and needed.prompt == "mfa":
        state = grant.request.payload.state
        if needed.reason == "no_factor":
            raise UnmetAuthenticationRequirementsError(redirect_uri=grant.redirect_uri, state=state)
        if "none" in prompts:
            raise InteractionRequiredError(redirect_uri=grant.redirect_uri, state=state)
        resume_after_login(resume_url_after_login())  # the step-up page comes back here
        return redirect(url_for("mfa.verify"))
    if needed is not None and needed.prompt == "consent":
        if "none" in prompts:
            raise ConsentRequiredError(redirect_uri=grant.redirect_uri, state=grant.request.payload.state)
        allow_form_target(grant.redirect_uri)  # 同意 leads on to the client's redirect URI
        return render_template(
            "oauth/consent.html",
            client=client,
            scopes=[(s, SCOPE_LABELS.get(s, s)) for s in sorted(scopes, key=list(SCOPE_LABELS).index)
                    if s in SCOPE_LABELS],
            action=request.full_path,
        )
    return srv.create_authorization_response(grant_user=user, grant=grant)


def pending_authorization_targets() -> list[str]:
    """The redirect URI of the authorization request this browser is in the middle of (kept
    while it logs in, registers or recovers access): the pages' forms lead on to it."""
    url = peek_resume_url()
    if not url or not url.startswith(url_for("oauth.authorize") + "?"):
        return []
    params = dict(parse_qsl(urlsplit(url).query))
    client = query_client(params.get("client_id", ""))
    if client is None:
        return []
    requested = params.get("redirect_uri")
    if requested:
        return [requested] if client.check_redirect_uri(requested) else []
    default = client.get_default_redirect_uri()
    return [default] if default else []


def _remember_consent(user_id: int, client_id: str, scopes: set[str]) -> None:
    """Add or widen the consent in the caller's transaction (the caller commits)."""
    consent = db.session.scalar(
        select(Consent).where(Consent.user_id == user_id, Consent.client_id == client_id)
    )
    now = datetime.now(timezone.utc)
    expires = now + timedelta(seconds=current_app.config["CONSENT_LIFETIME"])
    if consent is None:
        db.session.add(Consent(user_id=user_id, client_id=client_id, scope=" ".join(sorted(scopes)),
                               granted_at=now, expires_at=expires))
    else:
        consent.scope = " ".join(sorted(scopes | set(consent.scope.split())))
        consent.granted_at, consent.expires_at = now, expires


@bp.post("/oauth/token")
def token():
    return server().create_token_response()


@bp.post("/oauth/par")
def pushed_authorization_request():
    return server().create_endpoint_response("par")


@bp.route("/oauth/userinfo", methods=["GET", "POST"])
def userinfo():
    return server().create_endpoint_response("userinfo")


@bp.post("/oauth/revoke")
def revoke():
    return server().create_endpoint_response("revocation")


@bp.post("/oauth/introspect")
def introspect():
    return server().create_endpoint_response("introspection")


@bp.route("/oauth/logout", methods=["GET", "POST"])
def end_session():
    srv = server()
    req = srv.validate_endpoint_request("end_session")
    if req.needs_confirmation and request.method == "GET":
        # no id_token_hint: anyone could have sent the user here, so ask first (CSRF-protected)
        allow_form_target(req.redirect_uri)  # validated post-logout URI, where 退出 leads
        return render_template("oauth/logout_confirm.html", client=req.client, action=request.full_path)
    if req.needs_confirmation:
        csrf.protect()
    response = srv.create_endpoint_response("end_session", req)
    if req.frontchannel_logout_urls:
        # the relying systems' front-channel logout pages load here first; the page then goes on
        # to the post-logout redirect URI, if there is a valid one
        return render_template("auth/logged_out.html", client=req.client,
                               frontchannel_logout_urls=req.frontchannel_logout_urls, continue_to=req.redirect_uri)
    return response or render_template("auth/logged_out.html", client=req.client)


@bp.get("/.well-known/openid-configuration")
def discovery():
    # the document depends on settings only: body and headers prepared once per issuer
    cached = current_app.extensions.get("idp_discovery_json")
    if cached is None or cached[0] != current_app.config["ISSUER"]:
        body = current_app.json.dumps(provider_metadata()).encode()
        cached = (current_app.config["ISSUER"], body,
                  _public_headers(current_app.config["DISCOVERY_MAX_AGE"]))
        current_app.extensions["idp_discovery_json"] = cached
    return current_app.response_class(cached[1], headers=cached[2], mimetype="application/json")


@bp.get("/.well-known/jwks.json")
def jwks():
    # the key store hands out the same dict until the keys change: body and headers prepared
    # once per change.  A key rotated elsewhere signs here within SIGNING_KEYS_RECHECK_SECONDS:
    # a relying system may keep the JWKS no longer than that, or it would meet a kid its copy
    # does not have
    store = key_store()
    document = store.jwks()
    cached = current_app.extensions.get("idp_jwks_json")
    if cached is None or cached[0] is not document:
        cached = (document, current_app.json.dumps(document).encode(), _public_headers(store.recheck_seconds))
        current_app.extensions["idp_jwks_json"] = cached
    return current_app.response_class(cached[1], headers=cached[2], mimetype="application/json")


def _public_headers(max_age: float) -> tuple[tuple[str, str], ...]:
    return (("Cache-Control", f"public, max-age={int(max_age)}"), ("Access-Control-Allow-Origin", "*"))


#: endpoints called by clients with their own credentials, never by a browser: no server-side
#: session, no cookie, no Flask-Limiter check (none is declared on them)
PROTOCOL_ENDPOINTS = ("oauth.token", "oauth.userinfo", "oauth.revoke", "oauth.introspect",
                      "oauth.discovery", "oauth.jwks")


def init_app(app) -> None:
    """The protocol's pages and endpoints, once ``server.init_app`` built the server."""
    add_form_target_source(app, pending_authorization_targets)
    app.register_blueprint(bp)
    csrf.exempt(bp)  # protocol endpoints authenticate clients; the consent form checks CSRF itself
    serve_without_browser_state(
        app, *(rule.rule for rule in app.url_map.iter_rules() if rule.endpoint in PROTOCOL_ENDPOINTS))
    documents.init_app(app)  # outermost: keys its copies by the scheme the request came with
