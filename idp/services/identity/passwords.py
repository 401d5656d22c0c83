"""Password hashing (argon2id, OWASP parameters) and the password policy (lengths from the settings)."""

from __future__ import annotations

import string
from functools import lru_cache
from importlib import resources

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app

def hasher() -> PasswordHasher:
    cfg = current_app.config
    return _hasher(cfg["ARGON2_TIME_COST"], cfg["ARGON2_MEMORY_KIB"], cfg["ARGON2_PARALLELISM"])


@lru_cache(maxsize=4)
def _hasher(time_cost: int, memory_cost: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(
        time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism, type=Type.ID
    )


def hash_password(password: str) -> str:
    return hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return hasher().verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return hasher().check_needs_rehash(password_hash)


# A hash of a password nobody has: verifying against it makes an unknown username cost the
# same time as a known one, so the login form is no oracle for which accounts exist.
def dummy_verify(password: str) -> None:
    verify_password(_dummy_hash(*_params()), password)


def _params() -> tuple[int, int, int]:
    cfg = current_app.config
    return cfg["ARGON2_TIME_COST"], cfg["ARGON2_MEMORY_KIB"], cfg["ARGON2_PARALLELISM"]


@lru_cache(maxsize=4)
def _dummy_hash(time_cost: int, memory_cost: int, parallelism: int) -> str:
    return _hasher(time_cost, memory_cost, parallelism).hash("not-a-password-of-anyone")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    text = resources.files("idp.services").joinpath("data/common-passwords.txt").read_text("utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def password_problems(password: str, username: str = "") -> list[str]:
    """Every rule the password breaks, in the words shown to the user (empty list: acceptable)."""
    problems: list[str] = []
    low, high = _lengths()
    if not low <= len(password) <= high:
        problems.append(length_rule())
    classes = sum(
        [
            any(c.isupper() and c.isascii() for c in password),
            any(c.islower() and c.isascii() for c in password),
            any(c.isdigit() for c in password),
            any(c in string.punctuation for c in password),
        ]
    )
    if classes < 3:
        problems.append("密码须至少包含大写字母、小写字母、数字、符号中的三种")
    if username and username.lower() in password.lower():
        problems.append("密码不能包含用户名")
    if password.lower() in common_passwords():
        problems.append("密码过于常见，请更换")
    return problems


def _lengths() -> tuple[int, int]:
    cfg = current_app.config
    return cfg["PASSWORD_MIN_LENGTH"], cfg["PASSWORD_MAX_LENGTH"]


def length_range() -> str:
    """"8–32", as the pages' hints state it."""
    return "{}–{}".format(*_lengths())


def max_length() -> int:
    return _lengths()[1]


def length_rule() -> str:
    return f"密码长度须为{length_range()}位"
