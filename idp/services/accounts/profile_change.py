"""变更用户信息 (SPEC §3): a citizen changes 姓名, 银行, 银行账号 or 手机号码 — never 用户名, 证件类型
or 证件号码.  Every change is re-verified by the bank four-element check with the resulting values
(the same typed outcomes and messages as registration, ``services.bank``); a new phone is also
proven by an SMS code (the flow in ``idp.flows.profile_change``).  Nothing is written until every
check passed, then one transaction with its audit event.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from ...errors import InvalidField, UserError
from ...extensions import db
from ...models import User
from ..audit import events as audit
from ..identity import pii
from ..limits import Charge, KeyedLimit, charged
from .records import decrypted
from ..verification.bank import BankCheck, BankUnavailable, CardKind, bank_verifier, raise_for, raise_for_card
from ..identity.rules import check_card_number, check_mobile, check_name
from ..recovery import set_phone
from ..registration import check_bank_code

class NothingChanged(UserError):
    message = "您没有修改任何信息"


class CardNumberRequired(InvalidField):
    message = "更换银行时，请填写该银行的银行账号"
    field = "card_number"


class PhoneRequired(InvalidField):
    message = "请输入手机号码"
    field = "phone"


class NoDocumentOnFile(UserError):
    message = "账号未登记证件信息，无法通过银行核验，请联系管理员"


class TooManyBankChecksToday(UserError):
    message = "今日银行核验次数过多，请明天再试"
    status = 429


# per account: the bank platform is not a free oracle (a check the platform did not answer is
# given back)
BANK_CHECKS = KeyedLimit("PROFILE_BANK_CHECK_LIMIT", TooManyBankChecksToday, namespace="profile-bank-checks")


@dataclass(frozen=True)
class ProfileChange:
    """The values the account will hold (changed or not: the bank checks all four elements) and
    which of them differ from what it holds now."""

    name: str
    bank_code: str
    card_number: str
    phone: str
    changed: tuple[str, ...]  # of "name", "bank", "card", "phone"

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ProfileChange:
        return cls(**{**data, "changed": tuple(data["changed"])})

    def __repr__(self) -> str:  # never print personal data
        return f"<ProfileChange {','.join(self.changed)}>"


def current_values(user: User) -> dict[str, str]:
    """What the edit form starts from: the name and bank; card and phone stay empty (kept unless
    typed), the page shows them masked."""
    return {"name": user.name, "bank_code": user.bank_code or "", "card_number": "", "phone": ""}


def prepare(user: User, name: str, bank_code: str | None, card_number: str, phone: str) -> ProfileChange:
    """Check the form's values by the identity rules; an empty card or phone keeps the current one."""
    new_name = check_name(name, user.id_type)
    new_bank = check_bank_code(bank_code)
    current_card = decrypted(user, "card")
    if (card_number or "").strip():
        new_card = check_card_number(card_number).number
    elif new_bank != user.bank_code or not current_card:
        raise CardNumberRequired("请输入银行账号" if not current_card and new_bank == user.bank_code else None)
    else:
        new_card = current_card
    current_phone = decrypted(user, "phone")
    if (phone or "").strip():
        new_phone = check_mobile(phone)
    elif current_phone:
        new_phone = current_phone
    else:
        raise PhoneRequired()
    changed = tuple(field for field, differs in (
        ("name", new_name != user.name),
        ("bank", new_bank != user.bank_code),
        ("card", new_card != current_card),
        ("phone", new_phone != current_phone),
    ) if differs)
    if not changed:
        raise NothingChanged()
    return ProfileChange(new_name, new_bank, new_card, new_phone, changed)


def verify_with_bank(user: User, change: ProfileChange, *, charges: tuple[Charge, ...] = ()) -> None:
    """The four elements as they will be, with the account's own document; raises the bank's typed
    failure (or ``BankUnavailable``), audited as ``profile.change`` with its reason code.  The
    account's daily bank budget and the caller's ``charges`` (e.g. the flow's) are taken before
    the call and given back when the platform did not answer."""
    try:
        id_number = decrypted(user, "id_number")
        if not user.id_type or not id_number:
            raise NoDocumentOnFile()
        if {"bank", "card"} & set(change.changed):
            _refuse_unusable_card(user, change, charges)
        outcome = bank_verifier().verify(
            BankCheck(bank=change.bank_code, card_number=change.card_number, name=change.name,
                      id_type=user.id_type, id_number=id_number, phone=change.phone),
            charges=(*charges, BANK_CHECKS.charge(user.id)),
        )
        raise_for(outcome)
    except UserError as exc:
        audit.add("profile.change", "error" if exc.status >= 500 else "failure", actor=user.username,
                  subject=user.sub, reason=exc.reason_code, fields=list(change.changed))
        db.session.commit()
        raise


def _refuse_unusable_card(user: User, change: ProfileChange, charges: tuple[Charge, ...]) -> None:
    """A new card is looked up first: a credit, inactive or unknown card is refused without a
    four-element check.  The lookup is paid as a bank check (kept on a refusal, so it is no free
    way to probe cards; given back for a debit card, whose check follows and pays for itself)."""
    budget = (*charges, BANK_CHECKS.charge(user.id))
    try:
        with charged(budget, refund_on=(BankUnavailable,)):
            kind = bank_verifier().lookup_card(change.bank_code, change.card_number)
    except BankUnavailable:
        return  # the lookup is a courtesy: the four-element check still decides
    if kind is CardKind.DEBIT:
        for charge in reversed(budget):
            charge.give_back()
    raise_for_card(kind)


def apply(user: User, change: ProfileChange) -> None:
    """Write the verified values in one transaction with the ``profile.changed`` event."""
    user.name = change.name
    user.bank_code = change.bank_code
    if "card" in change.changed:
        card = pii.normalise("card", change.card_number)
        user.card_enc = pii.cipher().encrypt("card", card)
        user.card_last4 = card[-4:]
    if "phone" in change.changed:
        set_phone(user, change.phone)
    user.real_name_verified = True
    user.real_name_verified_at = datetime.now(timezone.utc)
    audit.add("profile.changed", actor=user.username, subject=user.sub, fields=list(change.changed))
    db.session.commit()
