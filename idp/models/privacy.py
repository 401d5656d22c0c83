from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ._types import UTCDateTime, utcnow


class PrivacyConsent(db.Model):
    """A separate consent (PIPL Art. 14, 29) a citizen gave: for what purpose, under which version
    of the privacy notice, when.  Nothing personal: the proof that a processing had its consent.

    A consent given inside a registration is recorded before the account exists, against a hash
    of the flow's id (``flow_ref``); the account is filled in when the registration creates it.
    Kept when the account is closed: it then refers to the pseudonymous row only.
    """

    __tablename__ = "privacy_consents"
    __table_args__ = (Index("ix_privacy_consents_user_purpose", "user_id", "purpose"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    flow_ref: Mapped[str | None] = mapped_column(String(64), index=True)
    purpose: Mapped[str] = mapped_column(String(64))
    notice_version: Mapped[str] = mapped_column(String(32))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
