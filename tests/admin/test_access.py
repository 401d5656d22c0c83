"""Role enforcement on every console route: anonymous → login; a role without the permission →
403 with nothing of the page; the right role → the page.  Plus the fresh-login rule."""

from __future__ import annotations

import pytest

from idp.extensions import db
from idp.models import Client, User, UserStatus

from ..conftest import DEFAULT_PASSWORD
from ..helpers import login, login_with_second_factor
from .conftest import Console, audit_events

# every console route: (endpoint, method, url template, roles allowed)
ROUTES = [
    ("admin.index", "GET", "/admin/", {"admin", "operator", "auditor"}),
    ("admin.client_list", "GET", "/admin/clients", {"admin", "operator"}),
    ("admin.client_show", "GET", "/admin/clients/{client_id}", {"admin", "operator"}),
    ("admin.client_new", "GET", "/admin/clients/new", {"admin"}),
    ("admin.client_new", "POST", "/admin/clients/new", {"admin"}),
    ("admin.client_edit", "GET", "/admin/clients/{client_id}/edit", {"admin"}),
    ("admin.client_edit", "POST", "/admin/clients/{client_id}/edit", {"admin"}),
    ("admin.client_toggle", "POST", "/admin/clients/{client_id}/disable", {"admin"}),
    ("admin.client_toggle", "POST", "/admin/clients/{client_id}/enable", {"admin"}),
    ("admin.client_rotate_secret", "POST", "/admin/clients/{client_id}/secret", {"admin"}),
    ("admin.client_export", "GET", "/admin/clients/{client_id}/export.json", {"admin", "operator"}),
    ("admin.client_import", "GET", "/admin/clients/import", {"admin"}),
    ("admin.client_import", "POST", "/admin/clients/import", {"admin"}),
    ("admin.user_search", "GET", "/admin/users?by=username&q=zhang", {"admin", "operator"}),
    ("admin.user_show", "GET", "/admin/users/{sub}", {"admin", "operator"}),
    ("admin.user_action", "POST", "/admin/users/{sub}/lock", {"admin", "operator"}),
    ("admin.user_action", "POST", "/admin/users/{sub}/unlock", {"admin", "operator"}),
    ("admin.user_action", "POST", "/admin/users/{sub}/logout", {"admin", "operator"}),
    ("admin.user_action", "POST", "/admin/users/{sub}/disable", {"admin", "operator"}),
    ("admin.user_action", "POST", "/admin/users/{sub}/enable", {"admin", "operator"}),
    ("admin.user_role", "POST", "/admin/users/{sub}/role", {"admin"}),
    ("admin.audit_events", "GET", "/admin/audit", {"admin", "auditor"}),
    ("admin.audit_export", "GET", "/admin/audit/export.csv", {"admin", "auditor"}),
]

ACTION_DATA = {
    "/admin/clients/new": {"name": "越权创建的系统", "redirect_uris": "https://x.example.test/cb",
                           "scopes": ["openid"], "reason": "越权测试"},
    "/admin/clients/{client_id}/edit": {"name": "越权修改", "redirect_uris": "https://exam.example.test/cb",
                                        "scopes": ["openid"], "reason": "越权测试"},
}


def test_the_table_covers_every_console_route(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint.startswith("admin.")}
    assert endpoints == {endpoint for endpoint, *_ in ROUTES}
    for endpoint in endpoints:
        assert hasattr(app.view_functions[endpoint], "admin_permission"), endpoint


def _url(template, client_id, sub):
    return template.format(client_id=client_id, sub=sub)


def _request(client, method, url, csrf=None):
    if method == "GET":
        return client.get(url)
    data = {"reason": "越权测试", "toggle-reason": "越权测试", "rotate-reason": "越权测试", "lock-reason": "越权测试",
            "unlock-reason": "越权测试", "logout-reason": "越权测试", "disable-reason": "越权测试",
            "enable-reason": "越权测试", "role-reason": "越权测试", "role-role": "admin", "rotate-overlap": "0"}
    for template, extra in ACTION_DATA.items():
        if url.endswith(template.rsplit("}", 1)[-1]) and ("{" not in template or "/edit" in url):
            data.update(extra)
    if csrf:
        data["csrf_token"] = csrf
        for prefix in ("toggle", "rotate", "lock", "unlock", "logout", "disable", "enable", "role"):
            data[f"{prefix}-csrf_token"] = csrf
    return client.post(url, data=data)


def test_anonymous_visitors_are_sent_to_login(client, citizen, rp):
    for endpoint, method, template, _ in ROUTES:
        response = _request(client, method, _url(template, rp[0], citizen.sub)) if method == "GET" else None
        if response is None:
            continue  # an anonymous POST stops at CSRF (400) before any console code runs
        assert response.status_code == 302, (endpoint, template)
        assert response.headers["Location"] == "/login"


def test_anonymous_posts_are_refused_without_effect(app, client, citizen, rp):
    from ..helpers import csrf_token

    token = csrf_token(client.get("/login").data)
    for endpoint, method, template, _ in ROUTES:
        if method == "POST":
            response = _request(client, method, _url(template, rp[0], citizen.sub), token)
            assert response.status_code == 302 and response.headers["Location"] == "/login", (endpoint, template)
    with app.app_context():
        assert db.session.scalar(db.select(User).filter_by(sub=citizen.sub)).status == UserStatus.ACTIVE
        assert db.session.scalar(db.select(Client).filter_by(client_id=rp[0])).name == "考生服务系统"
        assert db.session.scalar(db.select(db.func.count(Client.id))) == 1


@pytest.mark.parametrize("role", [None, "admin", "operator", "auditor"])
def test_each_role_reaches_exactly_its_routes(app, role, console_as, citizen, rp):
    """A citizen (no role) and each staff role against every route.  Denied: 403 and not one
    byte of what the page would have shown.  Allowed: anything but 403."""
    if role is None:
        console = Console(app.test_client(), citizen.username)
        assert login(console.client, citizen.username, DEFAULT_PASSWORD).status_code == 302
    else:
        console = console_as(role)
    csrf = console.csrf()
    secrets_of_the_pages = ["考生服务系统", "exam.example.test", "张三丰", "张*", "13800138123", "138****8123",
                            citizen.username, citizen.sub]
    for endpoint, method, template, allowed in ROUTES:
        url = _url(template, rp[0], citizen.sub)
        response = _request(console.client, method, url, csrf)
        if role in allowed:
            assert response.status_code != 403, (role, method, url, response.data.decode()[:300])
            assert response.status_code in (200, 302, 400, 409), (role, method, url, response.status_code)
        else:
            assert response.status_code == 403, (role, method, url, response.status_code)
            body = response.data.decode()
            assert "您没有权限访问该页面" in body
            for secret in secrets_of_the_pages:
                if secret != citizen.username or role is not None:  # the citizen sees their own name in the header
                    assert secret not in body, (role, url, secret)
    denied = audit_events(app, "admin.access", outcome="denied")
    expected = sum(1 for *_, allowed in ROUTES if role not in allowed)
    assert len(denied) == expected
    assert all(e.actor == console.username for e in denied)


def test_the_403_for_an_unknown_user_is_the_same_as_for_a_known_one(auditor, citizen):
    """Permission is checked before anything is looked up: no existence oracle."""
    known = auditor.get(f"/admin/users/{citizen.sub}")
    unknown = auditor.get("/admin/users/no-such-subject")
    assert known.status_code == unknown.status_code == 403
    assert known.data == unknown.data


def test_unknown_records_are_404_for_those_allowed(admin):
    assert admin.get("/admin/users/no-such-subject").status_code == 404
    assert admin.get("/admin/clients/no-such-client").status_code == 404
    assert "应用系统不存在" in admin.get("/admin/clients/no-such-client").data.decode()


def test_the_menu_shows_only_what_the_role_may_open(admin, operator, auditor):
    def links(console):
        page = console.get("/admin/").data.decode()
        return {href for href in ("/admin/clients", "/admin/users", "/admin/audit") if f'href="{href}"' in page}

    assert links(admin) == {"/admin/clients", "/admin/users", "/admin/audit"}
    assert links(operator) == {"/admin/clients", "/admin/users"}
    assert links(auditor) == {"/admin/audit"}


def test_the_header_links_to_the_console_for_staff_only(admin, logged_in):
    assert 'href="/admin/"' in admin.get("/account/").data.decode()
    assert 'href="/admin/"' not in logged_in.get("/account/").data.decode()


def test_a_route_without_the_guard_is_refused(app, console_as):
    """Fail closed: a view added to the console without @requires answers 403, even to an admin."""
    app.add_url_rule("/admin/unguarded", "admin.unguarded", lambda: "secret page")
    admin = console_as("admin")
    response = admin.get("/admin/unguarded")
    assert response.status_code == 403
    assert "secret page" not in response.data.decode()


# -- a recent login ------------------------------------------------------------------------------
def _age_login(client, seconds: int) -> None:
    with client.session_transaction() as sess:
        sess["auth_time"] -= seconds


def test_a_login_older_than_30_minutes_must_log_in_again(app, admin):
    _age_login(admin.client, 31 * 60)
    response = admin.get("/admin/users?by=username&q=adm")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    page = admin.get("/login").data.decode()
    assert "为保障管理操作安全，请重新登录后继续" in page
    assert 'value="admin01"' in page  # the username is filled in
    again = login_with_second_factor(admin.client, app, "admin01", DEFAULT_PASSWORD)
    assert again.headers["Location"] == "/admin/users?by=username&q=adm"
    assert admin.get(again.headers["Location"]).status_code == 200


def test_a_login_just_under_30_minutes_is_enough(admin):
    _age_login(admin.client, 29 * 60)
    assert admin.get("/admin/").status_code == 200


def test_a_stale_action_changes_nothing_and_comes_back_to_its_page(app, admin, citizen):
    _age_login(admin.client, 31 * 60)
    response = admin.post(f"/admin/users/{citizen.sub}/lock", {"lock-reason": "工单 2026-118"})
    assert response.headers["Location"] == "/login"
    with app.app_context():
        assert db.session.scalar(db.select(User).filter_by(sub=citizen.sub)).status == UserStatus.ACTIVE
    assert not audit_events(app, "account.locked")
    again = login_with_second_factor(admin.client, app, "admin01", DEFAULT_PASSWORD)
    assert again.headers["Location"] == f"/admin/users/{citizen.sub}"


def test_a_stale_login_still_gets_403_not_a_login_page_when_the_role_is_missing(auditor):
    _age_login(auditor.client, 31 * 60)
    assert auditor.get("/admin/clients").status_code == 403


def test_losing_the_role_takes_effect_on_the_next_request(app, operator):
    assert operator.get("/admin/users").status_code == 200
    with app.app_context():
        db.session.scalar(db.select(User).filter_by(username="operator01")).role = None
        db.session.commit()
    assert operator.get("/admin/users").status_code == 403


def test_console_pages_are_not_cached(admin):
    assert admin.get("/admin/").headers["Cache-Control"] == "no-store"
