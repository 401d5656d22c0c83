"""The relying systems a user has authorised (consents), and taking an authorisation back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select

from ...extensions import db
from ...models import Client, Consent, User
from .revocation import revoke_user_tokens
from ..audit import events as audit


@dataclass(frozen=True)
class AuthorisedSystem:
    client_id: str
    name: str
    scopes: list[str]
    granted_at: datetime


def authorised_systems(user: User) -> list[AuthorisedSystem]:
    rows = db.session.execute(
        select(Consent, Client.name)
        .join(Client, Client.client_id == Consent.client_id)
        .where(Consent.user_id == user.id)
        .order_by(Consent.granted_at.desc())
    ).all()
    return [AuthorisedSystem(c.client_id, name, c.scope.split(), c.granted_at) for c, name in rows]


def revoke_authorisation(user: User, client_id: str) -> bool:
    """Forget the consent and revoke every token the system holds for this user."""
    deleted = db.session.execute(
        delete(Consent).where(Consent.user_id == user.id, Consent.client_id == client_id)
    ).rowcount
    revoked = revoke_user_tokens(user.id, client_id)
    if deleted or revoked:
        audit.add("consent.revoked", actor=user.username, subject=user.sub, client_id=client_id,
                  revoked=revoked)
    db.session.commit()
    return bool(deleted or revoked)
