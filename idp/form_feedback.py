"""Where a typed error shows on a page: beside its field when the form has one, else in the
alert above the form.  Shared by every multi-step flow's views (registration, recovery, 变更用户信息)."""

from __future__ import annotations

from collections.abc import Mapping

from .errors import PasswordRejected, UserError


def attach_error(form, exc: UserError, aliases: Mapping[str, str] | None = None) -> str | None:
    """Put ``exc`` on its field and return None, or return its message for the alert on top.

    ``aliases`` maps a service's field name to this form's (the password policy says
    ``password``; a reset form calls it ``new_password``)."""
    name = exc.field
    if name and not hasattr(form, name) and aliases:
        name = aliases.get(name)
    field = getattr(form, name, None) if name else None
    if field is None:
        return exc.message
    field.errors = list(field.errors) + (exc.problems if isinstance(exc, PasswordRejected) else [exc.message])
    return None
