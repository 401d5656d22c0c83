"""Registering a unit (单位用户注册): the use case behind the unit wizard.

The unit is checked by its rules and its code's uniqueness, then verified at the enterprise
credit registry (``verification.registry``); the handler (经办人) is a real person, checked
by the identity rules and the bank four-element check exactly like a citizen registering, with
their reserved phone proven by an SMS code first (the wizard does that).  Only when both checks
passed is the account created, in one transaction.  Every attempt's outcome is audited as
``register`` with a reason code (``user_type=unit``), never personal data.
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import UserError
from ..extensions import db
from ..models import User
from .accounts.records import NewAccount, check_new_account, create_account, find_by_uscc
from .audit import events as audit
from .identity.units import UnitInfo, UsccTaken, check_unit_info
from .limits import Charge
from .registration import audit_failure, checked_new_account
from .verification.bank import BankCheck, bank_verifier, raise_for
from .verification.registry import UnitCheck, audited_check


def check_unit(unit_name, unit_id_type, uscc, unit_type, legal_rep_name) -> UnitInfo:
    return check_unit_info(unit_name, unit_id_type, uscc, unit_type, legal_rep_name)


def check_uscc_free(unit: UnitInfo, *, actor: str | None = None) -> None:
    """证件已被使用: the code of a registered unit (public data, but the answer still costs the
    wizard's document-check budget, like a person's)."""
    if find_by_uscc(unit.uscc):
        audit_failure(UsccTaken(), actor, "web")
        raise UsccTaken()


def verify_unit(unit: UnitInfo, *, actor: str | None = None, charges: tuple[Charge, ...] = ()) -> None:
    """The registry's answer for ``unit``: returns on a match, raises the failure the page shows
    (each one an audited ``registry.check``, committed here: an attempt is a fact)."""
    try:
        audited_check(UnitCheck(unit_id_type=unit.unit_id_type, uscc=unit.uscc, unit_name=unit.unit_name,
                                legal_rep_name=unit.legal_rep_name), actor=actor, charges=charges)
    finally:
        db.session.commit()


def register_unit(data: NewAccount, *, actor: str | None = None, channel: str = "web") -> User:
    """The handler's identity rules, the uniqueness checks, the bank check of the handler, then the
    account.  ``data.unit`` must be the unit as the registry confirmed it (the wizard verified it
    at 填写单位信息 and keeps the verified values)."""
    assert data.unit is not None, "a unit account needs its unit"
    actor = actor or (data.username or "")[:64] or None
    try:
        data = checked_new_account(data)
        data = replace(data, user_type="unit")
        check_new_account(data)  # a taken username or code costs no bank query
        raise_for(bank_verifier().verify(
            BankCheck(bank=data.bank_code, card_number=data.card_number, name=data.name,
                      id_type=data.id_type, id_number=data.id_number, phone=data.phone)))
        user = create_account(data, real_name_verified=True, actor=actor)
    except UserError as exc:
        audit_failure(exc, actor, channel)
        raise
    audit.add("register", "success", actor=actor, subject=user.sub, channel=channel, bank=data.bank_code,
              user_type="unit")
    db.session.commit()
    return user


def register_unit_account(data: NewAccount, *, actor: str | None = None, channel: str = "cli") -> User:
    """``idp users create --unit``: the unit's code checked free, the unit verified at the
    registry, then ``register_unit`` (the handler's rules and bank check, the account).  An
    operator's tool, like ``register_account`` from the CLI: no SMS code."""
    assert data.unit is not None, "a unit account needs its unit"
    actor = actor or (data.username or "")[:64] or None
    if find_by_uscc(data.unit.uscc):
        audit_failure(UsccTaken(), actor, channel)
        raise UsccTaken()
    verify_unit(data.unit, actor=actor)
    return register_unit(data, actor=actor, channel=channel)
