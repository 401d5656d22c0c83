"""A unit account at the exam service, which the platform registers for persons only: after the
login the platform shows the page that says which kind of account the exam service accepts, and
no code reaches the exam service."""

from __future__ import annotations

from datetime import date

from idp.services.accounts.records import NewAccount, create_account
from idp.services.identity.units import UnitInfo

from ..conftest import DEFAULT_PASSWORD
from ..units.conftest import unit
from .conftest import Browser


def test_a_unit_account_is_refused_by_the_persons_only_exam_service(exam):
    u = unit(demo=True)
    with exam.provider.app.app_context():
        create_account(NewAccount(username="pengcheng02", password=DEFAULT_PASSWORD, name="李娜", id_type="resident_id",
                                  id_number="440305199206151244", phone="13800138001", gender="F",
                                  birthdate=date(1992, 6, 15), bank_code="ICBC", card_number="6222021641045750049",
                                  unit=UnitInfo(u.unit_name, u.unit_id_type, u.uscc, u.unit_type, u.legal_rep_name)),
                       real_name_verified=True)
    browser = Browser()
    login_page = browser.get(f"{exam.exam.url}/login")
    assert login_page.url == f"{exam.provider.url}/login"  # the personal tab: the exam service takes persons
    unit_tab = browser.get(f"{exam.provider.url}/login?type=unit")
    page = browser.platform_login(unit_tab, "pengcheng02")
    assert page.status_code == 403 and page.url.startswith(f"{exam.provider.url}/oauth/authorize")
    assert "“考生服务系统”仅允许<strong>个人用户</strong>登录，您当前登录的是单位用户账号" in page.text
    assert not any(hop.startswith(f"{exam.exam.url}/auth/callback") for hop in browser.hops)
    assert "/candidate" not in browser.get(f"{exam.exam.url}/").url
