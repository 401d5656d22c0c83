"""Registering a citizen: the one service behind the web wizard and ``idp users create``.

``register_account`` runs the identity rules, the uniqueness checks, then the bank four-element
check, and only on a match creates the account in one transaction (``accounts.create_account``,
which also settles a race with a parallel registration).  The wizard proves the phone with an
SMS code first (``verify_phone_code``); the CLI is an operator's tool and does not.

Every attempt's outcome is audited as ``register`` with a reason code, never personal data.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import DocumentTaken, InvalidField, PasswordRejected, PasswordsDiffer, UserError, UsernameTaken
from ..extensions import db
from ..models import User
from .audit import events as audit
from .identity import passwords
from .accounts.records import NewAccount, check_new_account, create_account, find_by_document, username_available
from .verification.bank import BankCheck, bank_verifier, raise_for, raise_for_card
from .verification.banks import BANKS
from .identity.rules import (
    CardNumber,
    Identity,
    check_card_number,
    check_identity,
    check_mobile,
    username_problem,
)
from .verification.sms import SmsCode, SmsCodeInvalid


class KeepPasswordRefused(InvalidField):
    """Back at 填写登录信息 with the password left empty (kept) but another username: the policy
    forbids a password containing the username, so the kept one must be typed again."""

    message = "修改了用户名，请重新输入密码"
    field = "password"


class BankNotChosen(InvalidField):
    message = "请选择银行"
    field = "bank_code"


# -- the checks of each step -------------------------------------------------------------------
def check_username(username: str) -> str:
    """Format and availability (the live check and step 1)."""
    username = (username or "").strip()
    if problem := username_problem(username):
        raise InvalidField(problem, field="username")
    if not username_available(username):
        raise UsernameTaken()
    return username


def check_login_info(username: str, password: str, confirm: str) -> str:
    username = check_username(username)
    if problems := passwords.password_problems(password or "", username):
        raise PasswordRejected(problems)
    if password != confirm:
        raise PasswordsDiffer()
    return username


def check_identity_info(name, id_type, id_number, gender, birthdate, *, actor: str | None = None) -> Identity:
    identity = check_identity(name, id_type, id_number, gender, birthdate)
    check_document_free(identity, actor=actor)
    return identity


def check_document_free(identity: Identity, *, actor: str | None = None) -> None:
    """证件已被使用 — an answer that tells whether a document is registered, so the wizard pays
    for each from a budget before asking (``flows.registration``)."""
    if find_by_document(identity.id_type, identity.id_number):
        audit_failure(DocumentTaken(), actor, "web")
        raise DocumentTaken()


@dataclass(frozen=True)
class VerificationInfo:
    bank_code: str
    card: CardNumber
    phone: str


def check_bank_code(bank_code: str | None) -> str:
    if bank_code not in BANKS:
        raise BankNotChosen()
    return bank_code


def check_verification_info(bank_code: str | None, card_number: str, phone: str) -> VerificationInfo:
    return VerificationInfo(check_bank_code(bank_code), check_card_number(card_number), check_mobile(phone))


def check_card(bank_code: str | None, card_number: str) -> tuple[str, str]:
    """The bank and card number of 填写验证信息, checked and canonical."""
    return check_bank_code(bank_code), check_card_number(card_number).number


def refuse_unusable_card(bank_code: str, card_number: str) -> None:
    """Ask the bank what card this is (``POST /v1/cards/lookup``): a credit card, an inactive or
    an unknown card gets the refusal the four-element check would give, before an SMS is sent."""
    raise_for_card(bank_verifier().lookup_card(bank_code, card_number))


def verify_phone_code(phone: str, code: str, *, actor: str | None = None) -> None:
    """The SMS code the citizen typed, for registration; a failure is an audited attempt."""
    try:
        SmsCode("register").verify(phone, code)
    except SmsCodeInvalid as exc:
        audit_failure(exc, actor, "web")
        raise


# -- the account ---------------------------------------------------------------------------------
def checked_new_account(data: NewAccount) -> NewAccount:
    """``data`` with every identity rule applied and its values in canonical form (NFC name,
    canonical document number, digits-only phone and card; birth date and gender from the
    document where it carries them)."""
    if not data.id_type or not data.id_number:
        raise InvalidField("请输入证件号", field="id_number")
    identity = check_identity(data.name, data.id_type, data.id_number, data.gender, data.birthdate)
    info = check_verification_info(data.bank_code, data.card_number or "", data.phone or "")
    return replace(
        data,
        name=identity.name, id_number=identity.id_number, gender=identity.gender, birthdate=identity.birthdate,
        bank_code=info.bank_code, card_number=info.card.number, phone=info.phone,
    )


def register_account(
    data: NewAccount, *, actor: str | None = None, role: str | None = None, channel: str = "cli"
) -> User:
    """Check, verify with the bank, create.  Raises the typed error of the first failure; nothing
    is written unless the bank answered ``match``."""
    actor = actor or (data.username or "")[:64] or None
    try:
        data = checked_new_account(data)
        check_new_account(data)  # before the bank: a taken username must not cost a bank query
        outcome = bank_verifier().verify(
            BankCheck(bank=data.bank_code, card_number=data.card_number, name=data.name,
                      id_type=data.id_type, id_number=data.id_number, phone=data.phone)
        )
        raise_for(outcome)
        user = create_account(data, real_name_verified=True, role=role, actor=actor)
    except UserError as exc:
        audit_failure(exc, actor, channel)
        raise
    audit.add("register", "success", actor=actor, subject=user.sub, channel=channel, bank=data.bank_code)
    db.session.commit()
    return user


def audit_failure(exc: UserError, actor: str | None, channel: str) -> None:
    """One ``register`` event for a failed attempt: the reason code, never the values."""
    outcome = "error" if exc.status >= 500 else "failure"
    audit.add("register", outcome, actor=actor, channel=channel, reason=exc.reason_code,
              **({"field": exc.field} if exc.field else {}))
    db.session.commit()
