"""Relying systems (应用系统): validation and creation, shared by the CLI and the admin console."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy import select

from ..errors import InvalidField
from ..extensions import db
from ..models import Client
from ..models.client import ClientType
from . import audit
from .client_secrets import set_client_secret

SUPPORTED_SCOPES = ("openid", "profile", "phone", "realname", "offline_access")
SUPPORTED_GRANTS = ("authorization_code", "refresh_token", "client_credentials")
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


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


def redirect_uri_problem(uri: str) -> str | None:
    """https only (http allowed on loopback for development), absolute, no fragment, no wildcard."""
    parts = urlsplit(uri)
    if "*" in uri:
        return f"回调地址不能包含通配符：{uri}"
    if parts.fragment or "#" in uri:
        return f"回调地址不能包含 # 片段：{uri}"
    if parts.scheme == "https" and parts.netloc:
        return None
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return None
    return f"回调地址须为 https 地址（本机调试可用 http://127.0.0.1）：{uri}"


def normalise_spec(spec: ClientSpec) -> ClientSpec:
    if not spec.name.strip():
        raise InvalidField("请填写应用系统名称", field="name")
    if spec.client_type not in {t.value for t in ClientType}:
        raise InvalidField("应用类型无效", field="client_type")
    scopes = spec.scope.split()
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
    if "authorization_code" in spec.grant_types and not spec.redirect_uris:
        raise InvalidField("请至少登记一个回调地址", field="redirect_uris")
    for uri in [*spec.redirect_uris, *spec.post_logout_redirect_uris,
                *([spec.backchannel_logout_uri] if spec.backchannel_logout_uri else [])]:
        if problem := redirect_uri_problem(uri):
            raise InvalidField(problem, field="redirect_uris")
    return spec


def create_client(spec: ClientSpec, *, actor: str | None = None) -> tuple[Client, str | None]:
    spec = normalise_spec(spec)
    client_id = spec.client_id or secrets.token_urlsafe(16)
    if db.session.scalar(select(Client).where(Client.client_id == client_id)):
        raise InvalidField("client_id 已存在", field="client_id")
    client = Client(
        client_id=client_id,
        name=spec.name.strip(),
        description=spec.description,
        client_type=spec.client_type,
        first_party=spec.first_party,
        redirect_uris=spec.redirect_uris,
        post_logout_redirect_uris=spec.post_logout_redirect_uris,
        backchannel_logout_uri=spec.backchannel_logout_uri,
        scope=" ".join(spec.scope.split()),
        grant_types=spec.grant_types,
        token_endpoint_auth_method=spec.token_endpoint_auth_method,
        jwks=spec.jwks,
        access_token_lifetime=spec.access_token_lifetime,
        refresh_token_lifetime=spec.refresh_token_lifetime,
    )
    secret = None
    if spec.token_endpoint_auth_method in ("client_secret_basic", "client_secret_post"):
        secret = set_client_secret(client)
    db.session.add(client)
    audit.record("client.created", actor=actor, subject=client_id, client_id=client_id, commit=False)
    db.session.commit()
    return client, secret
