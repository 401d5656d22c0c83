from __future__ import annotations

import re

from idp.extensions import redis_store

from ..conftest import DEFAULT_PASSWORD
from ..helpers import CAPTCHA, form_fields, login


def test_login_page_has_labelled_fields(client):
    page = client.get("/login")
    html = page.data.decode()
    assert page.status_code == 200
    for label, field in (("用户名", "username"), ("密码", "password"), ("验证码", "captcha")):
        assert re.search(rf'<label for="{field}">{label}</label>', html), label
    assert 'value="登录"' in html


def test_login_success_lands_on_user_centre_with_masked_data(client, user):
    response = login(client, user.username, DEFAULT_PASSWORD)
    assert response.status_code == 302
    assert response.headers["Location"] == "/account/"
    home = client.get("/account/").data.decode()
    assert "查看用户信息" in home
    assert "440***********4562" in home  # ID number masked
    assert "440303198512124562" not in home
    assert "138****0001" in home
    assert "**** **** **** 3445" in home


def test_username_is_case_insensitive(client, user):
    assert login(client, user.username.upper(), DEFAULT_PASSWORD).status_code == 302


def test_wrong_password_and_unknown_user_get_the_same_message(client, user):
    wrong = login(client, user.username, "Wrong#password1")
    unknown = login(client, "nobody_here", "Wrong#password1")
    assert wrong.status_code == unknown.status_code == 400
    assert "用户名或密码错误" in wrong.data.decode()
    assert "用户名或密码错误" in unknown.data.decode()
    # the form keeps the username but never the password
    assert form_fields(wrong.data)["username"] == user.username
    assert form_fields(wrong.data).get("password", "") == ""


def test_lockout_after_five_failures_even_with_right_password(app, client, user):
    for _ in range(app.config["LOCKOUT_THRESHOLD"]):
        assert login(client, user.username, "Wrong#password1").status_code == 400
    locked = login(client, user.username, DEFAULT_PASSWORD)
    assert locked.status_code == 400
    assert LOCKED.format(minutes=app.config["LOCKOUT_SECONDS"] // 60) in locked.data.decode()
    assert client.get("/account/").status_code == 302  # not logged in


LOCKED = "密码错误次数过多，账户已临时锁定，请{minutes}分钟后再试或通过“忘记密码”重置"


def _answers(app, username: str) -> list[str]:
    """What each of threshold + 2 wrong passwords is answered (the page's message), in order."""
    import re

    client = app.test_client()
    out = []
    for _ in range(app.config["LOCKOUT_THRESHOLD"] + 2):
        response = login(client, username, "Wrong#password1")
        out.append((response.status_code, re.search(r'role="alert">([^<]+)<', response.data.decode()).group(1)))
    return out


def test_locked_names_are_told_the_same_whether_they_exist_or_not(app, user):
    existing, unknown = _answers(app, user.username), _answers(app, "nobody2026")
    assert existing == unknown
    threshold = app.config["LOCKOUT_THRESHOLD"]
    assert existing[: threshold - 1] == [(400, "用户名或密码错误")] * (threshold - 1)
    assert existing[threshold - 1:] == [(400, LOCKED.format(minutes=15))] * 3  # the failure that locks, then every try


def test_the_minutes_come_from_the_setting(keys_dir):
    from ..conftest import make_app

    app = make_app(keys_dir, LOCKOUT_SECONDS=300, LOCKOUT_THRESHOLD=2)
    assert _answers(app, "nobody2026")[-1] == (400, LOCKED.format(minutes=5))


def test_an_administrators_lock_says_to_contact_the_service_desk_after_the_right_password(app, client, user):
    from idp.services.admin.users import lock_account

    with app.app_context():
        lock_account(user.sub, reason="核实身份")
    wrong = login(client, user.username, "Wrong#password1")
    assert "用户名或密码错误" in wrong.data.decode()  # nothing said to whoever lacks the password
    right = login(client, user.username, DEFAULT_PASSWORD)
    assert right.status_code == 400
    assert "账户已被管理员锁定，请联系客服（服务热线：12333）" in right.data.decode()
    assert client.get("/account/").status_code == 302


def test_wrong_captcha_is_refused(client, user):
    page = client.get("/login")
    fields = form_fields(page.data)
    fields.update(username=user.username, password=DEFAULT_PASSWORD, captcha="NOPE")
    response = client.post("/login", data=fields)
    assert response.status_code == 400
    assert "验证码错误" in response.data.decode()


def test_captcha_is_single_use(client, user):
    page = client.get("/login")
    fields = form_fields(page.data)
    fields.update(username=user.username, password="Wrong#password1", captcha=CAPTCHA)
    assert client.post("/login", data=fields).status_code == 400
    fields["password"] = DEFAULT_PASSWORD  # right password, same (spent) captcha
    response = client.post("/login", data=fields)
    assert response.status_code == 400
    assert "验证码错误" in response.data.decode()


def test_captcha_image_is_served_once_issued(client, app):
    page = client.get("/login")
    captcha_id = form_fields(page.data)["captcha_id"]
    image = client.get(f"/captcha/{captcha_id}.png")
    assert image.status_code == 200
    assert image.data.startswith(b"\x89PNG")
    assert client.get("/captcha/unknown.png").status_code == 404


def test_csrf_failure_is_refused(client, user):
    page = client.get("/login")
    fields = form_fields(page.data)
    fields.update(username=user.username, password=DEFAULT_PASSWORD, captcha=CAPTCHA, csrf_token="forged")
    response = client.post("/login", data=fields)
    assert response.status_code == 400
    assert "请求已失效" in response.data.decode()
    assert client.get("/account/").status_code == 302


def test_session_is_rotated_at_login(client, user):
    client.get("/login")
    before = client.get_cookie("idp_session").value
    login(client, user.username, DEFAULT_PASSWORD)
    after = client.get_cookie("idp_session").value
    assert before != after


def test_logout_ends_the_session(logged_in):
    page = logged_in.get("/logout")
    fields = form_fields(page.data)
    response = logged_in.post("/logout", data=fields)
    assert response.status_code == 200
    assert "您已退出登录" in response.data.decode()
    assert logged_in.get("/account/").status_code == 302


def test_revoked_login_record_ends_session_everywhere(app, logged_in, user):
    from idp.services.accounts.sessions import revoke_all_logins

    with app.test_request_context():
        assert revoke_all_logins(user.id) == 1
    assert logged_in.get("/account/").status_code == 302


def test_security_headers_on_every_response(client):
    for path in ("/login", "/captcha/x.png", "/no-such-page"):
        headers = client.get(path).headers
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/login").headers["Cache-Control"] == "no-store"


def test_idle_timeout_is_the_redis_expiry(app, logged_in):
    with app.app_context():
        keys = [k for k in redis_store.scan_iter("session:*")]
        assert keys
        ttl = redis_store.ttl(keys[0])
        assert 0 < ttl <= app.config["SESSION_IDLE_TIMEOUT"]


def test_per_ip_throttle_on_login_posts(client, app):
    app.config["LOGIN_IP_LIMIT"] = "3 per minute"
    for _ in range(3):
        assert login(client, "nobody_here", "Wrong#password1").status_code == 400
    throttled = login(client, "nobody_here", "Wrong#password1")
    assert throttled.status_code == 429
    assert "操作过于频繁" in throttled.data.decode()
    assert throttled.headers["Retry-After"] == "60"  # the window of "3 per minute"


def test_login_lockout_is_audited(app, client, user):
    from idp.models import AuditEvent
    from idp.extensions import db

    threshold = app.config["LOCKOUT_THRESHOLD"]
    for _ in range(threshold):
        login(client, user.username, "Wrong#password1")
    with app.app_context():
        events = [(e.event, e.outcome, e.details.get("reason")) for e in db.session.scalars(db.select(AuditEvent))]
    assert events.count(("login", "failure", "bad_password")) == threshold
    assert ("account.lockout", "success", None) in events
