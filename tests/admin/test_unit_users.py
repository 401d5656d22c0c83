"""用户综合管理 of 单位用户: filter by user type, search by 统一社会信用代码 and 单位名称, a handler's
ID number finds the units they act for, and a unit's page shows the unit and its handler masked;
the same from the command line."""

from __future__ import annotations

import json

import pytest

from idp.services.identity.units import UnitInfo

from ..units.conftest import unit
from .conftest import audit_events, text_of

HANDLER_ID = "440304199001011233"


@pytest.fixture
def accounts(make_user, citizen):
    """A citizen (zsfeng01), two unit accounts run by the same handler, and that handler's own
    personal account."""
    made = {"citizen": citizen}
    for key, registry_unit, username in (("unit", unit(demo=True), "unit_pengcheng"),
                                         ("other", unit(unit_type="institution"), "unit_training")):
        made[key] = make_user(
            username=username, name="李娜", user_type="unit", id_number=HANDLER_ID, phone="13900139011",
            unit=UnitInfo(registry_unit.unit_name, registry_unit.unit_id_type, registry_unit.uscc,
                          registry_unit.unit_type, registry_unit.legal_rep_name))
    made["handler"] = make_user(username="lina_self", name="李娜", id_number=HANDLER_ID)
    return made


def _found(response) -> set[str]:
    page = response.data.decode()
    return {name for name in ("zsfeng01", "unit_pengcheng", "unit_training", "lina_self") if f">{name}</a>" in page}


@pytest.mark.parametrize("by, q, user_type, expected", [
    ("uscc", unit(demo=True).uscc, "", {"unit_pengcheng"}),
    ("uscc", unit(demo=True).uscc.lower(), "", {"unit_pengcheng"}),  # as registration normalises it
    ("uscc", unit(demo=True).uscc[:-1], "", set()),  # exact match only
    ("unit_name", "鹏城", "", {"unit_pengcheng"}),
    ("id_number", HANDLER_ID, "", {"unit_pengcheng", "unit_training", "lina_self"}),  # handler's units too
    ("id_number", HANDLER_ID, "unit", {"unit_pengcheng", "unit_training"}),
    ("id_number", HANDLER_ID, "personal", {"lina_self"}),
    ("name", "李", "personal", {"lina_self"}),
    ("username", "", "unit", {"unit_pengcheng", "unit_training"}),  # a type alone lists that type
    ("username", "", "personal", {"zsfeng01", "lina_self"}),
])
def test_search_and_filter_by_user_type(admin, accounts, by, q, user_type, expected):
    response = admin.post("/admin/users", {"by": by, "q": q, "user_type": user_type})
    assert response.status_code == 200, text_of(response)[:300]
    assert _found(response) == expected


def test_the_results_name_the_type_and_the_unit_and_the_search_is_audited_without_its_value(app, admin, accounts):
    response = admin.post("/admin/users", {"by": "uscc", "q": unit(demo=True).uscc, "user_type": "unit"})
    text = text_of(response)
    assert "单位用户" in text and unit(demo=True).unit_name in text and "李*" in text and "李娜" not in text
    [event] = audit_events(app, "admin.user_search")
    assert event.details == {"by": "uscc", "user_type": "unit", "results": 1}
    assert unit(demo=True).uscc not in json.dumps(event.details)


def test_an_empty_search_without_a_type_still_asks_for_a_term_and_a_bad_type_is_refused(admin):
    assert "请输入检索内容" in text_of(admin.post("/admin/users", {"by": "username", "q": ""}))
    bad = admin.post("/admin/users", {"by": "username", "q": "x", "user_type": "robot"})
    assert bad.status_code == 400 and "请选择用户类型" in text_of(bad)


def test_the_search_form_offers_the_type_and_the_unit_fields(admin):
    page = admin.get("/admin/users").data.decode()
    for label in ("用户类型", "个人用户", "单位用户", "统一社会信用代码", "单位名称"):
        assert label in page


def test_a_units_page_shows_the_unit_and_its_handler_masked(app, admin, accounts):
    u = unit(demo=True)
    response = admin.get(f"/admin/users/{accounts['unit'].sub}")
    assert response.status_code == 200
    text = text_of(response)
    for shown in ("单位信息", u.unit_name, u.uscc, "企业", "法定代表人（负责人）", u.legal_rep_name[0] + "*",
                  "经办人", "李*", "居民身份证", HANDLER_ID[:3], HANDLER_ID[-4:], "139****9011"):
        assert shown in text, shown
    for hidden in (HANDLER_ID, "李娜", u.legal_rep_name, "13900139011"):
        assert hidden not in text, hidden
    personal = text_of(admin.get(f"/admin/users/{accounts['citizen'].sub}"))
    assert "个人信息" in personal and "单位信息" not in personal


def test_actions_work_on_a_unit_account_through_the_one_preamble(app, admin, accounts):
    sub = accounts["unit"].sub
    missing = admin.submit(f"/admin/users/{sub}", f"/admin/users/{sub}/lock", {"lock-reason": ""})
    assert missing.status_code == 400
    done = admin.submit(f"/admin/users/{sub}", f"/admin/users/{sub}/lock", {"lock-reason": "单位申请暂停使用"})
    assert done.status_code == 302
    assert [e.subject for e in audit_events(app, "account.locked")] == [sub]


def test_the_cli_searches_by_code_and_type_and_shows_the_unit(runner, accounts):
    found = runner.invoke(args=["users", "search", "--by", "uscc", unit(demo=True).uscc, "--json"])
    assert found.exit_code == 0, found.output
    [row] = json.loads(found.stdout)
    assert (row["username"], row["user_type"], row["unit_name"]) == ("unit_pengcheng", "unit", unit(demo=True).unit_name)
    listed = runner.invoke(args=["users", "search", "--type", "unit", ""])
    assert listed.exit_code == 0 and "unit_pengcheng" in listed.stdout and "zsfeng01" not in listed.stdout
    shown = json.loads(runner.invoke(args=["users", "show", "unit_pengcheng"]).stdout)
    assert shown["unit"]["uscc"] == unit(demo=True).uscc and shown["unit"]["handler_name"] == "李*"
    assert HANDLER_ID not in json.dumps(shown, ensure_ascii=False)
