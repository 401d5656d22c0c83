"""变更用户信息 for a unit account (单位用户): the two changes a unit makes itself.

- 变更经办人: another person acts for the unit (or the same one with another card or phone).  The
  new handler is checked by the identity rules and the bank four-element check exactly as at
  registration, and their phone is proven by an SMS code (the flow in
  ``idp.flows.unit_profile_change``); the handler's phone becomes the account's phone.
- 变更单位名称: the unit's name (and with it, when it changed too, its legal representative) after
  a change at the registry, re-verified at the enterprise credit registry with the unit's code.

The unit's code and type never change here (another code is another unit: it registers).
External checks come first; then one transaction with its audit event.  Failures are audited
with their reason code, never personal data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone

from ...errors import UserError
from ...extensions import db
from ...models import User
from ..audit import events as audit
from ..identity import pii
from ..identity.rules import GENDERS, ID_TYPES, check_identity
from ..identity.units import UNIT_ID_TYPES, UNIT_TYPES, UnitInfo, check_unit_info
from ..limits import Charge, KeyedLimit
from ..registration import check_verification_info
from ..verification.bank import BankCheck, bank_verifier, raise_for
from ..verification.banks import bank_name
from ..verification.registry import RegistryDeregistered, UnitCheck, audited_check
from .profile_change import BANK_CHECKS, NothingChanged
from .records import decrypted
from ..recovery import set_phone


class NotAUnitAccount(UserError):
    message = "该功能仅适用于单位用户"
    status = 403


class UnitNotChanged(NothingChanged):
    message = "单位名称和法定代表人（负责人）姓名与现有信息一致，无需变更"


class UnitDeregisteredNoChange(RegistryDeregistered):
    """The registry's answer, in the words of this page (registration says 不能注册)."""

    message = "该单位登记状态为注销或吊销，不能变更单位信息"


class TooManyRegistryChecksToday(UserError):
    message = "今日单位登记信息核验次数过多，请明天再试"
    status = 429


# per account: the registry is not a free oracle (a check it did not answer is given back)
REGISTRY_CHECKS = KeyedLimit("PROFILE_REGISTRY_CHECK_LIMIT", TooManyRegistryChecksToday,
                             namespace="profile-registry-checks")


def _require_unit(user: User) -> None:
    if not user.is_unit:
        raise NotAUnitAccount()


# -- what the pages show --------------------------------------------------------------------------
@dataclass(frozen=True)
class MaskedUnit:
    username: str
    unit_name: str
    unit_id_type: str
    uscc: str  # public data: shown whole
    unit_type: str
    legal_rep_name: str
    handler_name: str
    handler_id_type: str
    handler_id_number: str
    bank: str
    card: str
    phone: str


def masked_unit(user: User) -> MaskedUnit:
    _require_unit(user)
    box = pii.cipher()
    number = box.decrypt("id_number", user.handler_id_number_enc) if user.handler_id_number_enc else ""
    phone = decrypted(user, "phone") or ""
    return MaskedUnit(
        username=user.username or "", unit_name=user.unit_name or "",
        unit_id_type=UNIT_ID_TYPES.get(user.unit_id_type or "", ""), uscc=user.uscc or "",
        unit_type=UNIT_TYPES.get(user.unit_type or "", ""), legal_rep_name=user.legal_rep_name or "",
        handler_name=user.name or "", handler_id_type=ID_TYPES.get(user.handler_id_type or "", ""),
        handler_id_number=pii.mask_id_number(number) if number else "",
        bank=bank_name(user.bank_code) if user.bank_code else "", card=pii.mask_card(user.card_last4),
        phone=pii.mask_phone(phone) if phone else "",
    )


# -- 变更经办人 -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HandlerChange:
    """The handler the account will have, all four bank elements and the document, and what
    differs from now (of "handler", "bank", "card", "phone")."""

    name: str
    id_type: str
    id_number: str
    gender: str
    birthdate: str  # ISO date (the flow keeps it as JSON)
    bank_code: str
    card_number: str
    phone: str
    changed: tuple[str, ...]

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> HandlerChange:
        return cls(**{**data, "changed": tuple(data["changed"])})

    def __repr__(self) -> str:  # never print personal data
        return f"<HandlerChange {','.join(self.changed)}>"


def prepare_handler(user: User, name: str | None, id_type: str | None, id_number: str | None,
                    bank_code: str | None, card_number: str | None, phone: str | None) -> HandlerChange:
    """Check the new handler by the identity rules (gender and birth date from the document, as
    the unit wizard does) and the bank details by their formats."""
    _require_unit(user)
    identity = check_identity(name or "", id_type or "", id_number or "", None, None)
    info = check_verification_info(bank_code, card_number or "", phone or "")
    box = pii.cipher()
    same_person = (identity.name == user.name and identity.id_type == user.handler_id_type
                   and box.lookup_hash("id_number", identity.id_number) == (user.handler_id_number_hash or ""))
    changed = tuple(f for f, differs in (
        ("handler", not same_person),
        ("bank", info.bank_code != user.bank_code),
        ("card", info.card.number != (decrypted(user, "card") or "")),
        ("phone", info.phone != (decrypted(user, "phone") or "")),
    ) if differs)
    if not changed:
        raise NothingChanged()
    return HandlerChange(identity.name, identity.id_type, identity.id_number, identity.gender or "",
                         identity.birthdate.isoformat() if identity.birthdate else "", info.bank_code,
                         info.card.number, info.phone, changed)


def verify_handler_with_bank(user: User, change: HandlerChange, *, charges: tuple[Charge, ...] = ()) -> None:
    """The bank four-element check of the new handler; raises the bank's typed failure (or
    ``BankUnavailable``), audited as ``unit.handler_change``.  The account's daily bank budget
    (shared with a citizen's 变更用户信息) is taken first and given back when the bank did not
    answer."""
    try:
        raise_for(bank_verifier().verify(
            BankCheck(bank=change.bank_code, card_number=change.card_number, name=change.name,
                      id_type=change.id_type, id_number=change.id_number, phone=change.phone),
            charges=(*charges, BANK_CHECKS.charge(user.id)),
        ))
    except UserError as exc:
        audit.add("unit.handler_change", "error" if exc.status >= 500 else "failure", actor=user.username,
                  subject=user.sub, reason=exc.reason_code, fields=list(change.changed))
        db.session.commit()
        raise
    audit.add("unit.handler_change", "success", actor=user.username, subject=user.sub, step="bank",
              fields=list(change.changed))
    db.session.commit()


def apply_handler(user: User, change: HandlerChange) -> None:
    """The handler as verified (bank and SMS), in one transaction with ``unit.handler_changed``:
    the handler's name, document, card and phone are the account's."""
    _require_unit(user)
    box = pii.cipher()
    user.name = change.name
    user.handler_id_type = change.id_type
    user.handler_id_number_enc = box.encrypt("id_number", pii.normalise("id_number", change.id_number))
    user.handler_id_number_hash = box.lookup_hash("id_number", change.id_number)
    user.gender = change.gender if change.gender in GENDERS else None
    user.birthdate = date.fromisoformat(change.birthdate) if change.birthdate else None
    user.bank_code = change.bank_code
    card = pii.normalise("card", change.card_number)
    user.card_enc = box.encrypt("card", card)
    user.card_last4 = card[-4:]
    set_phone(user, change.phone)
    user.real_name_verified = True
    user.real_name_verified_at = datetime.now(timezone.utc)
    audit.add("unit.handler_changed", actor=user.username, subject=user.sub, fields=list(change.changed))
    db.session.commit()


# -- 变更单位名称 -----------------------------------------------------------------------------------
def change_unit_name(user: User, unit_name: str | None, legal_rep_name: str | None) -> UnitInfo:
    """The unit's new name (and representative) as the registry holds them under the unit's own
    code: checked by the unit rules, verified at the registry (the account's daily registry
    budget taken first, given back when it did not answer), then written with
    ``unit.name_changed``.  A refusal or an outage writes nothing but its audit event."""
    _require_unit(user)
    unit = check_unit_info(unit_name, user.unit_id_type, user.uscc, user.unit_type, legal_rep_name)
    changed = [f for f, differs in (("unit_name", unit.unit_name != user.unit_name),
                                    ("legal_rep_name", unit.legal_rep_name != user.legal_rep_name)) if differs]
    if not changed:
        raise UnitNotChanged()
    try:
        try:
            audited_check(UnitCheck(unit_id_type=unit.unit_id_type, uscc=unit.uscc, unit_name=unit.unit_name,
                                    legal_rep_name=unit.legal_rep_name),
                          actor=user.username, channel="profile", charges=(REGISTRY_CHECKS.charge(user.id),))
        except RegistryDeregistered:
            raise UnitDeregisteredNoChange() from None
    except UserError as exc:
        audit.add("unit.name_change", "error" if exc.status >= 500 else "failure", actor=user.username,
                  subject=user.sub, reason=exc.reason_code, fields=changed)
        db.session.commit()
        raise
    user.unit_name, user.legal_rep_name = unit.unit_name, unit.legal_rep_name
    audit.add("unit.name_changed", actor=user.username, subject=user.sub, fields=changed)
    db.session.commit()
    return unit
