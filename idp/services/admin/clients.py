"""Relying systems (应用系统): validation, creation, editing, disabling and secret rotation,
shared by the CLI and the admin console.

Every change is checked whole first (``normalise_spec``) and then written in one transaction
with its audit event.  A secret is returned once and only its keyed digest is stored.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import func, or_, select

from ...errors import InvalidField, UserError
from ...extensions import db
from ...models import Client, Token
from ...models.client import ClientType
from ..accounts.sessions import ACR_MFA
from ..audit import events as audit
from .staff import CLI_ACTOR, Actor, check_reason
from .client_secrets import set_client_secret

# 允许登录的用户类型 of a relying system (the exam service and every system before units: persons)
USER_TYPE_LABELS: dict[str, str] = {"personal": "个人用户", "unit": "单位用户", "both": "个人用户和单位用户"}
USER_TYPE_CHOICES: dict[str, str] = {"personal": "个人", "unit": "单位", "both": "两者"}  # the console's words
SUPPORTED_SCOPES = ("openid", "profile", "phone", "realname", "unit", "offline_access")
SUPPORTED_GRANTS = ("authorization_code", "refresh_token", "client_credentials")
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
SECRET_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$")
# bounds an administrator may set; empty means the provider's default (config.py)
ACCESS_TOKEN_LIFETIME_RANGE = (60, 24 * 3600)
REFRESH_TOKEN_LIFETIME_RANGE = (3600, 180 * 24 * 3600)
MAX_SECRET_OVERLAP = timedelta(days=30)

# 最低认证级别: the acr a relying system may require of every login (empty: none beyond the
# password).  Only levels a login can be brought up to are offered: a second factor.
MIN_ACR_LABELS: dict[str, str] = {"": "不要求（密码登录即可）", ACR_MFA: "第二因素（urn:hrss:acr:mfa）"}

CLIENT_TYPES: dict[str, str] = {
    ClientType.CONFIDENTIAL.value: "机密客户端（服务端 Web 应用，持有密钥）",
    ClientType.PUBLIC.value: "公开客户端（单页或移动应用，使用 PKCE）",
    ClientType.SERVICE.value: "服务账户（系统间调用，client_credentials）",
}
GRANT_LABELS: dict[str, str] = {
    "authorization_code": "授权码（authorization_code）",
    "refresh_token": "刷新令牌（refresh_token）",
    "client_credentials": "客户端凭证（client_credentials）",
}
AUTH_METHOD_LABELS: dict[str, str] = {
    "client_secret_basic": "client_secret_basic（HTTP Basic 传递密钥）",
    "client_secret_post": "client_secret_post（表单传递密钥）",
    "private_key_jwt": "private_key_jwt（应用系统私钥签名）",
    "none": "none（公开客户端，仅 PKCE）",
}


class ClientNotFound(UserError):
    message = "应用系统不存在"
    status = 404


class ClientAlreadyDisabled(UserError):
    message = "该应用系统已停用"
    status = 409


class ClientAlreadyEnabled(UserError):
    message = "该应用系统已启用"
    status = 409


class ClientHasNoSecret(UserError):
    message = "该应用系统不使用客户端密钥（公开客户端或 private_key_jwt），无需轮换密钥"
    status = 409


class SecretOverlapInvalid(InvalidField):
    message = f"旧密钥保留时间须在0到{MAX_SECRET_OVERLAP.days}天之间"
    field = "overlap"


@dataclass
class ClientSpec:
    name: str
    client_type: str = ClientType.CONFIDENTIAL.value
    redirect_uris: list[str] = field(default_factory=list)
    post_logout_redirect_uris: list[str] = field(default_factory=list)
    backchannel_logout_uri: str | None = None
    scope: str = "openid profile"
    grant_types: list[str] | None = None
    token_endpoint_auth_method: str | None = None
    first_party: bool = False
    client_id: str | None = None
    jwks: dict | None = None
    access_token_lifetime: int | None = None
    refresh_token_lifetime: int | None = None
    description: str | None = None
    contacts: str | None = None  # where its users turn (phone, mail), one per line; shown on its users' pages
    allowed_user_types: str = "personal"  # 允许登录的用户类型: personal, unit or both
    subject_type: str = "public"  # or "pairwise": a sub of its own per sector (OpenID Connect Core 8.1)
    sector_identifier: str | None = None  # the sector's host; default: the host all redirect URIs share
    require_pushed_authorization_requests: bool = False  # RFC 9126
    frontchannel_logout_uri: str | None = None  # OpenID Connect Front-Channel Logout 1.0
    frontchannel_logout_session_required: bool = False  # iss and sid on that URI
    min_acr: str | None = None  # 最低认证级别: enforced on every authorization request
    dpop_bound_access_tokens: bool = False  # RFC 9449: every token request must carry a DPoP proof


CONTACTS_MAX_LENGTH = 300
SUBJECT_TYPES = ("public", "pairwise")
_SECTOR_RE = re.compile(r"^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")


def _resolve_sector(spec: ClientSpec) -> None:
    """A pairwise client's sector: the host named explicitly, else the one host all its redirect
    URIs share (OpenID Connect Core 8.1; a sector_identifier_uri is not fetched)."""
    if spec.subject_type not in SUBJECT_TYPES:
        raise InvalidField("用户标识类型须为 public 或 pairwise", field="subject_type")
    sector = (spec.sector_identifier or "").strip().lower() or None
    if spec.subject_type == "public":
        spec.sector_identifier = None
        return
    if sector is None:
        hosts = {(urlsplit(uri).hostname or "").lower() for uri in spec.redirect_uris}
        if len(hosts) != 1 or not next(iter(hosts)):
            raise InvalidField("回调地址不在同一主机上，请填写扇区标识（主机名）", field="sector_identifier")
        sector = hosts.pop()
    if not _SECTOR_RE.match(sector):
        raise InvalidField("扇区标识须为主机名，例如 exam.example.gov.cn", field="sector_identifier")
    spec.sector_identifier = sector


def redirect_uri_problem(uri: str, label: str = "回调地址") -> str | None:
    """https only (http allowed on loopback for development), absolute, no fragment, no wildcard."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018  (raises on a malformed port)
    except ValueError:
        return f"{label}格式不正确：{uri}"
    if "*" in uri:
        return f"{label}不能包含通配符：{uri}"
    if parts.fragment or "#" in uri:
        return f"{label}不能包含 # 片段：{uri}"
    if any(ch.isspace() for ch in uri) or parts.username is not None or parts.password is not None:
        return f"{label}格式不正确：{uri}"
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return None
    return f"{label}须为 https 地址（本机调试可用 http://127.0.0.1）：{uri}"


def _unique(values: list[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        value = value.strip()
        if value and value not in out:
            out.append(value)
    return out


def _check_lifetime(value: int | None, bounds: tuple[int, int], label: str, field_name: str) -> None:
    if value is None:
        return
    low, high = bounds
    if not low <= value <= high:
        raise InvalidField(f"{label}须在{low}到{high}秒之间（留空使用默认值）", field=field_name)


def _check_frontchannel(spec: ClientSpec) -> None:
    """Front-channel logout URI: absolute, https (http on loopback), no fragment (OpenID Connect
    Front-Channel Logout 1.0 §2); a query is allowed, iss and sid are added to it."""
    spec.frontchannel_logout_uri = (spec.frontchannel_logout_uri or "").strip() or None
    spec.frontchannel_logout_session_required = bool(spec.frontchannel_logout_session_required)
    uri = spec.frontchannel_logout_uri
    if uri is None:
        return
    if problem := redirect_uri_problem(uri, "前端登出地址"):
        raise InvalidField(problem, field="frontchannel_logout_uri")
    if len(uri) > 512 or any(c in uri for c in ";,'\"\\"):
        raise InvalidField(f"前端登出地址格式不正确：{uri}", field="frontchannel_logout_uri")


def _check_jwks(jwks: dict | None) -> None:
    """Public keys only, each one importable: a private key pasted by mistake is refused, not
    stored (it would let anyone who reads the database impersonate the relying system)."""
    if jwks is None:
        return
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys:
        raise InvalidField("公钥须为 JWKS 格式：{\"keys\": [...]}", field="jwks")
    try:
        key_set = KeySet.import_key_set(jwks)
    except (JoseError, ValueError, TypeError, KeyError):
        raise InvalidField("公钥（JWKS）无法解析，请检查格式", field="jwks") from None
    if any(key.is_private for key in key_set.keys) or any("d" in k for k in keys if isinstance(k, dict)):
        raise InvalidField("JWKS 中含有私钥，只能登记公钥", field="jwks")


def parse_jwks(text: str | None) -> dict | None:
    """The JWKS an administrator pasted (or None for an empty field)."""
    if not (text or "").strip():
        return None
    try:
        value = json.loads(text)
    except ValueError:
        raise InvalidField("公钥（JWKS）不是有效的 JSON", field="jwks") from None
    if isinstance(value, dict) and "keys" not in value and "kty" in value:
        value = {"keys": [value]}  # a single JWK is accepted as a set of one
    return value


def normalise_spec(spec: ClientSpec) -> ClientSpec:
    spec.name = spec.name.strip()
    if not spec.name:
        raise InvalidField("请填写应用系统名称", field="name")
    if len(spec.name) > 100:
        raise InvalidField("应用系统名称不能超过100个字", field="name")
    if spec.client_id is not None and not CLIENT_ID_RE.match(spec.client_id):
        raise InvalidField("client_id 须为3–64位字母、数字、点、下划线或连字符", field="client_id")
    spec.redirect_uris = _unique(spec.redirect_uris)
    spec.post_logout_redirect_uris = _unique(spec.post_logout_redirect_uris)
    spec.backchannel_logout_uri = (spec.backchannel_logout_uri or "").strip() or None
    spec.grant_types = _unique(spec.grant_types or []) or None
    if spec.client_type not in {t.value for t in ClientType}:
        raise InvalidField("应用类型无效", field="client_type")
    scopes = spec.scope.split()
    spec.scope = " ".join(scopes)
    unknown = [s for s in scopes if s not in SUPPORTED_SCOPES]
    if unknown:
        raise InvalidField(f"不支持的授权范围：{' '.join(unknown)}", field="scope")
    if spec.client_type == ClientType.SERVICE.value:
        spec.grant_types = ["client_credentials"]
        spec.redirect_uris = []
    elif not spec.grant_types:
        spec.grant_types = ["authorization_code", "refresh_token"]
    bad = [g for g in spec.grant_types if g not in SUPPORTED_GRANTS]
    if bad:
        raise InvalidField(f"不支持的授权方式：{' '.join(bad)}", field="grant_types")
    if spec.client_type == ClientType.PUBLIC.value:
        spec.token_endpoint_auth_method = "none"
        if "client_credentials" in spec.grant_types:
            raise InvalidField("公开客户端不能使用 client_credentials", field="grant_types")
    elif not spec.token_endpoint_auth_method or spec.token_endpoint_auth_method == "none":
        spec.token_endpoint_auth_method = "client_secret_basic"
    if spec.token_endpoint_auth_method not in AUTH_METHODS:
        raise InvalidField("客户端认证方式无效", field="token_endpoint_auth_method")
    if spec.token_endpoint_auth_method == "private_key_jwt" and not spec.jwks:
        raise InvalidField("private_key_jwt 需要登记应用系统的公钥（JWKS）", field="jwks")
    if spec.token_endpoint_auth_method != "private_key_jwt":
        spec.jwks = None
    _check_jwks(spec.jwks)
    if "authorization_code" in spec.grant_types and not spec.redirect_uris:
        raise InvalidField("请至少登记一个回调地址", field="redirect_uris")
    for uri in spec.redirect_uris:
        if problem := redirect_uri_problem(uri):
            raise InvalidField(problem, field="redirect_uris")
    for uri in spec.post_logout_redirect_uris:
        if problem := redirect_uri_problem(uri, "退出后回调地址"):
            raise InvalidField(problem, field="post_logout_redirect_uris")
    if spec.backchannel_logout_uri and (problem := redirect_uri_problem(spec.backchannel_logout_uri, "后端登出通知地址")):
        raise InvalidField(problem, field="backchannel_logout_uri")
    _check_frontchannel(spec)
    spec.min_acr = (spec.min_acr or "").strip() or None
    if spec.min_acr is not None and spec.min_acr not in MIN_ACR_LABELS:
        raise InvalidField(f"最低认证级别须为 {ACR_MFA} 或留空", field="min_acr")
    _check_lifetime(spec.access_token_lifetime, ACCESS_TOKEN_LIFETIME_RANGE, "访问令牌有效期", "access_token_lifetime")
    _check_lifetime(spec.refresh_token_lifetime, REFRESH_TOKEN_LIFETIME_RANGE, "刷新令牌有效期", "refresh_token_lifetime")
    spec.description = (spec.description or "").strip() or None
    if spec.description and len(spec.description) > 500:
        raise InvalidField("说明不能超过500个字", field="description")
    _resolve_sector(spec)
    spec.require_pushed_authorization_requests = bool(spec.require_pushed_authorization_requests)
    spec.dpop_bound_access_tokens = bool(spec.dpop_bound_access_tokens)
    lines = [line.strip() for line in (spec.contacts or "").splitlines()]
    spec.contacts = "\n".join(line for line in lines if line) or None
    if spec.contacts and len(spec.contacts) > CONTACTS_MAX_LENGTH:
        raise InvalidField(f"联系方式不能超过{CONTACTS_MAX_LENGTH}个字", field="contacts")
    if spec.allowed_user_types not in USER_TYPE_LABELS:
        raise InvalidField("请选择允许登录的用户类型", field="allowed_user_types")
    return spec


def create_client(spec: ClientSpec, *, actor: Actor = CLI_ACTOR, reason: str | None = None) -> tuple[Client, str | None]:
    """Register a relying system; returns it and its secret (None for clients without one).
    ``reason`` is required from the admin console, optional for the bootstrap CLI."""
    actor.require("clients.write")
    details = {"reason": check_reason(reason)} if reason is not None else {}
    spec = normalise_spec(spec)
    client_id = spec.client_id or secrets.token_urlsafe(16)
    if db.session.scalar(select(Client).where(Client.client_id == client_id)):
        raise InvalidField("client_id 已存在", field="client_id")
    client = Client(
        client_id=client_id,
        name=spec.name,
        description=spec.description,
        contacts=spec.contacts,
        allowed_user_types=spec.allowed_user_types,
        client_type=spec.client_type,
        first_party=spec.first_party,
        redirect_uris=spec.redirect_uris,
        post_logout_redirect_uris=spec.post_logout_redirect_uris,
        backchannel_logout_uri=spec.backchannel_logout_uri,
        scope=spec.scope,
        grant_types=spec.grant_types,
        token_endpoint_auth_method=spec.token_endpoint_auth_method,
        jwks=spec.jwks,
        access_token_lifetime=spec.access_token_lifetime,
        refresh_token_lifetime=spec.refresh_token_lifetime,
        subject_type=spec.subject_type,
        sector_identifier=spec.sector_identifier,
        require_pushed_authorization_requests=spec.require_pushed_authorization_requests,
        frontchannel_logout_uri=spec.frontchannel_logout_uri,
        frontchannel_logout_session_required=spec.frontchannel_logout_session_required,
        min_acr=spec.min_acr,
        dpop_bound_access_tokens=spec.dpop_bound_access_tokens,
    )
    secret = None
    if spec.token_endpoint_auth_method in SECRET_AUTH_METHODS:
        secret = set_client_secret(client)
    db.session.add(client)
    audit.add("client.created", actor=actor.username, subject=client_id, client_id=client_id, **details)
    db.session.commit()
    return client, secret


# -- the admin console and the CLI ---------------------------------------------------------------
def get_client(client_id: str) -> Client:
    client = db.session.scalar(select(Client).where(Client.client_id == client_id))
    if client is None:
        raise ClientNotFound()
    return client


def list_clients(search: str | None = None, *, status: str | None = None) -> list[Client]:
    """Relying systems by name, newest first; ``search`` matches the name or the client_id,
    ``status`` is ``enabled`` or ``disabled``."""
    query = select(Client).order_by(Client.created_at.desc(), Client.id.desc())
    if search and search.strip():
        term = search.strip()
        query = query.where(or_(Client.name.contains(term, autoescape=True),
                                Client.client_id.contains(term, autoescape=True)))
    if status == "enabled":
        query = query.where(Client.enabled.is_(True))
    elif status == "disabled":
        query = query.where(Client.enabled.is_(False))
    return list(db.session.scalars(query))


def count_by_state() -> dict[bool, int]:
    """Relying systems by ``enabled`` (the console's front page)."""
    return dict(db.session.execute(select(Client.enabled, func.count()).group_by(Client.enabled)).all())


def spec_of(client: Client) -> ClientSpec:
    """The editable settings of a client, as a spec (the edit form and ``clients update`` start
    from it and replace what they change)."""
    return ClientSpec(
        name=client.name,
        client_type=client.client_type,
        redirect_uris=list(client.redirect_uris or []),
        post_logout_redirect_uris=list(client.post_logout_redirect_uris or []),
        backchannel_logout_uri=client.backchannel_logout_uri,
        scope=client.scope,
        grant_types=list(client.grant_types or []),
        token_endpoint_auth_method=client.token_endpoint_auth_method,
        first_party=client.first_party,
        client_id=client.client_id,
        jwks=client.jwks,
        access_token_lifetime=client.access_token_lifetime,
        refresh_token_lifetime=client.refresh_token_lifetime,
        description=client.description,
        contacts=client.contacts,
        allowed_user_types=client.allowed_user_types or "personal",
        subject_type=client.subject_type or "public",
        sector_identifier=client.sector_identifier,
        require_pushed_authorization_requests=bool(client.require_pushed_authorization_requests),
        frontchannel_logout_uri=client.frontchannel_logout_uri,
        frontchannel_logout_session_required=bool(client.frontchannel_logout_session_required),
        min_acr=client.min_acr,
        dpop_bound_access_tokens=bool(client.dpop_bound_access_tokens),
    )


# settings copied from a spec onto the client, in the order the audit event names them
_EDITABLE = ("name", "description", "client_type", "redirect_uris", "post_logout_redirect_uris",
             "backchannel_logout_uri", "scope", "grant_types", "token_endpoint_auth_method", "first_party",
             "jwks", "access_token_lifetime", "refresh_token_lifetime", "contacts", "allowed_user_types",
             "subject_type", "sector_identifier", "require_pushed_authorization_requests",
             "frontchannel_logout_uri", "frontchannel_logout_session_required", "min_acr",
             "dpop_bound_access_tokens")


@dataclass(frozen=True)
class ClientChange:
    client: Client
    changed: list[str]
    #: a new secret when the change made the client confidential (shown once), else None
    secret: str | None = None
    revoked_tokens: int = 0


def update_client(client_id: str, spec: ClientSpec, *, actor: Actor = CLI_ACTOR, reason: str) -> ClientChange:
    """Replace the settings of a client (its client_id never changes).

    Tokens already issued with a scope the client may no longer ask for are revoked, so taking
    ``realname`` away from a system takes it away now, not when its refresh tokens expire.  A
    client that becomes confidential gets a secret (returned once); one that stops using a
    secret loses it.
    """
    actor.require("clients.write")
    reason = check_reason(reason)
    client = get_client(client_id)
    spec = normalise_spec(replace(spec, client_id=client.client_id))
    before = spec_of(client)
    changed = [name for name in _EDITABLE if getattr(before, name) != getattr(spec, name)]
    if not changed:
        return ClientChange(client, [])
    removed_scopes = set(before.scope.split()) - set(spec.scope.split())
    for name in changed:
        setattr(client, name, getattr(spec, name))
    secret = None
    if spec.token_endpoint_auth_method in SECRET_AUTH_METHODS and not client.secret_digest:
        secret = set_client_secret(client)
    elif spec.token_endpoint_auth_method not in SECRET_AUTH_METHODS:
        client.secret_digest = client.previous_secret_digest = client.previous_secret_expires_at = None
    revoked = 0
    if removed_scopes:
        from ..accounts.revocation import revoke_tokens

        client.tokens_revoked_before = datetime.now(timezone.utc)  # its own tokens carry no row

        live = db.session.execute(
            select(Token.id, Token.scope).where(Token.client_id == client.client_id, Token.revoked_at.is_(None))
        ).all()
        ids = [row.id for row in live if removed_scopes & set(row.scope.split())]
        if ids:
            revoked = revoke_tokens(Token.id.in_(ids))
    audit.add("client.updated", actor=actor.username, subject=client.client_id, client_id=client.client_id,
              reason=reason, changed=changed, revoked_tokens=revoked,
              **({"secret_issued": True} if secret else {}))
    db.session.commit()
    return ClientChange(client, changed, secret, revoked)


def disable_client(client_id: str, *, actor: Actor = CLI_ACTOR, reason: str) -> int:
    """Stop a relying system: the OAuth layer refuses a disabled client everywhere (authorize,
    token, introspection), and every token it holds is revoked now.  Returns that count."""
    from ..accounts.revocation import revoke_tokens

    actor.require("clients.write")
    reason = check_reason(reason)
    client = get_client(client_id)
    if not client.enabled:
        raise ClientAlreadyDisabled()
    client.enabled = False
    client.tokens_revoked_before = datetime.now(timezone.utc)  # its own tokens carry no row
    revoked = revoke_tokens(Token.client_id == client.client_id)
    audit.add("client.disabled", actor=actor.username, subject=client.client_id, client_id=client.client_id,
              reason=reason, revoked_tokens=revoked)
    db.session.commit()
    return revoked


def enable_client(client_id: str, *, actor: Actor = CLI_ACTOR, reason: str) -> Client:
    actor.require("clients.write")
    reason = check_reason(reason)
    client = get_client(client_id)
    if client.enabled:
        raise ClientAlreadyEnabled()
    client.enabled = True
    audit.add("client.enabled", actor=actor.username, subject=client.client_id, client_id=client.client_id,
              reason=reason)
    db.session.commit()
    return client


def rotate_client_secret(client_id: str, *, overlap: timedelta = timedelta(0), actor: Actor = CLI_ACTOR,
                         reason: str) -> str:
    """A new secret, returned once.  With ``overlap`` the current secret keeps working that
    long, so the relying system can be redeployed without an outage; without it, it stops now."""
    actor.require("clients.write")
    reason = check_reason(reason)
    if not timedelta(0) <= overlap <= MAX_SECRET_OVERLAP:
        raise SecretOverlapInvalid()
    client = get_client(client_id)
    if client.token_endpoint_auth_method not in SECRET_AUTH_METHODS:
        raise ClientHasNoSecret()
    secret = set_client_secret(client, overlap=overlap or None)
    audit.add("client.secret_rotated", actor=actor.username, subject=client.client_id,
              client_id=client.client_id, reason=reason,
              overlap_seconds=int(overlap.total_seconds()))
    db.session.commit()
    return secret


def client_summary(client: Client) -> dict:
    """What the console and ``clients show --json`` display: settings, never a secret digest."""
    out = {f.name: getattr(spec_of(client), f.name) for f in fields(ClientSpec)}
    out.update(
        enabled=client.enabled,
        has_secret=bool(client.secret_digest),
        previous_secret_expires_at=(client.previous_secret_expires_at.isoformat()
                                    if client.previous_secret_expires_at else None),
        created_at=client.created_at.isoformat(),
        updated_at=client.updated_at.isoformat() if client.updated_at else None,
    )
    return out


# -- moving a registration between environments --------------------------------------------------
EXPORT_FORMAT = "hrss-idp-client/1"
_EXPORTED = tuple(f.name for f in fields(ClientSpec))


def export_client(client_id: str, *, actor: Actor = CLI_ACTOR) -> dict:
    """A relying system's settings as a JSON-ready dict: everything a registration needs, never
    a secret (the target environment issues its own)."""
    actor.require("clients.read")
    spec = spec_of(get_client(client_id))
    document = {"format": EXPORT_FORMAT, **{name: getattr(spec, name) for name in _EXPORTED}}
    audit.add("client.exported", actor=actor.username, subject=client_id, client_id=client_id)
    db.session.commit()
    return document


class ImportInvalid(InvalidField):
    field = "document"


def spec_from_export(document) -> ClientSpec:
    """The spec an exported document describes; unknown fields are refused, not dropped."""
    if not isinstance(document, dict) or document.get("format") != EXPORT_FORMAT:
        raise ImportInvalid(f"不是应用系统导出文件（format 须为 {EXPORT_FORMAT}）")
    unknown = sorted(set(document) - set(_EXPORTED) - {"format"})
    if unknown:
        raise ImportInvalid(f"导入文件含有不认识的字段：{'、'.join(unknown)}")
    if not document.get("client_id"):
        raise ImportInvalid("导入文件缺少 client_id")
    values = {k: v for k, v in document.items() if k != "format"}
    try:
        return ClientSpec(**values)
    except TypeError:
        raise ImportInvalid("导入文件缺少必填字段（name）") from None


def import_client(document, *, actor: Actor = CLI_ACTOR, reason: str) -> tuple[Client, str | None, bool]:
    """Create or update the relying system an exported document describes, validated as the
    form is; returns it, a new secret (shown once) or None, and whether it was created."""
    spec = spec_from_export(document)
    existing = db.session.scalar(select(Client).where(Client.client_id == spec.client_id))
    if existing is None:
        client, secret = create_client(spec, actor=actor, reason=reason)
        return client, secret, True
    change = update_client(spec.client_id, spec, actor=actor, reason=reason)
    return change.client, change.secret, False
