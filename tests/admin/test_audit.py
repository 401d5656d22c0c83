"""审计日志: filters, CSV export, and the retention job."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest

from idp.extensions import db
from idp.models import AuditEvent
from idp.services.audit import events as audit
from idp.services.audit.log import BEIJING

from .conftest import audit_events


def _event(app, at: datetime, event: str, outcome: str = "success", **fields) -> None:
    with app.app_context():
        entry = audit.add(event, outcome, **fields)
        entry.at = at
        db.session.commit()


@pytest.fixture
def history(app):
    """A week of events at known times (Beijing time in the comments)."""
    day = datetime(2026, 5, 1, 0, 0, tzinfo=BEIJING)
    _event(app, day + timedelta(hours=9), "login", actor="zsfeng01", subject="sub-1")  # 05-01 09:00
    _event(app, day + timedelta(hours=10), "login", "failure", actor="zsfeng01", subject="sub-1", reason="bad_password")
    _event(app, day + timedelta(days=1, hours=8), "account.locked", actor="operator01", subject="sub-1", reason="工单")
    _event(app, day + timedelta(days=1, hours=9), "account.unlocked", actor="operator01", subject="sub-1", reason="核实")
    _event(app, day + timedelta(days=2, hours=23, minutes=59), "client.disabled", actor="admin01",
           subject="exam-service", client_id="exam-service", reason="停用")
    _event(app, day + timedelta(days=3), "token.issued", actor="exam-service", subject="sub-2", client_id="exam-service")
    return day


def _listed(console, **query) -> list[str]:
    response = console.get("/admin/audit", query_string=query)
    assert response.status_code == 200, response.data.decode()[:300]
    import re

    return re.findall(r'<td><span class="event" title="([a-z_.]+)">[^<]+</span></td>', response.data.decode())


@pytest.mark.parametrize("query, expected", [
    ({"actor": "operator01"}, ["account.unlocked", "account.locked"]),
    ({"subject": "exam-service"}, ["client.disabled"]),
    ({"event": "login", "until": "2026-05-31"}, ["login", "login"]),
    ({"event": "account.*", "until": "2026-05-31"}, ["account.unlocked", "account.locked"]),
    ({"outcome": "failure"}, ["login"]),
    ({"since": "2026-05-02", "until": "2026-05-02"}, ["account.unlocked", "account.locked"]),
    ({"since": "2026-05-01T09:30", "until": "2026-05-02T08:00"}, ["account.locked", "login"]),
    ({"since": "2026-05-03 23:59", "until": "2026-05-03 23:59"}, ["client.disabled"]),
    ({"until": "2026-05-01 09:00"}, ["login"]),
    ({"actor": "zsfeng01", "outcome": "success", "since": "2026-05-01"}, ["login"]),
])
def test_filters(auditor, history, query, expected):
    assert _listed(auditor, **query) == expected


def test_an_unreadable_time_or_an_inverted_period_is_explained(auditor, history):
    response = auditor.get("/admin/audit", query_string={"since": "5月1日"})
    assert response.status_code == 400
    assert "时间格式应为 YYYY-MM-DD HH:MM" in response.data.decode()
    assert 'value="5月1日"' in response.data.decode()
    response = auditor.get("/admin/audit", query_string={"since": "2026-05-03", "until": "2026-05-01"})
    assert response.status_code == 400
    assert "开始时间不能晚于结束时间" in response.data.decode()


@pytest.mark.parametrize("query", [{"until": "9999-12-31"}, {"since": "0001-01-01"}, {"since": "1900-01-01 00:00"}])
def test_a_date_far_outside_the_log_is_explained_not_a_server_error(auditor, history, query):
    response = auditor.get("/admin/audit", query_string=query)
    assert response.status_code == 400
    assert "时间格式应为 YYYY-MM-DD HH:MM" in response.data.decode()


def test_the_list_shows_details_and_pages(app, auditor):
    with app.app_context():
        for n in range(120):
            audit.add("login", "failure", actor=f"user{n:03d}", reason="bad_password")
        db.session.commit()
    page = auditor.get("/admin/audit", query_string={"event": "login", "outcome": "failure"}).data.decode()
    assert "共 120 条记录" in page and "第 1 / 3 页" in page and "reason=bad_password" in page
    assert 'href="/admin/audit?page=2&amp;event=login&amp;outcome=failure"' in page
    page3 = auditor.get("/admin/audit", query_string={"event": "login", "outcome": "failure", "page": 3}).data.decode()
    assert "第 3 / 3 页" in page3 and "user000" in page3 and "user119" not in page3


# -- export ---------------------------------------------------------------------------------------
def _rows(response) -> list[list[str]]:
    text = response.data.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def test_csv_export_of_the_filtered_events(app, auditor, history):
    response = auditor.get("/admin/audit/export.csv", query_string={"subject": "sub-1"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="audit-')
    assert response.headers["Cache-Control"] == "no-store"
    rows = _rows(response)
    assert rows[0] == ["时间", "事件", "结果", "操作者", "对象", "应用系统", "IP地址", "客户端", "详情"]
    assert [r[1] for r in rows[1:]] == ["login", "login", "account.locked", "account.unlocked"]  # oldest first
    assert rows[1][0] == "2026-05-01T09:00:00+08:00"
    assert rows[2][2] == "failure" and rows[2][8] == '{"reason": "bad_password"}'
    assert rows[3][3] == "operator01" and rows[3][8] == '{"reason": "工单"}'
    [exported] = audit_events(app, "audit.exported")
    assert exported.actor == "auditor01" and exported.details == {"filter": {"subject": "sub-1"}}


def test_csv_cells_cannot_become_spreadsheet_formulas(app, auditor):
    """The username of a failed login is whatever a stranger typed."""
    with app.app_context():
        audit.add("login", "failure", actor='=HYPERLINK("http://evil.example/")', reason="unknown_user")
        audit.add("login", "failure", actor="+1+1", reason="unknown_user")
        audit.add("login", "failure", actor="@SUM(A1)", reason="unknown_user")
        db.session.commit()
    rows = _rows(auditor.get("/admin/audit/export.csv", query_string={"event": "login", "outcome": "failure"}))
    assert [r[3] for r in rows[1:]] == ["'=HYPERLINK(\"http://evil.example/\")", "'+1+1", "'@SUM(A1)"]


def test_an_empty_export_has_its_header(auditor):
    rows = _rows(auditor.get("/admin/audit/export.csv", query_string={"actor": "nobody"}))
    assert len(rows) == 1


def test_the_export_link_carries_the_filter(auditor, history):
    page = auditor.get("/admin/audit", query_string={"actor": "operator01", "outcome": "success"}).data.decode()
    assert 'href="/admin/audit/export.csv?actor=operator01&amp;outcome=success"' in page


# -- retention ------------------------------------------------------------------------------------
def _aged(app, days: int, event: str) -> None:
    _event(app, datetime.now(timezone.utc) - timedelta(days=days), event, actor="old")


def test_prune_refuses_less_than_180_days(app, runner):
    _aged(app, 200, "login")
    for age in ("179d", "30d", "0d"):
        result = runner.invoke(args=["audit", "prune", "--older-than", age, "--yes"])
        assert result.exit_code != 0
        assert "审计日志至少保留180天" in result.output
    result = runner.invoke(args=["audit", "prune", "--older-than", "6months", "--yes"])
    assert result.exit_code != 0 and "时长格式应为天数" in result.output
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(AuditEvent.id)).where(AuditEvent.actor == "old")) == 1
    assert not audit_events(app, "audit.pruned")


def test_prune_deletes_only_what_is_older_and_records_it(app, runner):
    _aged(app, 400, "login")
    _aged(app, 181, "account.locked")
    _aged(app, 179, "account.unlocked")
    _aged(app, 1, "login")
    result = runner.invoke(args=["audit", "prune", "--older-than", "180d", "--yes"])
    assert result.exit_code == 0, result.output
    assert "deleted 2 audit events older than 180 days" in result.output
    with app.app_context():
        left = sorted(db.session.scalars(db.select(AuditEvent.event).where(AuditEvent.actor == "old")))
    assert left == ["account.unlocked", "login"]
    [pruned] = audit_events(app, "audit.pruned")
    assert pruned.actor.startswith("cli:") and pruned.details["deleted"] == 2 and pruned.details["older_than_days"] == 180


def test_prune_works_in_batches(app, monkeypatch):
    from idp.services.audit import log as audit_log

    monkeypatch.setattr(audit_log, "PRUNE_BATCH", 3)
    for _ in range(7):
        _aged(app, 365, "login")
    with app.app_context():
        assert audit_log.prune(timedelta(days=365 - 1)) == 7
        assert db.session.scalar(db.select(db.func.count(AuditEvent.id)).where(AuditEvent.actor == "old")) == 0


def test_events_are_named_in_chinese_with_the_code_on_hover(auditor, history):
    page = auditor.get("/admin/audit", query_string={"until": "2026-05-31"}).data.decode()
    assert '<span class="event" title="account.locked">管理员锁定账号</span>' in page
    assert '<span class="event" title="login">登录</span>' in page
    assert '<span class="event" title="token.issued">签发令牌</span>' in page
    assert "<code>login</code>" not in page


def test_every_event_the_application_records_has_a_chinese_name():
    """One table (idp/services/audit/names.py) names every code that a call in the source records."""
    import re
    from pathlib import Path

    from idp.services.audit.names import EVENT_NAMES

    root = Path(__file__).resolve().parents[2] / "idp"
    pattern = re.compile(r'(?:add|record_in_transaction|_audit|_fail)\(\s*"([a-z_]+(?:\.[a-z_]+)*)"'
                         r'|event="([a-z_]+\.[a-z_]+)"')
    recorded = {a or b for path in root.rglob("*.py") for a, b in pattern.findall(path.read_text("utf-8"))}
    assert len(recorded) > 30
    assert sorted(recorded - EVENT_NAMES.keys()) == []
