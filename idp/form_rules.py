"""Form-level limits that agree with the rules behind them.

A form refuses absurd input before any service sees it; when it does, its message must be the
rule's own (a field limited to 128 characters that says "8–32位" is a contradiction).  Each
validator here takes its number and its message from the service that owns the rule, so
changing a rule changes the form with it."""

from __future__ import annotations

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
from .services.verification.sms import CODE_LENGTH


# the numbers the pages' hints state, from the same rules ("8–32位…")
RULES = {
    "username": f"{USERNAME_MIN}–{USERNAME_MAX}",
    "password": f"{passwords.MIN_LENGTH}–{passwords.MAX_LENGTH}",
    "sms_code": CODE_LENGTH,
    "mobile": MOBILE_DIGITS,
}


def rules_context() -> dict:
    """For the flows' blueprints: ``rules`` in their templates."""
    return {"rules": RULES}


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


def password_length() -> Length:
    return Length(max=passwords.MAX_LENGTH, message=passwords.LENGTH_RULE)


def name_length() -> Length:
    return Length(max=NAME_MAX, message=NameTooLong.message)


def card_digits() -> MaxDigits:
    return MaxDigits(CARD_MAX_DIGITS, CardNumberInvalid.message)


def phone_digits() -> MaxDigits:
    return MaxDigits(MOBILE_DIGITS, PhoneInvalid.message)


def sms_code_length() -> Length:
    return Length(max=CODE_LENGTH, message=f"短信验证码为{CODE_LENGTH}位数字")


def answer_length(message: str = AnswerMissing.message) -> Length:
    return Length(max=ANSWER_MAX, message=message.format(max=ANSWER_MAX))
