"""应用系统管理 through the console: create, validate, edit, disable/enable, rotate the secret;
each with its effect on the OAuth endpoints and its audit event."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

import pytest

from idp.extensions import db
from idp.models import Client, Token
from idp.services.admin.client_secrets import verify_client_secret

from .conftest import audit_events, text_of

NEW_CLIENT = {
    "name": "职称评审系统",
    "client_id": "title-review",
    "description": "专业技术资格评审",
    "client_type": "confidential",
    "redirect_uris": "https://title.example.test/callback\nhttp://127.0.0.1:8080/callback",
    "post_logout_redirect_uris": "https://title.example.test/",
    "backchannel_logout_uri": "https://title.example.test/backchannel",
    "scopes": ["openid", "profile", "realname"],
    "grant_types": ["authorization_code", "refresh_token"],
    "token_endpoint_auth_method": "client_secret_post",
    "access_token_lifetime": "300",
    "refresh_token_lifetime": "",
    "reason": "工单 OA-2026-031 新系统接入",
}


def _client(app, client_id: str) -> Client:
    with app.app_context():
        client = db.session.scalar(db.select(Client).filter_by(client_id=client_id))
        if client is not None:
            db.session.expunge(client)
        return client


def _secret_on(page: str) -> str:
    import re

    match = re.search(r'<code id="client-secret" class="secret">([^<]+)</code>', page)
    assert match, "no secret on the page"
    return match.group(1)


def _basic(client_id: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


# -- create -------------------------------------------------------------------------------------
def test_admin_registers_a_relying_system_and_sees_the_secret_once(app, admin):
    response = admin.post("/admin/clients/new", NEW_CLIENT)
    assert response.status_code == 200, text_of(response)[:500]
    page = response.data.decode()
    assert "应用系统已创建" in page and "密钥只显示这一次" in page
    secret = _secret_on(page)
    assert response.headers["Cache-Control"] == "no-store"

    client = _client(app, "title-review")
    assert client.name == "职称评审系统" and client.enabled and not client.first_party
    assert client.redirect_uris == ["https://title.example.test/callback", "http://127.0.0.1:8080/callback"]
    assert client.post_logout_redirect_uris == ["https://title.example.test/"]
    assert client.backchannel_logout_uri == "https://title.example.test/backchannel"
    assert client.scope == "openid profile realname"
    assert client.token_endpoint_auth_method == "client_secret_post"
    assert client.access_token_lifetime == 300 and client.refresh_token_lifetime is None
    # stored as a keyed digest, never the secret
    assert secret not in (client.secret_digest or "") and client.secret_digest.startswith("hs256$")
    with app.app_context():
        assert verify_client_secret(client, secret)
    # not shown again
    assert secret not in admin.get("/admin/clients/title-review").data.decode()
    [event] = audit_events(app, "client.created", subject="title-review")
    assert event.actor == "admin01"
    assert event.details == {"reason": "工单 OA-2026-031 新系统接入"}


def test_a_public_client_gets_no_secret(app, admin):
    response = admin.post("/admin/clients/new", dict(NEW_CLIENT, client_type="public", client_id="spa-app"))
    assert response.status_code == 200
    assert 'id="client-secret"' not in response.data.decode()
    client = _client(app, "spa-app")
    assert client.token_endpoint_auth_method == "none" and client.secret_digest is None


@pytest.mark.parametrize("uris, message", [
    ("http://title.example.test/callback", "回调地址须为 https 地址"),
    ("https://title.example.test/callback#frag", "回调地址不能包含 # 片段"),
    ("https://*.example.test/callback", "回调地址不能包含通配符"),
    ("title.example.test/callback", "回调地址须为 https 地址"),
    ("", "请至少登记一个回调地址"),
])
def test_bad_redirect_uris_are_refused_and_the_form_keeps_what_was_typed(app, admin, uris, message):
    response = admin.post("/admin/clients/new", dict(NEW_CLIENT, redirect_uris=uris))
    assert response.status_code == 400
    page = response.data.decode()
    assert message in page
    assert 'value="职称评审系统"' in page and "专业技术资格评审" in page  # kept
    assert '<input checked id="scopes-3" name="scopes" type="checkbox" value="realname">' in page
    assert _client(app, "title-review") is None
    assert not audit_events(app, "client.created")


@pytest.mark.parametrize("changes, message", [
    ({"post_logout_redirect_uris": "http://title.example.test/"}, "退出后回调地址须为 https 地址"),
    ({"backchannel_logout_uri": "https://title.example.test/bc#x"}, "后端登出通知地址不能包含 # 片段"),
    ({"access_token_lifetime": "ten"}, "访问令牌有效期须为整数秒数"),
    ({"access_token_lifetime": "5"}, "访问令牌有效期须在60到86400秒之间"),
    ({"scopes": ["openid", "email"]}, "不支持的授权范围：email"),
    ({"client_id": "a b"}, "client_id 须为3–64位字母"),
    ({"token_endpoint_auth_method": "private_key_jwt"}, "private_key_jwt 需要登记应用系统的公钥"),
    ({"token_endpoint_auth_method": "private_key_jwt", "jwks": "{not json"}, "公钥（JWKS）不是有效的 JSON"),
    ({"reason": ""}, "请填写操作原因"),
    ({"reason": "市民 13800138000 来电"}, "操作原因中不能包含证件号、手机号或银行卡号等个人信息"),
])
def test_every_rule_has_its_message_and_nothing_is_saved(app, admin, changes, message):
    response = admin.post("/admin/clients/new", dict(NEW_CLIENT, **changes))
    assert response.status_code == 400
    assert message in response.data.decode()
    assert _client(app, "title-review") is None


def test_a_private_key_in_the_jwks_is_refused(app, admin):
    import json

    from joserfc.jwk import RSAKey

    key = RSAKey.generate_key(2048)
    private = json.dumps({"keys": [key.as_dict(private=True)]})
    response = admin.post("/admin/clients/new", dict(NEW_CLIENT, token_endpoint_auth_method="private_key_jwt", jwks=private))
    assert response.status_code == 400
    assert "JWKS 中含有私钥，只能登记公钥" in response.data.decode()
    public = json.dumps({"keys": [key.as_dict(private=False)]})
    response = admin.post("/admin/clients/new", dict(NEW_CLIENT, token_endpoint_auth_method="private_key_jwt", jwks=public))
    assert response.status_code == 200
    client = _client(app, "title-review")
    assert client.jwks["keys"][0]["n"] == key.as_dict(private=False)["n"] and client.secret_digest is None


def test_a_taken_client_id_is_refused(admin, rp):
    response = admin.post("/admin/clients/new", dict(NEW_CLIENT, client_id="exam-service"))
    assert response.status_code == 400
    assert "client_id 已存在" in response.data.decode()


# -- list, show, edit --------------------------------------------------------------------------
def test_list_and_search(admin, rp):
    admin.post("/admin/clients/new", NEW_CLIENT)
    page = admin.get("/admin/clients").data.decode()
    assert "考生服务系统" in page and "职称评审系统" in page
    page = admin.get("/admin/clients?q=title").data.decode()
    assert "职称评审系统" in page and "考生服务系统" not in page
    admin.post("/admin/clients/title-review/disable", {"toggle-reason": "系统下线"})
    page = admin.get("/admin/clients?status=disabled").data.decode()
    assert "职称评审系统" in page and "考生服务系统" not in page


def test_edit_keeps_the_client_id_and_records_what_changed(app, admin, rp):
    page = admin.get("/admin/clients/exam-service/edit").data.decode()
    assert "https://exam.example.test/cb" in page  # prefilled
    response = admin.post("/admin/clients/exam-service/edit", {
        "name": "考生服务系统（新版）", "client_id": "hijack", "client_type": "confidential",
        "redirect_uris": "https://exam.example.test/cb\nhttps://exam.example.test/cb2",
        "scopes": ["openid", "profile", "phone", "realname", "offline_access"],
        "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "client_secret_basic",
        "first_party": "y", "reason": "增加回调地址",
    })
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/clients/exam-service"
    client = _client(app, "exam-service")
    assert client.name == "考生服务系统（新版）" and client.first_party
    assert client.redirect_uris == ["https://exam.example.test/cb", "https://exam.example.test/cb2"]
    assert _client(app, "hijack") is None
    [event] = audit_events(app, "client.updated")
    assert event.actor == "admin01" and event.subject == "exam-service"
    assert event.details["changed"] == ["name", "redirect_uris", "first_party"]
    assert event.details["reason"] == "增加回调地址"
    assert "应用系统已保存" in admin.get("/admin/clients/exam-service").data.decode()


def test_an_invalid_edit_changes_nothing(app, admin, rp):
    before = _client(app, "exam-service")
    response = admin.post("/admin/clients/exam-service/edit", {
        "name": "改坏了", "client_type": "confidential", "redirect_uris": "https://exam.example.test/cb#x",
        "scopes": ["openid"], "token_endpoint_auth_method": "client_secret_basic", "reason": "测试",
    })
    assert response.status_code == 400
    assert "回调地址不能包含 # 片段" in response.data.decode()
    after = _client(app, "exam-service")
    assert (after.name, after.redirect_uris, after.scope) == (before.name, before.redirect_uris, before.scope)
    assert not audit_events(app, "client.updated")


def _issue_token(app, client_id: str, scope: str, user_id: int | None = None) -> str:
    import secrets

    with app.app_context():
        now = datetime.now(timezone.utc)
        token = Token(jti=secrets.token_hex(8), client_id=client_id, user_id=user_id, scope=scope,
                      grant_id=secrets.token_hex(8), access_expires_at=now + timedelta(minutes=10))
        db.session.add(token)
        db.session.commit()
        return token.jti


def _revoked(app, jti: str) -> bool:
    from idp.services.accounts.revocation import is_access_token_revoked

    with app.app_context():
        token = db.session.scalar(db.select(Token).filter_by(jti=jti))
        return token.revoked_at is not None and is_access_token_revoked(jti)


def test_taking_a_scope_away_revokes_the_tokens_that_carry_it(app, admin, rp, citizen):
    with_realname = _issue_token(app, "exam-service", "openid profile realname", citizen.id)
    without = _issue_token(app, "exam-service", "openid profile", citizen.id)
    response = admin.post("/admin/clients/exam-service/edit", {
        "name": "考生服务系统", "client_type": "confidential", "redirect_uris": "https://exam.example.test/cb",
        "scopes": ["openid", "profile", "phone", "offline_access"], "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "client_secret_basic", "reason": "撤销实名信息权限",
    })
    assert response.status_code == 302
    assert _revoked(app, with_realname) and not _revoked(app, without)
    [event] = audit_events(app, "client.updated")
    assert event.details["changed"] == ["scope"] and event.details["revoked_tokens"] == 1


def test_making_a_public_client_confidential_shows_its_new_secret_once(app, admin):
    admin.post("/admin/clients/new", dict(NEW_CLIENT, client_type="public"))
    response = admin.post("/admin/clients/title-review/edit", dict(NEW_CLIENT, client_type="confidential",
                                                                    token_endpoint_auth_method="client_secret_basic"))
    assert response.status_code == 200
    secret = _secret_on(response.data.decode())
    client = _client(app, "title-review")
    with app.app_context():
        assert verify_client_secret(client, secret)
    # and back to public: the secret is gone
    admin.post("/admin/clients/title-review/edit", dict(NEW_CLIENT, client_type="public"))
    client = _client(app, "title-review")
    assert client.secret_digest is None and client.token_endpoint_auth_method == "none"


# -- disable, enable ------------------------------------------------------------------------------
def _authorize(client, client_id="exam-service"):
    return client.get("/oauth/authorize", query_string={
        "response_type": "code", "client_id": client_id, "redirect_uri": "https://exam.example.test/cb",
        "scope": "openid", "state": "s", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
    })


def test_disabling_refuses_the_system_everywhere_and_revokes_its_tokens(app, admin, rp, citizen):
    jti = _issue_token(app, "exam-service", "openid", citizen.id)
    assert _authorize(app.test_client()).status_code == 302  # to the login page: the client is fine
    response = admin.submit("/admin/clients/exam-service", "/admin/clients/exam-service/disable",
                            {"toggle-reason": "系统停止服务"})
    assert response.status_code == 302
    assert "应用系统已停用，已撤销 1 个令牌" in admin.get(response.headers["Location"]).data.decode()
    assert not _client(app, "exam-service").enabled
    assert _revoked(app, jti)
    refused = _authorize(app.test_client())
    assert refused.status_code == 400 and "Location" not in refused.headers
    assert "应用系统已停用" in refused.data.decode()
    token = app.test_client().post("/oauth/token", data={"grant_type": "client_credentials"},
                                   headers=_basic("exam-service", rp[1]))
    assert token.status_code in (400, 401) and token.get_json()["error"] == "invalid_client"
    [event] = audit_events(app, "client.disabled")
    assert event.actor == "admin01" and event.details == {"reason": "系统停止服务", "revoked_tokens": 1}

    again = admin.post("/admin/clients/exam-service/disable", {"toggle-reason": "再停一次"})
    assert again.status_code == 409 and "该应用系统已停用" in again.data.decode()

    response = admin.submit("/admin/clients/exam-service", "/admin/clients/exam-service/enable",
                            {"toggle-reason": "恢复服务"})
    assert response.status_code == 302
    assert _client(app, "exam-service").enabled
    assert _authorize(app.test_client()).status_code == 302
    assert audit_events(app, "client.enabled")[0].details == {"reason": "恢复服务"}


def test_disabling_needs_a_reason(app, admin, rp):
    response = admin.post("/admin/clients/exam-service/disable", {"toggle-reason": " "})
    assert response.status_code == 400
    assert "请填写操作原因" in response.data.decode()
    assert _client(app, "exam-service").enabled
    assert not audit_events(app, "client.disabled")


# -- secret rotation -----------------------------------------------------------------------------
@pytest.fixture
def service_client(app, admin):
    """A service account: its secret is testable end to end at the token endpoint."""
    response = admin.post("/admin/clients/new", {
        "name": "社保数据同步", "client_id": "sync-job", "client_type": "service", "scopes": ["openid"],
        "token_endpoint_auth_method": "client_secret_basic", "reason": "批处理接入",
    })
    assert response.status_code == 200, text_of(response)[:400]
    return _secret_on(response.data.decode())


def _token_status(app, secret: str) -> int:
    return app.test_client().post("/oauth/token", data={"grant_type": "client_credentials", "scope": "openid"},
                                  headers=_basic("sync-job", secret)).status_code


def test_rotation_with_overlap_keeps_the_old_secret_working_until_it_expires(app, admin, service_client):
    old = service_client
    assert _token_status(app, old) == 200
    response = admin.submit("/admin/clients/sync-job", "/admin/clients/sync-job/secret",
                            {"rotate-overlap": "86400", "rotate-reason": "定期轮换"})
    assert response.status_code == 200
    page = response.data.decode()
    new = _secret_on(page)
    assert new != old and "旧密钥在" in page
    assert _token_status(app, new) == 200
    assert _token_status(app, old) == 200  # during the overlap
    with app.app_context():
        client = db.session.scalar(db.select(Client).filter_by(client_id="sync-job"))
        client.previous_secret_expires_at = datetime.now(timezone.utc) - timedelta(seconds=1)
        db.session.commit()
    assert _token_status(app, old) == 401
    assert _token_status(app, new) == 200
    [event] = audit_events(app, "client.secret_rotated")
    assert event.details == {"reason": "定期轮换", "overlap_seconds": 86400}
    assert new not in str(event.details) and old not in str(event.details)


def test_rotation_without_overlap_stops_the_old_secret_now(app, admin, service_client):
    response = admin.post("/admin/clients/sync-job/secret", {"rotate-overlap": "0", "rotate-reason": "密钥泄露"})
    new = _secret_on(response.data.decode())
    assert _token_status(app, service_client) == 401
    assert _token_status(app, new) == 200


def test_rotation_is_refused_for_a_client_without_a_secret(app, admin):
    admin.post("/admin/clients/new", dict(NEW_CLIENT, client_type="public"))
    response = admin.post("/admin/clients/title-review/secret", {"rotate-overlap": "0", "rotate-reason": "轮换"})
    assert response.status_code == 409
    assert "无需轮换密钥" in response.data.decode()


def test_an_unknown_overlap_is_refused(app, admin, service_client):
    response = admin.post("/admin/clients/sync-job/secret", {"rotate-overlap": "99999999", "rotate-reason": "轮换"})
    assert response.status_code == 400
    assert "请选择旧密钥的保留时间" in response.data.decode()
    assert _token_status(app, service_client) == 200


# -- the operator's read-only view ------------------------------------------------------------------
def test_an_operator_sees_systems_but_cannot_change_them(app, operator, rp):
    page = operator.get("/admin/clients/exam-service").data.decode()
    assert "考生服务系统" in page and "您的角色只能查看应用系统" in page
    assert "/admin/clients/exam-service/edit" not in page and "/admin/clients/exam-service/disable" not in page
    assert "新增应用系统" not in operator.get("/admin/clients").data.decode()
    assert operator.post("/admin/clients/exam-service/disable", {"toggle-reason": "越权"}).status_code == 403
    assert _client(app, "exam-service").enabled


def test_the_service_itself_refuses_a_client_from_a_role_without_clients_write(app):
    # the console's guard is one wall; the service is the second (a view that forgot cannot act)
    from idp.services.admin.staff import Actor, PermissionDenied
    from idp.services.admin.clients import ClientSpec, create_client

    with app.app_context():
        for role in ("operator", "auditor", None):
            with pytest.raises(PermissionDenied):
                create_client(ClientSpec(name="越权系统", client_type="service", scope="openid"),
                              actor=Actor(username="someone", role=role), reason="测试")
        assert not audit_events(app, "client.created")


def test_a_systems_contacts_are_set_in_the_console_and_shown_on_its_page(app, admin, rp):
    form = admin.get("/admin/clients/exam-service/edit").data.decode()
    assert '<label for="contacts">联系方式</label>' in form
    response = admin.post("/admin/clients/exam-service/edit", {
        "name": "考生服务系统", "client_type": "confidential", "redirect_uris": "https://exam.example.test/cb",
        "scopes": ["openid", "profile"], "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "client_secret_basic", "reason": "登记考试院联系方式",
        "contacts": "深圳市考试院 电话：0755-88100099\r\n邮箱：ksykwb@szhrss.gov.cn\r\n",
    })
    assert response.status_code == 302, text_of(response)
    assert _client(app, "exam-service").contacts == "深圳市考试院 电话：0755-88100099\n邮箱：ksykwb@szhrss.gov.cn"
    assert "contacts" in audit_events(app, "client.updated")[-1].details["changed"]
    page = admin.get("/admin/clients/exam-service").data.decode()
    assert "<dt>联系方式</dt><dd>深圳市考试院 电话：0755-88100099<br>邮箱：ksykwb@szhrss.gov.cn</dd>" in page


def test_requiring_dpop_is_set_in_the_console(app, admin, rp):
    page = admin.get("/admin/clients/exam-service/edit").data.decode()
    assert "令牌须绑定密钥（DPoP）" in page
    response = admin.post("/admin/clients/exam-service/edit", {
        "name": "考生服务系统", "client_type": "confidential", "redirect_uris": "https://exam.example.test/cb",
        "scopes": ["openid", "profile", "phone", "realname", "offline_access"],
        "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "client_secret_basic",
        "dpop_bound_access_tokens": "y", "reason": "移动端令牌绑定密钥",
    })
    assert response.status_code == 302, text_of(response)[:500]
    assert _client(app, "exam-service").dpop_bound_access_tokens is True
    [event] = audit_events(app, "client.updated")
    assert event.details["changed"] == ["dpop_bound_access_tokens"]
    assert 'checked' in admin.get("/admin/clients/exam-service/edit").data.decode().split("dpop_bound_access_tokens")[1][:200]
