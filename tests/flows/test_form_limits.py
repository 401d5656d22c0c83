"""A form's own limit and its message say the same thing as the rule behind them."""

from __future__ import annotations

import re

import pytest

from idp.account.forms import PasswordChangeForm, ProfileEditForm, ProfileSmsForm, SecurityQuestionsForm
from idp.recovery.forms import AnswersForm, IdPhoneForm, PhoneChangeForm, ResetPasswordForm, UsernameIdentityForm
from idp.register.forms import IdentityForm, LoginInfoForm, VerificationForm
from idp.services.identity.rules import CARD_MAX_DIGITS, MOBILE_DIGITS, NAME_MAX

FORMS = [LoginInfoForm, IdentityForm, VerificationForm, UsernameIdentityForm, IdPhoneForm, AnswersForm,
         ResetPasswordForm, PhoneChangeForm, PasswordChangeForm, SecurityQuestionsForm, ProfileEditForm, ProfileSmsForm]


def _limits(app):
    """(form, field, max, message) of every length-like validator of the flow forms."""
    with app.test_request_context():
        for cls in FORMS:
            form = cls(meta={"csrf": False})
            for field in form:
                if field.name == "captcha":
                    continue  # the login forms' captcha field (idp/auth/forms.py), not a flow rule
                for validator in field.validators:
                    limit = getattr(validator, "max", None) or getattr(validator, "digits", None)
                    if limit and limit > 0:
                        yield cls.__name__, field.name, limit, validator.message


@pytest.mark.parametrize("expected", [
    ("password", "PASSWORD_MAX_LENGTH"), ("confirm", "PASSWORD_MAX_LENGTH"), ("new_password", "PASSWORD_MAX_LENGTH"),
    ("name", NAME_MAX), ("card_number", CARD_MAX_DIGITS), ("phone", MOBILE_DIGITS),
])
def test_limits_come_from_the_rules(app, expected):
    name, limit = expected
    if isinstance(limit, str):
        limit = app.config[limit]
    found = [(f, m, msg) for f, n, m, msg in _limits(app) if n == name]
    assert found and all(m == limit for _, m, _ in found), found


def test_every_number_in_a_message_is_the_limit(app):
    for form, field, limit, message in _limits(app):
        assert message, (form, field)  # never WTForms' English default
        numbers = [int(n) for n in re.findall(r"\d+", message)]
        assert limit in numbers or not numbers, (form, field, limit, message)
