"""``idp users create --unit``: a unit account from the command line through the same services
as 单位用户注册 — the unit's rules, the registry check, the handler's bank check."""

from __future__ import annotations

from sqlalchemy import select

from idp.extensions import db
from idp.models import AuditEvent, User

from ..conftest import DEFAULT_PASSWORD
from ..register.conftest import CITIZENS
from .conftest import unit


def _args(username: str, u=None, handler=None, **unit_fields) -> list[str]:
    u, h = u or unit(demo=True), handler or CITIZENS["lina"]
    fields = {"--unit-name": u.unit_name, "--uscc": u.uscc, "--unit-type": u.unit_type,
              "--legal-rep": u.legal_rep_name, **unit_fields}
    return ["users", "create", "--unit", "--username", username, "--password", DEFAULT_PASSWORD,
            "--name", h.name, "--id-number", h.id_number, "--phone", h.phone, "--bank", h.bank_code,
            "--card-number", h.card_number,
            *[arg for name, value in fields.items() if value is not None for arg in (name, value)]]


def test_a_unit_account_is_created_after_the_registry_and_the_bank(app, runner):
    u, lina = unit(demo=True), CITIZENS["lina"]
    created = runner.invoke(args=_args("cliunit1"))
    assert created.exit_code == 0, created.output
    assert f"created unit {u.unit_name} ({u.uscc}), cliunit1" in created.output
    with app.app_context():
        user = db.session.scalar(select(User).filter_by(username="cliunit1"))
        assert (user.user_type, user.uscc, user.unit_name, user.legal_rep_name) == (
            "unit", u.uscc, u.unit_name, u.legal_rep_name)
        assert user.name == lina.name and user.real_name_verified and user.id_number_hash is None
        events = [(e.event, e.outcome, (e.details or {}).get("channel"))
                  for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
        order = [(event, outcome) for event, outcome, _ in events]
        assert order.index(("registry.check", "success")) < order.index(("register", "success"))
        assert events[-1] == ("register", "success", "cli")
    again = runner.invoke(args=_args("cliunit2"))
    assert again.exit_code == 1 and "refused: 证件已被使用" in again.output


def test_each_refusal_says_why_and_creates_nothing(app, runner):
    cases = [
        (_args("cliunit3", **{"--legal-rep": "张三"}), "法定代表人（负责人）姓名与登记信息不一致"),
        (_args("cliunit3", u=unit(status="revoked")), "该单位登记状态为注销或吊销，不能注册"),
        (_args("cliunit3", **{"--uscc": unit(demo=True).uscc[:-1] + "0"}), "统一社会信用代码格式不正确"),
        (_args("cliunit3") + ["--name", "王晓明"], "人员姓名或证件类型或证件号与银行登记不匹配"),  # the last --name counts
    ]
    for args, message in cases:
        result = runner.invoke(args=args)
        assert result.exit_code == 1 and f"refused: {message}" in result.output, result.output
    with app.app_context():
        assert db.session.scalar(select(User).filter_by(username="cliunit3")) is None


def test_unit_fields_need_the_unit_flag_and_the_flag_needs_them(runner):
    without_flag = [a for a in _args("cliunit4") if a != "--unit"]
    result = runner.invoke(args=without_flag)
    assert result.exit_code == 2 and "add --unit" in result.output
    result = runner.invoke(args=_args("cliunit4", **{"--uscc": None}))
    assert result.exit_code == 2 and "a unit account needs --uscc" in result.output
