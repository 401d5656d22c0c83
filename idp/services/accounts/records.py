"""Accounts: creation (the one path the web wizard and the CLI share) and password login."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ...errors import (DocumentTaken, InvalidCredentials, InvalidField, LoginLockedByAdministrator,
                       LoginTemporarilyLocked, PasswordRejected, UsernameTaken)
from ...extensions import commit_keeping_loaded, db
from ...models import User, UserStatus
from ..audit import events as audit
from . import lockout
from ..identity import passwords, pii
from ..identity.rules import ID_TYPES, normalise_name, username_key, username_problem
from ..identity.units import UnitInfo, UsccTaken


@dataclass
class NewAccount:
    username: str
    password: str
    name: str
    id_type: str | None = None
    id_number: str | None = None
    phone: str | None = None
    gender: str | None = None
    birthdate: date | None = None
    bank_code: str | None = None
    card_number: str | None = None
    user_type: str = "personal"
    # set instead of ``password`` when the policy was checked and the hash made earlier (the
    # registration wizard hashes at step 1 so no plaintext password waits in its flow)
    password_hash: str | None = None
    # a unit account (user_type "unit"): the unit as the registry confirmed it; ``name``, the
    # document, phone and card are then its handler's (经办人)
    unit: UnitInfo | None = None

    def __repr__(self) -> str:  # never print personal data or secrets
        return f"<NewAccount {self.username!r}>"


def find_by_username(username: str) -> User | None:
    return db.session.scalar(select(User).where(User.username_key == username_key(username)))


def username_available(username: str) -> bool:
    return find_by_username(username) is None


def find_by_document(id_type: str, id_number: str) -> User | None:
    digest = pii.cipher().lookup_hash("id_number", id_number)
    return db.session.scalar(
        select(User).where(User.id_type == id_type, User.id_number_hash == digest)
    )


def find_by_uscc(code: str) -> User | None:
    return db.session.scalar(select(User).where(User.uscc == (code or "").strip().upper()))


def check_new_account(data: NewAccount) -> None:
    """Format, policy and uniqueness checks that need no external service."""
    if problem := username_problem(data.username):
        raise InvalidField(problem, field="username")
    if data.password_hash is None and (problems := passwords.password_problems(data.password, data.username)):
        raise PasswordRejected(problems)
    if not normalise_name(data.name):
        raise InvalidField("请输入姓名", field="name")
    if data.id_type is not None and data.id_type not in ID_TYPES:
        raise InvalidField("请选择证件类型", field="id_type")
    if not username_available(data.username):
        raise UsernameTaken()
    if data.unit is not None:
        if find_by_uscc(data.unit.uscc):
            raise UsccTaken()
    elif data.id_type and data.id_number and find_by_document(data.id_type, data.id_number):
        raise DocumentTaken()


def create_account(
    data: NewAccount, *, real_name_verified: bool, role: str | None = None, actor: str | None = None
) -> User:
    """Insert the account in one transaction.  Callers verify first (bank, SMS); a race with
    another registration of the same username or document loses cleanly with the right error."""
    check_new_account(data)
    box = pii.cipher()
    now = datetime.now(timezone.utc)
    user = User(
        username=data.username.strip(),
        username_key=username_key(data.username),
        password_hash=data.password_hash or passwords.hash_password(data.password),
        name=normalise_name(data.name),
        user_type=data.user_type,
        gender=data.gender,
        birthdate=data.birthdate,
        id_type=data.id_type,
        bank_code=data.bank_code,
        real_name_verified=real_name_verified,
        real_name_verified_at=now if real_name_verified else None,
        role=role,
        status=UserStatus.ACTIVE,
    )
    if data.unit is not None:
        # the handler's document is kept apart from the citizen-unique one (see models.User)
        user.user_type = "unit"
        user.id_type = None
        user.unit_name, user.unit_id_type, user.uscc = data.unit.unit_name, data.unit.unit_id_type, data.unit.uscc
        user.unit_type, user.legal_rep_name = data.unit.unit_type, data.unit.legal_rep_name
        user.handler_id_type = data.id_type
        if data.id_number:
            user.handler_id_number_enc = box.encrypt("id_number", pii.normalise("id_number", data.id_number))
            user.handler_id_number_hash = box.lookup_hash("id_number", data.id_number)
    elif data.id_number:
        user.id_number_enc = box.encrypt("id_number", pii.normalise("id_number", data.id_number))
        user.id_number_hash = box.lookup_hash("id_number", data.id_number)
    if data.phone:
        user.phone_enc = box.encrypt("phone", pii.normalise("phone", data.phone))
        user.phone_hash = box.lookup_hash("phone", data.phone)
        user.phone_verified = real_name_verified
    if data.card_number:
        card = pii.normalise("card", data.card_number)
        user.card_enc = box.encrypt("card", card)
        user.card_last4 = card[-4:]
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError as exc:
        db.session.rollback()
        text = str(exc.orig).lower()
        if "username" in text:
            raise UsernameTaken() from None
        if data.unit is not None:
            raise UsccTaken() from None
        raise DocumentTaken() from None
    audit.add("account.created", actor=actor or user.username, subject=user.sub)
    commit_keeping_loaded()  # callers go on with the new account (audit, login): no reload
    return user


def authenticate(username: str, password: str, *, user_type: str | None = None) -> User:
    """Check a username and password.  A wrong password and an unknown name raise the same
    ``InvalidCredentials``; a name locked by failures (known or not) the same
    ``LoginTemporarilyLocked``; an operator's lock is named only after the right password.  The
    audit log records the real reason.

    The lockout slot is reserved before anything else (``lockout.attempt``): a locked name, or
    one whose every failure slot is taken by attempts still running, is refused before the
    database or argon2 are asked; unknown names are counted like real ones.

    ``user_type`` is the login page's tab (个人用户登录 ``personal``, 单位用户登录 ``unit``): an
    account of the other kind is answered and counted exactly like a wrong password, so the tab
    tells nothing about an account that a wrong password would not."""
    key = username_key(username or "")
    try:
        with lockout.attempt(key) as attempt:
            user = find_by_username(username) if key else None
            if user is None:
                passwords.dummy_verify(password or "")  # same cost as a real check: no user oracle
                locked_for = attempt.failed()
                audit.add("login", "failure", actor=key[:64] or None, reason="unknown_user")
                db.session.commit()
                raise LoginTemporarilyLocked(locked_for) if locked_for else InvalidCredentials()
            right = passwords.verify_password(user.password_hash, password or "")
            if not right or (user_type is not None and user.user_type != user_type):
                locked_for = attempt.failed()
                audit.add("login", "failure", actor=user.username, subject=user.sub,
                          reason="bad_password" if not right else "wrong_user_type")
                if locked_for:
                    audit.add("account.lockout", "success", actor="system", subject=user.sub,
                              seconds=locked_for)
                db.session.commit()
                raise LoginTemporarilyLocked(locked_for) if locked_for else InvalidCredentials()
            attempt.succeeded()
    except lockout.Refused:
        user = find_by_username(username) if key else None
        audit.add("login", "failure", actor=user.username if user else key[:64] or None,
                  subject=user.sub if user else None, reason="locked")
        db.session.commit()
        # locked: say so and for how long (the same for every name); slots merely all in flight
        # (a burst still being checked): the generic answer
        left = lockout.seconds_left(key)
        raise (LoginTemporarilyLocked(left) if left else InvalidCredentials()) from None
    if user.status == UserStatus.LOCKED:  # the password was right: the lock may be named
        audit.add("login", "failure", actor=user.username, subject=user.sub, reason=user.status.value)
        db.session.commit()
        raise LoginLockedByAdministrator()
    if user.status != UserStatus.ACTIVE:
        audit.add("login", "failure", actor=user.username, subject=user.sub, reason=user.status.value)
        db.session.commit()
        raise InvalidCredentials()
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    user.last_login_at = datetime.now(timezone.utc)
    audit.add("login", "success", actor=user.username, subject=user.sub)
    commit_keeping_loaded()  # the login goes on with this user (session, ID token)
    return user


def decrypted(user: User, field: str) -> str | None:
    blob = getattr(user, f"{field}_enc")
    return pii.cipher().decrypt(field, blob) if blob else None
