"""Second factors of staff from the command line: enrolment links, and resetting a lost factor.

``idp admin create`` prints the new account's enrolment link; ``idp admin enrolment-link USER``
issues another one; ``idp admin reset-factors USER --reason …`` removes every factor of an
account (a lost phone) so that it enrols again through a new link.
"""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from ..errors import UserError
from ..services.admin.staff import cli_actor


def register(app: Flask) -> None:
    """The commands join the ``admin`` group (core's; found by name, so core may import this)."""
    admin_group = app.cli.commands["admin"]
    admin_group.add_command(admin_enrolment_link)
    admin_group.add_command(admin_reset_factors)


def echo_enrolment_link(user) -> None:
    from ..services.accounts.second_factors import enrolment_link

    hours = current_app.config["MFA_ENROLMENT_LINK_LIFETIME"] / 3600
    click.echo(f"second-factor enrolment link (single use, valid {hours:g} h; the account cannot open "
               f"/admin before enrolling):\n  {enrolment_link(user)}")


def enrolment_hint(username: str) -> str:
    """For the demo's summary: the administrator's enrolment link, or that one is enrolled."""
    from ..services.accounts.records import find_by_username
    from ..services.accounts.second_factors import enrolment_link, has_factor

    user = find_by_username(username)
    if user is None:
        return "-"
    if has_factor(user.id):
        return "enrolled (idp admin reset-factors if it was lost)"
    return f"enrol before opening /admin: {enrolment_link(user)}"


def _staff(username: str):
    from ..services.admin.users import find_user

    try:
        user = find_user(username)
    except UserError as exc:
        raise click.ClickException(exc.message) from None
    if not user.role:
        raise click.ClickException(f"{username} holds no role: citizens enrol in the user centre")
    return user


@click.command("enrolment-link")
@with_appcontext
@click.argument("user")
def admin_enrolment_link(user) -> None:
    """A new second-factor enrolment link for a staff account without a factor."""
    from ..services.accounts.second_factors import has_factor

    account = _staff(user)
    if has_factor(account.id):
        raise click.ClickException(f"{user} has a second factor already (reset-factors first if it was lost)")
    echo_enrolment_link(account)


@click.command("reset-factors")
@with_appcontext
@click.argument("user")
@click.option("--reason", required=True, help="why (recorded in the audit log; no personal data)")
def admin_reset_factors(user, reason) -> None:
    """Remove every second factor and recovery code of a staff account; print a new link."""
    from ..services.accounts.second_factors import reset_factors
    from ..services.admin.staff import check_reason

    account = _staff(user)
    try:
        reason = check_reason(reason)
    except UserError as exc:
        raise click.ClickException(exc.message) from None
    removed = reset_factors(account, actor=cli_actor().username, reason=reason)
    click.echo(f"removed {removed} second factor(s) of {user}")
    echo_enrolment_link(account)
