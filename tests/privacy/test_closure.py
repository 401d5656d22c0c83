"""注销账号: password + an SMS code; then every token revoked, consents, security answers and
personal data erased, sessions ended with back-channel logout, an SMS notice; the username,
document and phone free to register again as a new account."""

from __future__ import annotations

from datetime import date

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import func, or_, select

from idp.extensions import db
from idp.models import AuditEvent, Consent, PrivacyConsent, SecurityAnswer, Token, User, UserStatus
from idp.services.accounts.records import NewAccount, create_account

from ..conftest import DEFAULT_PASSWORD
from ..helpers import form_fields, login, login_with_second_factor, submit_form
from ..live import free_port, serve
from ..oauth.test_logout import LogoutReceiver
from .conftest import CodeFlow, outbox, outbox_code

CLOSE = "/account/privacy/close"
PERSONAL = ("username", "username_key", "password_hash", "name", "gender", "birthdate", "id_type", "id_number_enc",
            "id_number_hash", "phone_enc", "phone_hash", "bank_code", "card_enc", "card_last4", "role")


def send_code(client):
    return submit_form(client, CLOSE, {"send_sms": "1"})


def confirm(client, password=DEFAULT_PASSWORD, code="", understood=True):
    page = client.get(CLOSE)
    fields = form_fields(page.data)
    fields.update(password=password, sms_code=code, submit="1")
    if understood:
        fields["understood"] = "y"
    return client.post(CLOSE, data=fields)


def test_closing_erases_the_account_and_ends_everything(app, logged_in, user, user_phone, make_client,
                                                        signed_in_elsewhere):
    # a security question set, a third-party system authorised, a privacy consent, tokens
    submit_form(logged_in, "/account/security-questions", {
        "current_password": DEFAULT_PASSWORD, "question_1": "mother_name", "answer_1": "李梅",
        "question_2": "birthplace", "answer_2": "深圳", "question_3": "first_pet", "answer_3": "旺财"})
    from idp.services.accounts.privacy_consents import record_consent

    with app.app_context():
        record_consent(db.session.get(User, user.id), purpose="bank_card_realname")
    receiver = LogoutReceiver()
    with serve(receiver, free_port()) as url:
        rp = make_client(first_party=False, backchannel_logout_uri=f"{url}/backchannel",
                         scope="openid profile offline_access")
        flow = CodeFlow(logged_in, rp)
        consent_page = flow.authorize(scope="openid profile offline_access")
        logged_in.post("/oauth/authorize?" + consent_page.request.query_string.decode(),
                       data={"decision": "allow", "csrf_token": form_fields(consent_page.data)["csrf_token"]})
        tokens = flow.tokens(scope="openid profile offline_access")

        page = logged_in.get(CLOSE).data.decode()
        assert "138****0001" in page and "账号不可恢复" in page
        assert send_code(logged_in).status_code == 200
        code = outbox_code(logged_in, user_phone)
        assert "注销账号验证码" in outbox(logged_in, user_phone)[0]["text"]

        wrong = confirm(logged_in, password="Wrong#pass2026", code=code)
        assert wrong.status_code == 400 and "当前密码错误" in wrong.data.decode()
        unconfirmed = confirm(logged_in, code=code, understood=False)
        assert unconfirmed.status_code == 400 and "请确认您已了解注销的后果" in unconfirmed.data.decode()
        with app.app_context():
            assert db.session.get(User, user.id).status == UserStatus.ACTIVE  # nothing happened yet

        done = confirm(logged_in, code=code)
        assert done.status_code == 200, done.data.decode()[:2000]
        assert "账号已注销" in done.data.decode()
        assert receiver.received.wait(5)

    # every session ended, here and in the other browser
    assert logged_in.get("/account/").status_code == 302
    assert signed_in_elsewhere.get("/account/").status_code == 302
    # the relying system was told, about the pseudonymous subject
    keys = KeySet.import_key_set(logged_in.get("/.well-known/jwks.json").get_json())
    assert jwt.decode(receiver.tokens[0], keys).claims["sub"] == user.sub
    # every token revoked, durably and in the deny-list
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert logged_in.get("/oauth/userinfo", headers=bearer).status_code == 401
    refreshed = logged_in.post("/oauth/token", data={"grant_type": "refresh_token",
                                                     "refresh_token": tokens["refresh_token"]}, headers=rp.basic)
    assert refreshed.get_json()["error"] == "invalid_grant"
    # the notice went to the former phone
    assert "账号已注销" in outbox(logged_in, user_phone)[0]["text"]

    with app.app_context():
        row = db.session.get(User, user.id)
        assert row.status == UserStatus.CLOSED and row.closed_at is not None
        assert row.sub == user.sub  # the pseudonym the audit trail refers to
        assert {c: getattr(row, c) for c in PERSONAL} == dict.fromkeys(PERSONAL)
        assert not row.real_name_verified and not row.phone_verified
        assert db.session.scalar(select(func.count()).select_from(Token).where(
            Token.user_id == user.id, Token.revoked_at.is_(None))) == 0
        assert db.session.scalar(select(func.count()).select_from(Consent).filter_by(user_id=user.id)) == 0
        assert db.session.scalar(select(func.count()).select_from(SecurityAnswer).filter_by(user_id=user.id)) == 0
        # the separate consent stays as proof, tied to the pseudonymous row only
        assert db.session.scalar(select(func.count()).select_from(PrivacyConsent).filter_by(user_id=user.id)) == 1
        # the audit trail refers to the subject, never to the released username
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            or_(AuditEvent.actor == user.username, AuditEvent.actor == user.username.casefold()))) == 0
        closed = db.session.scalar(select(AuditEvent).filter_by(event="account.closed"))
        assert closed.subject == user.sub and closed.actor == user.sub
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).filter_by(subject=user.sub)) > 5
    # the old credentials open nothing
    assert login(logged_in, user.username, DEFAULT_PASSWORD).status_code == 400


def test_the_identifiers_are_free_to_register_again_as_a_new_account(app, logged_in, user, user_phone):
    send_code(logged_in)
    assert confirm(logged_in, code=outbox_code(logged_in, user_phone)).status_code == 200
    with app.app_context():
        again = create_account(NewAccount(
            username=user.username.upper(), password=DEFAULT_PASSWORD, name="张三", id_type="resident_id",
            id_number="440303198512124562", phone=user_phone, gender="M", birthdate=date(1985, 12, 12),
            bank_code="ICBC", card_number="6222020200112233445"), real_name_verified=True)
        assert again.sub != user.sub and again.id != user.id
        assert db.session.get(User, user.id).sub == user.sub  # the closed sub stays taken
    assert login(logged_in, user.username, DEFAULT_PASSWORD).status_code == 302


def test_registering_again_through_the_wizard(app, client):
    from ..register.conftest import CITIZENS, Wizard

    citizen = CITIZENS["lina"]
    wizard = Wizard(client)
    assert wizard.register(citizen, username="lina2026").status_code == 302
    with app.app_context():
        first = db.session.scalar(select(User).filter_by(username_key="lina2026"))
        first_sub, first_id = first.sub, first.id
    assert login(client, "lina2026", DEFAULT_PASSWORD).status_code == 302
    with app.app_context():
        # the registration's SMS resend gate would hold the next code back a minute
        from idp.extensions import redis_store

        for key in redis_store.keys("sms:resend:*"):
            redis_store.delete(key)
    send_code(client)
    assert confirm(client, code=outbox_code(client, citizen.phone)).status_code == 200
    for key in list(client._cookies):
        client.delete_cookie(key[2], domain=key[0], path=key[1])
    with app.app_context():
        from idp.extensions import redis_store

        for key in redis_store.keys("sms:resend:*"):
            redis_store.delete(key)
    response = Wizard(client).register(citizen, username="lina2026")
    assert response.status_code == 302
    with app.app_context():
        second = db.session.scalar(select(User).filter_by(username_key="lina2026"))
        assert second.id != first_id and second.sub != first_sub


def test_the_code_goes_to_the_registered_phone_only_and_is_checked(app, logged_in, user, user_phone):
    send_code(logged_in)
    wrong = confirm(logged_in, code="000000" if outbox_code(logged_in, user_phone) != "000000" else "111111")
    assert wrong.status_code == 400 and "短信验证码错误" in wrong.data.decode()
    missing = confirm(logged_in, password="", code="")
    assert missing.status_code == 400 and "请输入登录密码" in missing.data.decode()
    with app.app_context():
        assert db.session.get(User, user.id).status == UserStatus.ACTIVE


def test_staff_cannot_close_their_own_account(app, client):
    with app.app_context():
        create_account(NewAccount(username="operator1", password=DEFAULT_PASSWORD, name="管理员",
                                  phone="13900139000"), real_name_verified=False, role="operator")
    # staff sign in with their second factor, then reach the user centre like anyone
    assert login_with_second_factor(client, app, "operator1", DEFAULT_PASSWORD).status_code == 302
    response = send_code(client)
    assert response.status_code == 403 and "管理人员的账户不能自行注销" in response.data.decode()
    assert not outbox(client, "13900139000")


def test_an_operator_sees_a_closed_account_as_closed(app, logged_in, user, user_phone):
    send_code(logged_in)
    confirm(logged_in, code=outbox_code(logged_in, user_phone))
    from idp.services.admin import users as admin_users

    with app.app_context():
        overview = admin_users.user_overview(user.sub)
        assert overview.status == "closed" and overview.username == admin_users.CLOSED_USERNAME
        with pytest.raises(admin_users.AccountClosed):
            admin_users.lock_account(user.sub, reason="测试锁定已注销账户")
