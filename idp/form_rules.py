"""Form-level limits that agree with the rules behind them.

A form refuses absurd input before any service sees it; when it does, its message must be the
rule's own (a field limited to 128 characters that says "8–32位" is a contradiction).  Each
validator here takes its number and its message from the service that owns the rule, so
changing a rule changes the form with it."""

from __future__ import annotations

from collections.abc import Callable

from wtforms.validators import Length, ValidationError

from .services.accounts.security import ANSWER_MAX, AnswerMissing
from .services.identity import passwords
from .services.identity.rules import (
    CARD_MAX_DIGITS,
    MOBILE_DIGITS,
    NAME_MAX,
    USERNAME_MAX,
    USERNAME_MIN,
    USERNAME_RULE,
    CardNumberInvalid,
    NameTooLong,
    PhoneInvalid,
)
from .services.verification.sms import SmsPolicy


def rules_context() -> dict:
    """For the flows' blueprints: ``rules`` in their templates, the numbers the pages' hints state
    ("8–32位…"), from the same rules and settings that enforce them."""
    return {"rules": {
        "username": f"{USERNAME_MIN}–{USERNAME_MAX}",
        "password": passwords.length_range(),
        "sms_code": SmsPolicy.current().code_length,
        "mobile": MOBILE_DIGITS,
    }}


class SettingLength:
    """``Length(max=…)`` whose number comes from a setting, read when the form is validated (the
    form class is built at import, before any app exists)."""

    def __init__(self, maximum: Callable[[], int], message: Callable[[], str]) -> None:
        self._maximum, self._message = maximum, message

    @property
    def max(self) -> int:
        return self._maximum()

    @property
    def message(self) -> str:
        return self._message()

    def __call__(self, form, field) -> None:
        Length(max=self.max, message=self.message)(form, field)


class MaxDigits:
    """At most ``digits`` digits, spaces and hyphens aside (card numbers and phones are typed in
    groups); the rule itself then checks the rest and says so in the same words."""

    def __init__(self, digits: int, message: str) -> None:
        self.digits, self.message = digits, message

    def __call__(self, form, field) -> None:
        if sum(ch.isdigit() for ch in field.data or "") > self.digits:
            raise ValidationError(self.message)


def username_length() -> Length:
    return Length(max=USERNAME_MAX, message=USERNAME_RULE)


def password_length() -> SettingLength:
    return SettingLength(passwords.max_length, passwords.length_rule)


def name_length() -> Length:
    return Length(max=NAME_MAX, message=NameTooLong.message)


def card_digits() -> MaxDigits:
    return MaxDigits(CARD_MAX_DIGITS, CardNumberInvalid.message)


def phone_digits() -> MaxDigits:
    return MaxDigits(MOBILE_DIGITS, PhoneInvalid.message)


def sms_code_length() -> SettingLength:
    def code_length() -> int:
        return SmsPolicy.current().code_length

    return SettingLength(code_length, lambda: f"短信验证码为{code_length()}位数字")


def answer_length(message: str = AnswerMissing.message) -> Length:
    return Length(max=ANSWER_MAX, message=message.format(max=ANSWER_MAX))
