"""填写经办人信息 asks what 个人用户注册's 填写身份信息 and 填写验证信息 ask: gender and birth date for
a document that does not carry them, the card's separate consent (recorded with the notice's
version, held by the new account), and the card lookup before an SMS code is spent."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from idp.extensions import db
from idp.models import PrivacyConsent, User

from ..register.conftest import CITIZENS, field_errors


def _units(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User).where(User.user_type == "unit"))


def _outbox(client, phone: str) -> list:
    return client.get("/dev/sms-outbox.json", query_string={"phone": phone}).get_json()["messages"]


def test_the_page_asks_gender_birthdate_and_the_card_consent_unticked(unit_wizard, client):
    unit_wizard.through_unit()
    html = client.get("/register/unit/handler").data.decode()
    assert 'name="gender"' in html and 'name="birthdate"' in html and "出生日期" in html
    box = re.search(r'<input[^>]*name="consent"[^>]*>', html).group(0)
    assert 'type="checkbox"' in box and "checked" not in box
    assert 'href="/privacy"' in html and "仅用于银行实名核验" in html


def test_a_handler_whose_document_carries_no_birthdate_gives_gender_and_birthdate(app, unit_wizard):
    hk = CITIZENS["hk"]
    unit_wizard.through_unit()
    missing = unit_wizard.handler(hk)  # neither given: the permit number does not carry them
    assert missing.status_code == 400 and _units(app) == 0
    assert any("性别" in e for e in field_errors(missing.data)), field_errors(missing.data)
    done = unit_wizard.handler(hk, code=unit_wizard.outbox_code(hk.phone), gender=hk.gender,
                               birthdate=hk.birthdate.isoformat())
    assert done.headers.get("Location") == "/register/unit/done", field_errors(done.data)
    with app.app_context():
        user = db.session.scalar(select(User).filter_by(username="unit2026"))
        assert (user.gender, user.birthdate, user.handler_id_type) == (hk.gender, hk.birthdate, "hk_macao_permit")


def test_without_the_consent_nothing_goes_to_the_bank_and_the_code_is_kept(app, unit_wizard):
    lina = CITIZENS["lina"]
    unit_wizard.through_unit()
    refused = unit_wizard.handler(lina, consent=None)
    assert refused.status_code == 400 and _units(app) == 0
    assert "请阅读《个人信息保护告知》并勾选同意后继续" in field_errors(refused.data)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(PrivacyConsent)) == 0
    code = unit_wizard.outbox_code(lina.phone)  # not spent on the refusal
    done = unit_wizard.handler(lina, code=code)
    assert done.headers.get("Location") == "/register/unit/done", field_errors(done.data)


def test_the_consent_is_recorded_with_the_notice_version_and_held_by_the_unit_account(app, unit_wizard):
    app.config["PRIVACY_NOTICE_VERSION"] = "2026-12-unit"
    assert unit_wizard.register().headers.get("Location") == "/register/unit/done"
    with app.app_context():
        user = db.session.scalar(select(User).filter_by(username="unit2026"))
        [consent] = db.session.scalars(select(PrivacyConsent)).all()
        assert (consent.user_id, consent.flow_ref) == (user.id, None)
        assert (consent.purpose, consent.notice_version) == ("bank_card_realname", "2026-12-unit")


def test_a_credit_card_is_refused_at_send_before_a_code_is_spent(app, unit_wizard, client):
    credit = CITIZENS["credit"]
    unit_wizard.through_unit()
    data = dict(name=credit.name, id_type=credit.id_type, id_number=credit.id_number, bank_code=credit.bank_code,
                card_number=credit.card_number, phone=credit.phone, consent="y")
    sent = unit_wizard.post("/register/unit/handler", button="send_sms", **data)
    assert sent.status_code == 400 and "该卡不是借记卡" in " ".join(field_errors(sent.data))
    assert _outbox(client, credit.phone) == []
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', client.get("/register/unit/handler").data.decode())
    answer = client.post("/register/unit/sms", data={**data, "csrf_token": token.group(1)})
    assert answer.status_code == 400 and "该卡不是借记卡" in answer.get_json()["message"]
    assert _outbox(client, credit.phone) == []


def test_a_unit_sent_by_a_relying_system_sees_done_signed_in_with_the_way_back(app, client, unit_wizard, make_client):
    from ..oauth.conftest import CodeFlow

    rp = make_client(first_party=True, allowed_user_types="unit", name="单位网上办事")
    CodeFlow(client, rp).authorize(prompt="create")
    assert unit_wizard.register().headers.get("Location") == "/register/unit/done"
    page = client.get("/register/unit/done").data.decode()
    assert "注册成功" in page and "返回单位网上办事" in page
    back = client.get("/register/continue")
    assert back.status_code == 302 and "/oauth/authorize" in back.headers["Location"]
    assert "code=" in client.get(back.headers["Location"]).headers["Location"]


def test_a_units_only_system_opens_the_unit_tab_and_unit_registration(client, make_client):
    from ..oauth.conftest import CodeFlow

    rp = make_client(first_party=True, allowed_user_types="unit")
    assert CodeFlow(client, rp).authorize().headers["Location"] == "/login?type=unit"
    assert CodeFlow(client, rp).authorize(prompt="create").headers["Location"] == "/register/unit"
    both = make_client(first_party=True, allowed_user_types="both")
    assert CodeFlow(client, both).authorize().headers["Location"] == "/login"
