from __future__ import annotations

import enum
import secrets
from datetime import date, datetime

from sqlalchemy import Boolean, Date, Enum, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ._types import UTCDateTime, utcnow


class UserStatus(str, enum.Enum):
    ACTIVE = "active"
    LOCKED = "locked"  # locked by an operator (automatic lockouts live in Redis and expire)
    DISABLED = "disabled"
    # 注销: the holder closed the account; the row keeps only its pseudonymous ``sub`` (the audit
    # trail refers to it, and it must never be issued again), every personal field is NULL
    CLOSED = "closed"


def new_subject() -> str:
    # opaque and stable: reveals neither the row id nor the registration order
    return secrets.token_urlsafe(24)


class User(db.Model):
    """A citizen's (or an operator's) account.

    Personal data — document number, phone, bank card — is stored only as AES-GCM (or SM4-GCM)
    ciphertext plus a keyed hash for exact-match lookups; see ``services.pii``.  Only the last four
    digits of the card are kept in clear, for display.
    """

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("id_type", "id_number_hash", name="uq_users_document"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sub: Mapped[str] = mapped_column(String(64), unique=True, default=new_subject)
    # NULL only on a closed account (the username is released for a new registration)
    username: Mapped[str | None] = mapped_column(String(32))
    # casefolded username: the unique key that makes usernames case-insensitive
    username_key: Mapped[str | None] = mapped_column(String(32), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    name: Mapped[str | None] = mapped_column(String(100))  # NULL only on a closed account
    user_type: Mapped[str] = mapped_column(String(16), default="personal")
    gender: Mapped[str | None] = mapped_column(String(1))  # "M" or "F"
    birthdate: Mapped[date | None] = mapped_column(Date)

    id_type: Mapped[str | None] = mapped_column(String(32))
    id_number_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    id_number_hash: Mapped[str | None] = mapped_column(String(64))

    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    phone_verified: Mapped[bool] = mapped_column(Boolean, default=False)

    bank_code: Mapped[str | None] = mapped_column(String(16))
    card_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    card_last4: Mapped[str | None] = mapped_column(String(4))

    # 单位用户 (user_type "unit"): the unit as the enterprise credit registry holds it.  Its code
    # is public data (printed on every business licence), so it is kept in clear and unique;
    # the person who acts for the unit (经办人) is personal data and encrypted like a citizen's.
    unit_name: Mapped[str | None] = mapped_column(String(200))
    unit_id_type: Mapped[str | None] = mapped_column(String(16))  # uscc (组织机构代码 has room: org_code)
    uscc: Mapped[str | None] = mapped_column(String(18), unique=True)
    unit_type: Mapped[str | None] = mapped_column(String(32))
    legal_rep_name: Mapped[str | None] = mapped_column(String(100))
    # The handler's name is ``name`` and the handler's reserved phone and card are ``phone_*`` and
    # ``card_*`` (the bank checked them together), but the handler's document lives apart from
    # ``id_number_*``: that pair is unique per citizen account, and a handler may hold a personal
    # account of their own and act for several units.
    handler_id_type: Mapped[str | None] = mapped_column(String(32))
    handler_id_number_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    handler_id_number_hash: Mapped[str | None] = mapped_column(String(64), index=True)

    real_name_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    real_name_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    status: Mapped[UserStatus] = mapped_column(
        Enum(UserStatus, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]),
        default=UserStatus.ACTIVE,
    )
    role: Mapped[str | None] = mapped_column(String(16))  # admin, operator, auditor or none

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # Authlib asks the user object for its id when it binds codes and tokens.
    def get_user_id(self) -> int:
        return self.id

    @property
    def is_unit(self) -> bool:
        return self.user_type == "unit"

    @property
    def is_active(self) -> bool:
        return self.status == UserStatus.ACTIVE

    def __repr__(self) -> str:  # never print personal data
        return f"<User {self.id} {self.username!r} {self.status.value}>"
