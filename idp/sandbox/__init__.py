"""Sandboxes of the external services (SPEC §6): the bank verification platform and an SMS
gateway, each a small WSGI app implementing our API contract, mountable in-process or served on
its own port (``idp sandbox bank|sms --port …``).

``DEMO_CITIZEN`` is the fictitious citizen whose bank records the sandbox holds, for ``idp demo``
to register a verified account:

    from idp.sandbox import DEMO_CITIZEN
    register_account(DEMO_CITIZEN.new_account("demo_user", "Demo#2026pass"), actor="demo")
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from .bank import BankRecord, load_records


@dataclass(frozen=True)
class SandboxCitizen:
    """A person whose bank record is in the sandbox: everything registration asks for."""

    name: str
    id_type: str
    id_number: str
    gender: str
    birthdate: date
    bank_code: str
    card_number: str
    phone: str

    @classmethod
    def from_record(cls, record: BankRecord) -> SandboxCitizen:
        from ..services.identity.rules import check_document

        facts = check_document(record.id_type, record.id_number)
        gender = facts.gender or record.gender
        birthdate = facts.birthdate or (date.fromisoformat(record.birthdate) if record.birthdate else None)
        if gender is None or birthdate is None:
            raise ValueError(f"sandbox record {record.bank} ****{record.card_number[-4:]} needs gender and birthdate")
        return cls(record.name, record.id_type, record.id_number, gender, birthdate,
                   record.bank, record.card_number, record.phone)

    def new_account(self, username: str, password: str):
        """The ``NewAccount`` that registers this citizen (the bank check will match)."""
        from ..services.accounts.records import NewAccount

        return NewAccount(
            username=username, password=password, name=self.name, id_type=self.id_type,
            id_number=self.id_number, phone=self.phone, gender=self.gender, birthdate=self.birthdate,
            bank_code=self.bank_code, card_number=self.card_number,
        )

    def __repr__(self) -> str:  # fictitious, but printed like real personal data would not be
        return f"<SandboxCitizen {self.bank_code} ****{self.card_number[-4:]}>"


def demo_citizen() -> SandboxCitizen:
    record = next(r for r in load_records() if r.demo)
    return SandboxCitizen.from_record(record)


DEMO_CITIZEN = demo_citizen()

__all__ = ["DEMO_CITIZEN", "SandboxCitizen", "demo_citizen"]
