"""The privacy notice page and the recorded separate consents."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from idp.extensions import db
from idp.models import AuditEvent, PrivacyConsent, User
from idp.services.accounts.privacy_consents import (
    UnknownConsentPurpose,
    claim_consents,
    consents_of,
    has_consent,
    record_consent,
)


def test_the_notice_is_a_public_page_with_the_version_in_force(app, client):
    app.config["PRIVACY_NOTICE_VERSION"] = "2027-03"
    page = client.get("/privacy")
    assert page.status_code == 200
    html = page.data.decode()
    assert "个人信息保护告知" in html and "版本 2027-03" in html
    assert "仅用于" in html and "银行四要素实名核验" in html
    # linked from the footer of every page
    assert 'href="/privacy"' in client.get("/login").data.decode()


def test_a_consent_given_during_a_flow_is_recorded_then_claimed_by_the_new_account(app, user):
    with app.app_context():
        record_consent("flow-123", purpose="bank_card_realname")
        assert has_consent("flow-123", "bank_card_realname", app.config["PRIVACY_NOTICE_VERSION"])
        stored = db.session.scalar(select(PrivacyConsent))
        assert stored.user_id is None and stored.flow_ref and "flow-123" not in stored.flow_ref
        account = db.session.get(User, user.id)
        assert claim_consents("flow-123", account) == 1
        [consent] = consents_of(account)
        assert consent.purpose == "bank_card_realname"
        assert consent.notice_version == app.config["PRIVACY_NOTICE_VERSION"]
        assert has_consent(account, "bank_card_realname")
        assert not has_consent("flow-123", "bank_card_realname")  # now the account's
        assert claim_consents("flow-123", account) == 0
        given = db.session.scalar(select(AuditEvent).filter_by(event="privacy.consent_given"))
        assert given.details == {"purpose": "bank_card_realname", "version": app.config["PRIVACY_NOTICE_VERSION"]}


def test_a_consent_keeps_the_version_it_was_given_under(app, user):
    with app.app_context():
        account = db.session.get(User, user.id)
        record_consent(account, purpose="bank_card_realname", version="2025-01")
        assert has_consent(account, "bank_card_realname", "2025-01")
        assert not has_consent(account, "bank_card_realname", app.config["PRIVACY_NOTICE_VERSION"])
        with pytest.raises(UnknownConsentPurpose):
            record_consent(account, purpose="marketing")


def test_the_privacy_page_lists_the_consents(app, logged_in, user):
    with app.app_context():
        record_consent(db.session.get(User, user.id), purpose="bank_card_realname")
    html = logged_in.get("/account/privacy").data.decode()
    assert "仅用于银行四要素实名核验" in html and app.config["PRIVACY_NOTICE_VERSION"] in html
    assert 'href="/privacy"' in html
