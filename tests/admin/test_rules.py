"""Rules of the console's services that hold for any input (property tests)."""

from __future__ import annotations

import csv
import io
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idp.errors import InvalidField
from idp.services.admin.staff import PERMISSIONS, ROLES, check_reason, may
from idp.services.audit.log import _csv_line


@given(st.lists(st.text(max_size=40), min_size=1, max_size=6))
def test_no_exported_cell_starts_like_a_formula(values):
    [row] = list(csv.reader(io.StringIO(_csv_line(values))))
    assert len(row) == len(values)
    for cell, value in zip(row, values):
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
        assert cell in (value, "'" + value)


@given(st.text(max_size=30), st.from_regex(r"1[3-9]\d{9}|\d{17}[\dX]|62\d{14,17}", fullmatch=True), st.text(max_size=30))
def test_a_reason_never_carries_a_phone_id_or_card_number(before, number, after):
    with pytest.raises(InvalidField):
        check_reason(before + number + after)


@given(st.text(alphabet=st.characters(blacklist_categories=("Nd", "Cs")), min_size=2, max_size=200))
def test_a_reason_without_digits_is_kept_as_typed_modulo_spaces(reason):
    if len(" ".join(reason.split())) < 2:
        return
    assert check_reason(reason) == " ".join(reason.split())


def test_the_roles_and_their_permissions():
    assert {p for p in PERMISSIONS if may("admin", p)} == set(PERMISSIONS)
    assert {p for p in PERMISSIONS if may("operator", p)} == {"console", "clients.read", "users.read", "users.write"}
    assert {p for p in PERMISSIONS if may("auditor", p)} == {"console", "audit.read"}
    assert not any(may(None, p) or may("root", p) for p in PERMISSIONS)
    assert set(ROLES) == {"admin", "operator", "auditor"}
    assert all(re.fullmatch(r"[a-z]+(\.[a-z]+)?", p) for p in PERMISSIONS)
