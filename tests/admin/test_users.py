"""用户综合管理 through the console: search (the keyed hash for ID numbers and phones), the masked
user page, and each action with its effect on sessions, tokens and login, and its audit event."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta, timezone

import pytest

from idp.extensions import db
from idp.models import Token, User, UserStatus
from idp.services.accounts.revocation import is_access_token_revoked

from ..conftest import DEFAULT_PASSWORD
from ..helpers import login, login_with_second_factor
from .conftest import audit_events, text_of


def _user(app, sub: str) -> User:
    with app.app_context():
        user = db.session.scalar(db.select(User).filter_by(sub=sub))
        db.session.expunge(user)
        return user


def _signed_in(app, username: str):
    browser = app.test_client()
    assert login_with_second_factor(browser, app, username, DEFAULT_PASSWORD).status_code == 302
    assert browser.get("/account/").status_code == 200
    return browser


def _still_signed_in(browser) -> bool:
    return browser.get("/account/").status_code == 200


def _token(app, user_id: int, client_id: str = "exam-service") -> str:
    with app.app_context():
        jti = secrets.token_hex(8)
        db.session.add(Token(jti=jti, client_id=client_id, user_id=user_id, scope="openid profile",
                             grant_id=secrets.token_hex(8),
                             access_expires_at=datetime.now(timezone.utc) + timedelta(minutes=10)))
        db.session.commit()
        return jti


def _revoked(app, jti: str) -> bool:
    with app.app_context():
        token = db.session.scalar(db.select(Token).filter_by(jti=jti))
        return token.revoked_at is not None and is_access_token_revoked(jti)


# -- search ---------------------------------------------------------------------------------------
@pytest.fixture
def citizens(make_user, citizen):
    make_user("zhangwei88", name="张伟", id_number="440304199001011233", phone="13900139001")
    make_user("liming2026", name="李明", id_number="44030619950620341X", phone="13700137002")
    return citizen


@pytest.mark.parametrize("by, q, expected", [
    ("username", "ZHANG", {"zhangwei88"}),
    ("username", "zs", {"zsfeng01"}),
    ("name", "张", {"zsfeng01", "zhangwei88"}),
    ("name", "三丰", {"zsfeng01"}),
    ("id_number", "440303198512124562", {"zsfeng01"}),
    ("id_number", "44030619950620341x", {"liming2026"}),  # the check letter in either case
    ("id_number", "4403031985121245", set()),  # a partial number finds nothing
    ("phone", "13800138123", {"zsfeng01"}),
    ("phone", "138 0013 8123", {"zsfeng01"}),
    ("phone", "1380013812", set()),
])
def test_search(admin, citizens, by, q, expected):
    response = admin.post("/admin/users", {"by": by, "q": q})
    assert response.status_code == 200
    page = response.data.decode()
    found = {name for name in ("zsfeng01", "zhangwei88", "liming2026") if f">{name}</a>" in page}
    assert found == expected
    if not expected:
        assert "没有找到符合条件的用户" in page


def test_search_results_are_masked_and_the_search_is_audited_without_its_value(app, operator, citizens):
    page = operator.post("/admin/users", {"by": "id_number", "q": "440303198512124562"}).data.decode()
    assert "张**" in page and "张三丰" not in page
    [event] = audit_events(app, "admin.user_search")
    assert event.actor == "operator01"
    assert event.details == {"by": "id_number", "results": 1}
    assert "440303198512124562" not in str(event.details)


def test_an_empty_search_says_so(admin):
    response = admin.post("/admin/users", {"by": "phone", "q": "  "})
    assert response.status_code == 400
    assert "请输入检索内容" in response.data.decode()


def test_a_like_pattern_is_taken_literally(admin, citizens):
    page = admin.post("/admin/users", {"by": "username", "q": "%"}).data.decode()
    assert "没有找到符合条件的用户" in page


def test_the_search_is_a_post_so_numbers_stay_out_of_urls(app, admin, citizens):
    page = admin.get("/admin/users").data.decode()
    assert re.search(r'<form method="post" action="/admin/users"', page)
    # a number in a URL is not searched for (it would already be in the access log, but no
    # page should invite it there)
    ignored = admin.get("/admin/users", query_string={"by": "id_number", "q": "440303198512124562"})
    assert ignored.status_code == 200 and ">zsfeng01</a>" not in ignored.data.decode()
    assert not audit_events(app, "admin.user_search")
    # and the form cannot be posted from elsewhere
    forged = admin.client.post("/admin/users", data={"by": "phone", "q": "13800138123"})
    assert forged.status_code == 400 and not audit_events(app, "admin.user_search")


# -- the user page ---------------------------------------------------------------------------------
def test_the_user_page_shows_masked_data_sessions_systems_and_events(app, admin, citizen):
    _signed_in(app, citizen.username)
    _token(app, citizen.id)
    response = admin.get(f"/admin/users/{citizen.sub}")
    assert response.status_code == 200
    page = response.data.decode()
    assert "440***********4562" in page and "138****8123" in page and "张**" in page
    for secret in ("440303198512124562", "13800138123", "张三丰", "6222020200112233445"):
        assert secret not in page
    assert "**** **** **** 3445" in page
    text = text_of(response)
    assert "正常" in text and "登录会话" in text and "127.0.0.1" in text
    assert "exam-service 1 个" in text  # live token of a first-party (no consent) system
    assert "account.created" in page and "login" in page  # recent audit events
    [viewed] = audit_events(app, "admin.user_viewed")
    assert viewed.actor == "admin01" and viewed.subject == citizen.sub


# -- actions --------------------------------------------------------------------------------------
def test_lock_ends_sessions_revokes_tokens_and_refuses_login(app, operator, citizen):
    browser = _signed_in(app, citizen.username)
    jti = _token(app, citizen.id)
    response = operator.submit(f"/admin/users/{citizen.sub}", f"/admin/users/{citizen.sub}/lock",
                               {"lock-reason": "疑似账户被盗，工单 2026-118"})
    assert response.status_code == 302
    assert "账户已锁定，结束 1 个登录会话，撤销 1 个令牌" in operator.get(response.headers["Location"]).data.decode()
    assert _user(app, citizen.sub).status == UserStatus.LOCKED
    assert not _still_signed_in(browser)
    assert _revoked(app, jti)
    refused = login(app.test_client(), citizen.username, DEFAULT_PASSWORD)
    # the right password: the lock is named, with the service desk (nothing said to anyone else)
    assert refused.status_code == 400 and "账户已被管理员锁定，请联系客服" in refused.data.decode()
    [event] = audit_events(app, "account.locked")
    assert event.actor == "operator01" and event.subject == citizen.sub
    assert event.details == {"reason": "疑似账户被盗，工单 2026-118", "revoked_tokens": 1}

    again = operator.post(f"/admin/users/{citizen.sub}/lock", {"lock-reason": "再锁一次"})
    assert again.status_code == 409 and "该账户已处于锁定状态" in again.data.decode()

    response = operator.submit(f"/admin/users/{citizen.sub}", f"/admin/users/{citizen.sub}/unlock",
                               {"unlock-reason": "核实为本人操作"})
    assert response.status_code == 302
    assert _user(app, citizen.sub).status == UserStatus.ACTIVE
    assert login(app.test_client(), citizen.username, DEFAULT_PASSWORD).status_code == 302
    [event] = audit_events(app, "account.unlocked")
    assert event.details == {"reason": "核实为本人操作", "lifted": ["operator"]}


def test_unlock_lifts_the_automatic_lockout_after_failed_logins(app, admin, citizen):
    stranger = app.test_client()
    for _ in range(5):
        login(stranger, citizen.username, "Wrong#password1")
    assert login(app.test_client(), citizen.username, DEFAULT_PASSWORD).status_code == 400  # locked out
    page = admin.get(f"/admin/users/{citizen.sub}").data.decode()
    assert "登录失败次数过多，账户自动锁定中" in page
    assert f"/admin/users/{citizen.sub}/unlock" in page
    response = admin.post(f"/admin/users/{citizen.sub}/unlock", {"unlock-reason": "本人来电核实"})
    assert response.status_code == 302
    assert login(app.test_client(), citizen.username, DEFAULT_PASSWORD).status_code == 302
    assert audit_events(app, "account.unlocked")[0].details["lifted"] == ["failed_logins"]


def test_unlocking_an_unlocked_account_is_refused(app, admin, citizen):
    response = admin.post(f"/admin/users/{citizen.sub}/unlock", {"unlock-reason": "误操作"})
    assert response.status_code == 409
    assert "该账户未被锁定" in response.data.decode()
    assert not audit_events(app, "account.unlocked")


def test_force_logout_ends_every_session_and_token_but_login_still_works(app, admin, citizen):
    phone = _signed_in(app, citizen.username)
    laptop = _signed_in(app, citizen.username)
    jti = _token(app, citizen.id)
    response = admin.submit(f"/admin/users/{citizen.sub}", f"/admin/users/{citizen.sub}/logout",
                            {"logout-reason": "用户报告手机丢失"})
    assert response.status_code == 302
    assert "已强制下线，结束 2 个登录会话，撤销 1 个令牌" in admin.get(response.headers["Location"]).data.decode()
    assert not _still_signed_in(phone) and not _still_signed_in(laptop)
    assert _revoked(app, jti)
    assert _user(app, citizen.sub).status == UserStatus.ACTIVE
    assert login(app.test_client(), citizen.username, DEFAULT_PASSWORD).status_code == 302
    [event] = audit_events(app, "account.logged_out")
    assert event.details == {"reason": "用户报告手机丢失", "revoked_tokens": 1, "sessions": 2}


def test_disable_and_enable(app, admin, citizen):
    browser = _signed_in(app, citizen.username)
    response = admin.submit(f"/admin/users/{citizen.sub}", f"/admin/users/{citizen.sub}/disable",
                            {"disable-reason": "本人申请注销"})
    assert response.status_code == 302
    assert _user(app, citizen.sub).status == UserStatus.DISABLED
    assert not _still_signed_in(browser)
    assert login(app.test_client(), citizen.username, DEFAULT_PASSWORD).status_code == 400
    page = admin.get(f"/admin/users/{citizen.sub}").data.decode()
    assert "已停用" in page and f"/admin/users/{citizen.sub}/enable" in page
    assert f"/admin/users/{citizen.sub}/lock" not in page
    refused = admin.post(f"/admin/users/{citizen.sub}/lock", {"lock-reason": "锁定"})
    assert refused.status_code == 409 and "该账户已停用" in refused.data.decode()

    response = admin.submit(f"/admin/users/{citizen.sub}", f"/admin/users/{citizen.sub}/enable",
                            {"enable-reason": "撤回注销申请"})
    assert response.status_code == 302
    assert _user(app, citizen.sub).status == UserStatus.ACTIVE
    assert login(app.test_client(), citizen.username, DEFAULT_PASSWORD).status_code == 302
    events = [e.event for e in audit_events(app) if e.event.startswith("account.") and e.subject == citizen.sub and e.actor == "admin01"]
    assert events == ["account.disabled", "account.enabled"]


@pytest.mark.parametrize("action", ["lock", "logout", "disable"])
@pytest.mark.parametrize("reason, message", [
    ("", "请填写操作原因"),
    ("好", "请填写操作原因（2–200个字）"),
    ("身份证 440303198512124562 核实", "操作原因中不能包含证件号、手机号或银行卡号等个人信息"),
])
def test_every_action_needs_a_reason_without_personal_data(app, admin, citizen, action, reason, message):
    browser = _signed_in(app, citizen.username)
    response = admin.post(f"/admin/users/{citizen.sub}/{action}", {f"{action}-reason": reason})
    assert response.status_code == 400
    page = response.data.decode()
    assert message in page
    if reason:
        assert reason in page  # what was typed is kept
    assert _user(app, citizen.sub).status == UserStatus.ACTIVE
    assert _still_signed_in(browser)
    assert not [e for e in audit_events(app) if e.event.startswith("account.") and e.subject == citizen.sub and e.actor == "admin01"]


def test_an_operator_cannot_act_on_staff_accounts(app, operator, make_staff):
    make_staff("admin", "chief01")
    with app.app_context():
        chief = db.session.scalar(db.select(User).filter_by(username="chief01"))
        sub = chief.sub
    response = operator.post(f"/admin/users/{sub}/disable", {"disable-reason": "越权操作"})
    assert response.status_code == 403
    assert "管理人员的账户只能由系统管理员操作" in response.data.decode()
    assert _user(app, sub).status == UserStatus.ACTIVE


def test_nobody_locks_themselves_out(app, admin):
    with app.app_context():
        sub = db.session.scalar(db.select(User).filter_by(username="admin01")).sub
    for action in ("lock", "disable"):
        response = admin.post(f"/admin/users/{sub}/{action}", {f"{action}-reason": "手滑"})
        assert response.status_code == 409
        assert "不能对自己的账户执行此操作" in response.data.decode()
    assert _user(app, sub).status == UserStatus.ACTIVE


# -- roles ----------------------------------------------------------------------------------------
def test_an_admin_grants_and_takes_away_a_role(app, admin, citizen):
    response = admin.submit(f"/admin/users/{citizen.sub}", f"/admin/users/{citizen.sub}/role",
                            {"role-role": "auditor", "role-reason": "审计岗位任命"})
    assert response.status_code == 302
    assert _user(app, citizen.sub).role == "auditor"
    browser = _signed_in(app, citizen.username)
    assert browser.get("/admin/audit").status_code == 200
    assert browser.get("/admin/users").status_code == 403

    admin.post(f"/admin/users/{citizen.sub}/role", {"role-role": "", "role-reason": "岗位调整"})
    assert _user(app, citizen.sub).role is None
    assert browser.get("/admin/audit").status_code == 403
    events = audit_events(app, "account.role_changed")
    assert [(e.details["previous_role"], e.details["role"]) for e in events] == [(None, "auditor"), ("auditor", None)]


def test_an_unknown_role_is_refused(app, admin, citizen):
    response = admin.post(f"/admin/users/{citizen.sub}/role", {"role-role": "root", "role-reason": "试试"})
    assert response.status_code == 400
    assert "角色无效" in response.data.decode()
    assert _user(app, citizen.sub).role is None


def test_an_admin_cannot_change_their_own_role(app, admin):
    with app.app_context():
        sub = db.session.scalar(db.select(User).filter_by(username="admin01")).sub
    response = admin.post(f"/admin/users/{sub}/role", {"role-role": "", "role-reason": "退休"})
    assert response.status_code == 409
    assert _user(app, sub).role == "admin"
