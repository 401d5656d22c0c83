from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ._types import UTCDateTime, utcnow


class SecurityAnswer(db.Model):
    """One of a user's three security questions (密保问题); the answer is stored as an argon2 hash."""

    __tablename__ = "security_answers"
    __table_args__ = (
        UniqueConstraint("user_id", "position", name="uq_security_answers_user_position"),
        UniqueConstraint("user_id", "question", name="uq_security_answers_user_question"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # 1, 2, 3
    question: Mapped[str] = mapped_column(String(32))  # a code from services.security_questions
    answer_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
