"""Registering a citizen: the one service behind the web wizard and ``idp users create``."""

from __future__ import annotations

from ..models import User
from .accounts import NewAccount, create_account


def register_account(data: NewAccount, *, actor: str | None = None, role: str | None = None) -> User:
    # The bank four-element check and the identity rules join here in the registration issue.
    return create_account(data, real_name_verified=False, role=role, actor=actor)
