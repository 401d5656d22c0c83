from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ._types import UTCDateTime, utcnow


class SecondFactor(db.Model):
    """A second factor of an account: a TOTP secret (RFC 6238) or a WebAuthn credential.

    The TOTP secret is stored encrypted like personal data (it is a shared secret: whoever reads
    it can make codes); ``last_step`` is the last time-step accepted, so a code is good once.  A
    WebAuthn credential keeps only its id and public key; ``sign_count`` catches a cloned key.
    """

    __tablename__ = "second_factors"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "totp" or "webauthn"
    label: Mapped[str] = mapped_column(String(64))
    totp_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    last_step: Mapped[int | None] = mapped_column(Integer)
    credential_id: Mapped[str | None] = mapped_column(String(512), unique=True)  # base64url
    public_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(Integer, default=0)
    device_type: Mapped[str | None] = mapped_column(String(16))  # single_device or multi_device
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RecoveryCode(db.Model):
    """One of an account's single-use recovery codes, kept only as a keyed hash."""

    __tablename__ = "recovery_codes"
    __table_args__ = (UniqueConstraint("user_id", "code_hash", name="uq_recovery_codes_user_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
