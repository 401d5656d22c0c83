"""Separate consents (PIPL Art. 14, 29), recorded with the version of the privacy notice in force.

A bank card number is sensitive personal information: registration's 填写验证信息 asks for
explicit consent to use it for the real-name check only, before the card reaches the bank.  At
that moment the account does not exist yet, so a consent is recorded against the registration's
flow (a hash of its id, never the id) and handed to the account when the registration creates it:

    record_consent(flow.id, purpose="bank_card_realname")          # the box was ticked
    ...
    user = create_account(...)
    claim_consents(flow.id, user)                                   # the account now holds it

A logged-in citizen's consent is recorded against the account directly: ``record_consent(user,
purpose=...)``.  The version defaults to ``PRIVACY_NOTICE_VERSION``.
"""

from __future__ import annotations

import hashlib

from flask import current_app
from sqlalchemy import select, update

from ...errors import UserError
from ...extensions import db
from ...models import PrivacyConsent, User
from ..audit import events as audit

#: purpose code → what the citizen agreed to, as the page and 个人信息与隐私 state it
CONSENT_PURPOSES: dict[str, str] = {
    "bank_card_realname": "同意平台将银行卡号（敏感个人信息）仅用于银行四要素实名核验",
}


class UnknownConsentPurpose(ValueError):
    """A programming error: every purpose is declared in ``CONSENT_PURPOSES``."""


class ConsentRequired(UserError):
    message = "请阅读《个人信息保护告知》并勾选同意后继续"
    field = "consent"


def notice_version() -> str:
    return str(current_app.config["PRIVACY_NOTICE_VERSION"])


def _flow_ref(flow_id: str) -> str:
    return hashlib.sha256(f"privacy-consent|{flow_id}".encode()).hexdigest()


def record_consent(holder: User | str, *, purpose: str, version: str | None = None,
                   commit: bool = True) -> PrivacyConsent:
    """Record that ``holder`` (an account, or the id of a flow whose account does not exist yet)
    consented to ``purpose`` under notice ``version`` (default: the one in force), with its audit
    event.  Commits unless ``commit=False`` (then it joins the caller's transaction)."""
    if purpose not in CONSENT_PURPOSES:
        raise UnknownConsentPurpose(purpose)
    version = version or notice_version()
    consent = PrivacyConsent(purpose=purpose, notice_version=version)
    if isinstance(holder, User):
        consent.user_id = holder.id
        actor, subject = holder.username, holder.sub
    else:
        if not holder:
            raise ValueError("a consent needs an account or a flow id")
        consent.flow_ref = _flow_ref(holder)
        actor = subject = None
    db.session.add(consent)
    audit.add("privacy.consent_given", actor=actor, subject=subject, purpose=purpose, version=version,
              )
    if commit:
        db.session.commit()
    return consent


def claim_consents(flow_id: str, user: User, *, commit: bool = True) -> int:
    """The consents given during flow ``flow_id`` now belong to ``user`` (the account the flow
    created).  Returns how many."""
    claimed = db.session.execute(
        update(PrivacyConsent)
        .where(PrivacyConsent.flow_ref == _flow_ref(flow_id), PrivacyConsent.user_id.is_(None))
        .values(user_id=user.id, flow_ref=None)
    ).rowcount
    if claimed:
        audit.add("privacy.consent_claimed", actor=user.username, subject=user.sub, consents=claimed,
                  )
    if commit:
        db.session.commit()
    return claimed


def has_consent(holder: User | str, purpose: str, version: str | None = None) -> bool:
    """Whether ``holder`` consented to ``purpose`` (under ``version``, if given)."""
    query = select(PrivacyConsent.id).where(PrivacyConsent.purpose == purpose)
    if isinstance(holder, User):
        query = query.where(PrivacyConsent.user_id == holder.id)
    else:
        query = query.where(PrivacyConsent.flow_ref == _flow_ref(holder))
    if version is not None:
        query = query.where(PrivacyConsent.notice_version == version)
    return db.session.scalar(query.limit(1)) is not None


def consents_of(user: User) -> list[PrivacyConsent]:
    return list(db.session.scalars(
        select(PrivacyConsent).where(PrivacyConsent.user_id == user.id)
        .order_by(PrivacyConsent.granted_at.desc(), PrivacyConsent.id.desc())
    ))
