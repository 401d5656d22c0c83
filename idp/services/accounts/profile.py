"""What a user's own data looks like on screen: masked everywhere."""

from __future__ import annotations

from dataclasses import dataclass

from ...models import User
from ..identity import pii
from ..verification.banks import bank_name
from ..identity.rules import GENDERS, ID_TYPES, USER_TYPES


@dataclass(frozen=True)
class MaskedProfile:
    username: str
    name: str
    user_type: str
    id_type: str
    id_number: str
    gender: str
    birthdate: str
    bank: str
    card: str
    phone: str
    real_name_verified: bool


def masked_profile(user: User) -> MaskedProfile:
    box = pii.cipher()
    id_number = box.decrypt("id_number", user.id_number_enc) if user.id_number_enc else ""
    phone = box.decrypt("phone", user.phone_enc) if user.phone_enc else ""
    return MaskedProfile(
        username=user.username,
        name=user.name,
        user_type=USER_TYPES.get(user.user_type, user.user_type),
        id_type=ID_TYPES.get(user.id_type or "", ""),
        id_number=pii.mask_id_number(id_number) if id_number else "",
        gender=GENDERS.get(user.gender or "", ""),
        birthdate=user.birthdate.isoformat() if user.birthdate else "",
        bank=bank_name(user.bank_code) if user.bank_code else "",
        card=pii.mask_card(user.card_last4),
        phone=pii.mask_phone(phone) if phone else "",
        real_name_verified=user.real_name_verified,
    )
