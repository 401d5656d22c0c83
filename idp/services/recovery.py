"""Recovering access without a login (SPEC §4): the domain rules behind 忘记用户名, 忘记密码 and
手机号已停用?.  The step order lives in ``idp.flows.recovery``; this module answers "which account
is this", "is this proof right", and changes the phone.

Recovery must not tell a stranger which accounts exist.  So:

- looking an account up does the same work (one keyed hash, one indexed query) whether or not it
  exists, and the caller answers the same way either way;
- failure counters are keyed on what the visitor typed (a keyed hash of the username or of the
  document), never on whether it names an account, so a limit trips alike for both;
- an unknown username asked for its security questions gets three decoy questions chosen by a
  keyed hash of the name (the same three every time), and any answer fails at the same cost.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

from flask import current_app

from ..errors import InvalidField, UserError
from ..extensions import db
from ..models import User
from .audit import events as audit
from .identity import passwords, pii
from .accounts.security import SECURITY_QUESTIONS, check_security_answers, security_questions
from .accounts.records import decrypted, find_by_document, find_by_uscc, find_by_username
from .verification.bank import BankCheck, bank_verifier, raise_for
from .identity.rules import USER_TYPES, check_document, check_name, normalise_name, username_key
from .identity.units import UNIT_NAME_MAX, UnitNameInvalid, check_uscc
from .limits import KeyedLimit
from .verification.sms import SIGNATURE, sms_sender


# -- failures a visitor sees ------------------------------------------------------------------------
class UserTypeInvalid(InvalidField):
    message = "请选择用户类型"
    field = "user_type"


class MethodInvalid(InvalidField):
    message = "请选择找回方式"


class UsernameMissing(InvalidField):
    message = "请输入用户名"
    field = "username"


class IdentityNotMatched(UserError):
    """证件号码+手机验证码: the document or the phone is not the registered one (one message for
    both, and for a username that names no account)."""

    message = "证件类型、证件号或手机号码与注册信息不一致（手机号码须为注册时填写的手机号码）"


class SecurityQuestionsNotSet(UserError):
    message = "未设置密保，不能通过密保问题找回密码"


class SecurityAnswersWrong(UserError):
    message = "密保问题答案不正确"


class TooManyRecoveryFailures(UserError):
    message = "验证失败次数过多，请{window}后再试"
    status = 429


class RecoveryAccountUnknown(UserError):
    """Only after the visitor proved a phone by SMS (手机号已停用?): the details typed earlier name
    no account, and changing a phone needs one."""

    message = "未找到与所填信息一致的账号，请返回核对后重试"


# -- finding the account --------------------------------------------------------------------------
def _recoverable(user: User | None) -> User | None:
    # an account an operator locked or disabled is not recoverable here; the visitor is answered
    # exactly as for an unknown one
    return user if user is not None and user.is_active else None


def find_by_identity(name: str, user_type: str, id_type: str, id_number: str) -> tuple[User | None, str]:
    """忘记用户名 step 1.  Format errors are raised (they say nothing about accounts); otherwise the
    matching active account or None, and the failure-counter key of what was typed."""
    clean_name = check_name(name, id_type)
    if user_type not in USER_TYPES:
        raise UserTypeInvalid()
    facts = check_document(id_type, id_number)
    user = find_by_document(facts.id_type, facts.number)
    if user is not None and (user.name != clean_name or user.user_type != user_type):
        user = None
    return _recoverable(user), document_key(facts.id_type, facts.number)


def find_unit(unit_name: str, unit_id_type: str, uscc: str) -> tuple[User | None, str]:
    """忘记用户名 step 1 for 单位用户: the unit account of that code under that name (as the
    registry confirmed it), or None; the same one indexed query either way.  Format errors are
    raised; the failure-counter key is a keyed hash of the code typed."""
    clean_name = normalise_name(unit_name or "")
    if not clean_name or len(clean_name) > UNIT_NAME_MAX:
        raise UnitNameInvalid()
    code = check_uscc(unit_id_type, uscc)
    user = find_by_uscc(code)
    if user is not None and (not user.is_unit or user.unit_name != clean_name or user.unit_id_type != unit_id_type):
        user = None
    return _recoverable(user), unit_key(unit_id_type, code)


def find_by_login_name(username: str) -> tuple[User | None, str]:
    """忘记密码 step 1: the active account of a username (case-insensitive) or None, and the
    failure-counter key of the name typed."""
    username = (username or "").strip()
    if not username:
        raise UsernameMissing()
    return _recoverable(find_by_username(username)), name_key(username)


def document_key(id_type: str, id_number: str) -> str:
    return "doc:" + pii.cipher().lookup_hash("id_number", f"{id_type}|{id_number}")[:32]


def unit_key(unit_id_type: str, code: str) -> str:
    # the code is public, but a keyed hash keeps the counters' keys alike for every kind
    return "unit:" + pii.cipher().lookup_hash("uscc", f"{unit_id_type}|{code}")[:32]


def name_key(username: str) -> str:
    return "name:" + pii.cipher().lookup_hash("username", username_key(username))[:32]


def account(user_id: int | None) -> User | None:
    return _recoverable(db.session.get(User, user_id)) if user_id else None


def registered_phone(user: User | None) -> str | None:
    return decrypted(user, "phone") if user is not None else None


# -- failure counters (per account or per unknown name, per window) ----------------------------------
FAILURES = KeyedLimit("RECOVERY_FAILURE_LIMIT", TooManyRecoveryFailures, namespace="recovery-failures",
                      window="RECOVERY_FAILURE_WINDOW")


@dataclass
class ProofAttempt:
    """One check of a recovery proof (security answers, document + phone, a bank check).  It
    holds one unit of the visitor's failure budget from before the check; ``failed()`` keeps it
    spent, any other ending (success, input error, a platform down) gives it back."""

    key: str
    counted: bool = False

    def failed(self) -> None:
        self.counted = True


@contextmanager
def proof_attempt(key: str) -> Iterator[ProofAttempt]:
    """``with recovery.proof_attempt(flow_key) as attempt:`` check, and ``attempt.failed()`` on a
    wrong proof.  Raises ``TooManyRecoveryFailures`` before the check once the budget is spent, so
    parallel attempts get no more checks than the limit."""
    FAILURES.take(key)
    attempt = ProofAttempt(key)
    try:
        yield attempt
    finally:
        if not attempt.counted:
            FAILURES.give_back(key)


def clear_failures(key: str) -> None:
    FAILURES.reset(key)


# -- security questions ---------------------------------------------------------------------------
def decoy_questions(key: str) -> list[str]:
    """Three distinct question codes, the same for the same key, that look like anyone's."""
    secret = current_app.config["SECRET_KEY"].encode()
    ranked = sorted(SECURITY_QUESTIONS, key=lambda q: hmac.new(secret, f"decoy|{key}|{q}".encode(),
                                                               hashlib.sha256).digest())
    return ranked[:3]


def has_security_questions(user: User | None) -> bool:
    return user is not None and len(security_questions(user)) == 3


def questions_for(user: User | None, key: str) -> list[str]:
    """The question texts to ask: the account's three, or decoys for an unknown name and for an
    account without questions (staff accounts never have any), so that the page does not tell
    which names are accounts, nor which accounts set questions."""
    stored = security_questions(user) if user is not None else []
    codes = [s.question for s in stored] if len(stored) == 3 else decoy_questions(key)
    return [SECURITY_QUESTIONS.get(code, code) for code in codes]


def answers_right(user: User | None, answers: list[str]) -> bool:
    if not has_security_questions(user):
        for answer in answers:  # three argon2 checks, as for a real account
            passwords.dummy_verify(answer or "")
        return False
    return check_security_answers(user, answers)


def identity_and_phone_match(user: User | None, id_type: str, id_number: str, phone: str) -> bool:
    """证件号码+手机验证码: the document and the phone are those registered (keyed hashes compared,
    nothing decrypted).  A unit account's document is its 统一社会信用代码 (public, kept in clear)
    and its phone the handler's; a person's document never matches a unit account, nor a code a
    personal one."""
    box = pii.cipher()
    doc_hash = box.lookup_hash("id_number", id_number)
    phone_hash = box.lookup_hash("phone", phone)
    if user is None:
        return False
    if user.is_unit:
        document_right = (user.unit_id_type == id_type
                          and hmac.compare_digest((user.uscc or "").encode(), id_number.encode()))
    else:
        document_right = user.id_type == id_type and hmac.compare_digest(user.id_number_hash or "", doc_hash)
    return document_right and hmac.compare_digest(user.phone_hash or "", phone_hash)


# -- what recovery changes ------------------------------------------------------------------------------
def send_username(user: User, phone: str) -> None:
    """找回用户名成功: the username goes by SMS to the registered phone (a unit's: its handler's),
    never onto the page."""
    whose = f"{user.unit_name}在" if user.is_unit else "您在"
    text = (f"{SIGNATURE}{whose}人社局社会统一用户管理平台注册的{'单位' if user.is_unit else ''}用户名为："
            f"{user.username}。如非本人操作，请忽略本短信。")
    sms_sender().send(phone, text, purpose="recovery")
    audit.add("recovery.username_sent", actor=user.username, subject=user.sub)
    db.session.commit()


def bank_identity(user: User) -> tuple[str | None, str | None]:
    """The document the bank knows the account's holder by: a person's own, a unit's handler's
    (the handler's card and phone are the unit account's)."""
    if user.is_unit:
        blob = user.handler_id_number_enc
        return user.handler_id_type, pii.cipher().decrypt("id_number", blob) if blob else None
    return user.id_type, decrypted(user, "id_number")


def verify_new_phone(user: User, bank_code: str, card_number: str, phone: str) -> None:
    """手机号已停用?: the bank four-element check with the account's own name and document and
    the card whose reserved phone is the new number; raises the bank's typed failure."""
    id_type, id_number = bank_identity(user)
    if not id_type or not id_number:
        raise RecoveryAccountUnknown()  # an account without a document cannot be bank-verified
    outcome = bank_verifier().verify(BankCheck(bank=bank_code, card_number=card_number, name=user.name,
                                               id_type=id_type, id_number=id_number, phone=phone))
    raise_for(outcome)


def set_phone(user: User, phone: str) -> None:
    """The account's phone becomes ``phone`` (proven): ciphertext and lookup hash, in the caller's
    transaction (shared with 变更用户信息)."""
    box = pii.cipher()
    user.phone_enc = box.encrypt("phone", pii.normalise("phone", phone))
    user.phone_hash = box.lookup_hash("phone", phone)
    user.phone_verified = True


def replace_phone(user: User, phone: str, *, channel: str) -> None:
    """The registered phone becomes ``phone`` (verified), in one transaction with its audit event."""
    set_phone(user, phone)
    user.real_name_verified_at = datetime.now(timezone.utc)
    audit.add("phone.changed", actor=user.username, subject=user.sub, channel=channel)
    db.session.commit()
