"""安全中心: changing the password and the security questions (密保问题)."""

from __future__ import annotations

import unicodedata
from datetime import datetime, timezone

from sqlalchemy import delete, select

from ...errors import InvalidField, PasswordRejected, PasswordsDiffer, UserError
from ...extensions import db
from ...models import SecurityAnswer, User
from .revocation import revoke_user_tokens
from ..audit import events as audit
from . import lockout
from ..identity import passwords
from .sessions import revoke_all_logins

SECURITY_QUESTIONS: dict[str, str] = {
    "mother_name": "您母亲的姓名是？",
    "father_name": "您父亲的姓名是？",
    "birthplace": "您的出生地是？",
    "primary_school": "您就读的小学名称是？",
    "first_teacher": "您的启蒙老师的姓名是？",
    "childhood_friend": "您童年最好的朋友的名字是？",
    "first_pet": "您养的第一个宠物的名字是？",
    "spouse_birthday": "您配偶的生日是？（如0101）",
    "favourite_book": "您最喜欢的一本书是？",
    "first_job_city": "您第一份工作所在的城市是？",
}


ANSWER_MAX = 64  # characters of one answer, after normalisation


class WrongCurrentPassword(UserError):
    message = "当前密码错误"
    field = "current_password"


class SameAsOldPassword(UserError):
    message = "新密码不能与原密码一致"
    field = "new_password"


class QuestionsNotDistinct(UserError):
    message = "请选择三个不同的密保问题"
    field = "question_1"


class AnswerMissing(InvalidField):
    """An answer left empty (or too long): setting the questions, or answering them in recovery
    (which says so in its own words)."""

    message = f"请填写每个密保问题的答案（1–{ANSWER_MAX}个字）"


def _check_current(user: User, current: str) -> None:
    """The current password, under the same lockout as the login (a stolen session must not
    become a free password oracle)."""
    try:
        with lockout.attempt(user.username) as attempt:
            if not passwords.verify_password(user.password_hash, current or ""):
                attempt.failed()
                raise WrongCurrentPassword()
            attempt.succeeded()
    except (lockout.Refused, WrongCurrentPassword):
        audit.add("password.check", "failure", actor=user.username, subject=user.sub)
        db.session.commit()
        raise WrongCurrentPassword() from None


def confirm_password(user: User, password: str) -> None:
    """Re-authentication before a sensitive act (下载我的数据, 注销账号): the password under the
    login lockout; raises ``WrongCurrentPassword``."""
    _check_current(user, password)


def change_password(user: User, current: str, new: str, confirm: str, *, reason: str = "changed") -> None:
    """Verify, change, then end every session and token of the user: the user is
    logged out everywhere and relying systems with back-channel logout are told."""
    _check_current(user, current)
    set_new_password(user, new, confirm, event="password.changed")


def set_new_password(user: User, new: str, confirm: str, *, event: str) -> None:
    """Shared by the password change and the recovery reset."""
    if new != confirm:
        raise PasswordsDiffer("两次输入的新密码不一致", field="confirm_password")
    if passwords.verify_password(user.password_hash, new):
        raise SameAsOldPassword()
    if problems := passwords.password_problems(new, user.username):
        raise PasswordRejected(problems)
    user.password_hash = passwords.hash_password(new)
    user.password_changed_at = datetime.now(timezone.utc)
    audit.add(event, actor=user.username, subject=user.sub)
    db.session.commit()
    revoke_all_logins(user.id, reason=event)
    revoke_user_tokens(user.id)
    db.session.commit()


def normalise_answer(answer: str) -> str:
    text = unicodedata.normalize("NFKC", answer or "").casefold()
    return " ".join(text.split())


def set_security_questions(user: User, current: str, pairs: list[tuple[str, str]]) -> None:
    _check_current(user, current)
    questions = [q for q, _ in pairs]
    if len(pairs) != 3 or len(set(questions)) != 3 or not set(questions) <= SECURITY_QUESTIONS.keys():
        raise QuestionsNotDistinct()
    answers = [normalise_answer(a) for _, a in pairs]
    if any(not a or len(a) > ANSWER_MAX for a in answers):
        raise AnswerMissing()
    db.session.execute(delete(SecurityAnswer).where(SecurityAnswer.user_id == user.id))
    for position, (question, answer) in enumerate(zip(questions, answers), start=1):
        db.session.add(SecurityAnswer(user_id=user.id, position=position, question=question,
                                      answer_hash=passwords.hash_password(answer)))
    audit.add("security_questions.set", actor=user.username, subject=user.sub)
    db.session.commit()


def security_questions(user: User) -> list[SecurityAnswer]:
    return list(db.session.scalars(
        select(SecurityAnswer).where(SecurityAnswer.user_id == user.id).order_by(SecurityAnswer.position)
    ))


def check_security_answers(user: User, answers: list[str]) -> bool:
    """All three right (recovery).  Every answer is checked so timing says nothing of which failed."""
    stored = security_questions(user)
    if len(stored) != 3 or len(answers) != 3:
        return False
    results = [passwords.verify_password(s.answer_hash, normalise_answer(a)) for s, a in zip(stored, answers)]
    return all(results)
