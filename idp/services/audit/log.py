"""审计日志 for auditors: filtering, CSV export and the retention job.

Events are kept at least 180 days; ``prune`` refuses anything shorter.  The export streams rows
(server-side cursor) so a year of events does not sit in memory, and neutralises cells a
spreadsheet would run as a formula: usernames of failed logins are typed by strangers.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterator

from sqlalchemy import delete, func, select
from sqlalchemy.sql import Select

from ...errors import InvalidField
from ...extensions import db
from ...models import AuditEvent
from . import events as audit
from ..admin.staff import CLI_ACTOR, Actor

RETENTION_MINIMUM = timedelta(days=180)
OUTCOMES: dict[str, str] = {"success": "成功", "failure": "失败", "denied": "拒绝", "error": "错误"}
PAGE_SIZE = 50
PRUNE_BATCH = 5000
BEIJING = timezone(timedelta(hours=8))

CSV_COLUMNS = [
    ("at", "时间"), ("event", "事件"), ("outcome", "结果"), ("actor", "操作者"), ("subject", "对象"),
    ("client_id", "应用系统"), ("ip", "IP地址"), ("user_agent", "客户端"), ("details", "详情"),
]


class RetentionTooShort(InvalidField):
    message = f"审计日志至少保留{RETENTION_MINIMUM.days}天，不能清理{RETENTION_MINIMUM.days}天以内的记录"
    field = "older_than"


class AgeInvalid(InvalidField):
    message = "时长格式应为天数，例如 180d"
    field = "older_than"


class PeriodInvalid(InvalidField):
    message = "开始时间不能晚于结束时间"
    field = "since"


@dataclass(frozen=True)
class AuditQuery:
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    actor: str | None = None
    subject: str | None = None
    #: an event name, or a family ending with ``.`` or ``.*`` (``account.`` → every account event)
    event: str | None = None
    outcome: str | None = None
    client_id: str | None = None

    def describe(self) -> dict:
        """The filter as audit details (the export is itself audited)."""
        out = {}
        for key, value in asdict(self).items():
            if value is not None:
                out[key] = value.isoformat() if isinstance(value, datetime) else value
        return out


def statement(query: AuditQuery) -> Select:
    if query.since and query.until and query.since >= query.until:
        raise PeriodInvalid()
    stmt = select(AuditEvent)
    if query.since:
        stmt = stmt.where(AuditEvent.at >= query.since)
    if query.until:
        stmt = stmt.where(AuditEvent.at < query.until)
    if query.actor:
        stmt = stmt.where(AuditEvent.actor == query.actor.strip())
    if query.subject:
        stmt = stmt.where(AuditEvent.subject == query.subject.strip())
    if query.client_id:
        stmt = stmt.where(AuditEvent.client_id == query.client_id.strip())
    if query.outcome:
        stmt = stmt.where(AuditEvent.outcome == query.outcome)
    if query.event:
        event = query.event.strip()
        if event.endswith(".*") or event.endswith("."):
            stmt = stmt.where(AuditEvent.event.startswith(event.rstrip("*"), autoescape=True))
        else:
            stmt = stmt.where(AuditEvent.event == event)
    return stmt


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    total: int
    page: int
    pages: int


def find_events(query: AuditQuery, *, page: int = 1, per_page: int = PAGE_SIZE,
                actor: Actor = CLI_ACTOR) -> AuditPage:
    actor.require("audit.read")
    stmt = statement(query)
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    pages = max(1, math.ceil(total / per_page))
    page = min(max(1, page), pages)
    events = list(db.session.scalars(
        stmt.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).offset((page - 1) * per_page).limit(per_page)
    ))
    return AuditPage(events, total, page, pages)


def outcome_counts(period: timedelta) -> dict[str, int]:
    """Events of the last ``period`` by outcome (the console's front page)."""
    since = datetime.now(timezone.utc) - period
    return dict(db.session.execute(
        select(AuditEvent.outcome, func.count()).where(AuditEvent.at >= since).group_by(AuditEvent.outcome)
    ).all())


def event_types() -> list[str]:
    """Event names present in the log, for the filter's list."""
    return list(db.session.scalars(select(AuditEvent.event).distinct().order_by(AuditEvent.event)))


# format → the step that makes an end time inclusive of what was typed
_TIME_FORMATS: dict[str, timedelta] = {
    "%Y-%m-%dT%H:%M": timedelta(minutes=1),
    "%Y-%m-%d %H:%M": timedelta(minutes=1),
    "%Y-%m-%dT%H:%M:%S": timedelta(seconds=1),
    "%Y-%m-%d %H:%M:%S": timedelta(seconds=1),
    "%Y-%m-%d": timedelta(days=1),
}


def parse_time(text: str | None, field: str = "since", *, end: bool = False) -> datetime | None:
    """A time typed in Beijing time, ``YYYY-MM-DD HH:MM`` or ``YYYY-MM-DD`` (the whole day).  The
    end of a period includes what was typed: ``until 2026-05-01`` takes that whole day."""
    value = (text or "").strip()
    if not value:
        return None
    moment, step = _parsed(value)
    # the log holds nothing outside these years; near year 1 or 9999 time arithmetic overflows
    if moment is None or not 2000 <= moment.year <= 2100:
        raise InvalidField("时间格式应为 YYYY-MM-DD HH:MM", field=field)
    return moment + step if end else moment


def _parsed(value: str) -> tuple[datetime | None, timedelta]:
    """The moment typed and how much an end of period adds to it (a whole day for a date)."""
    for fmt, step in _TIME_FORMATS.items():
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=BEIJING), step
        except ValueError:
            continue
    try:
        moment = datetime.fromisoformat(value)  # ISO 8601 with its own offset (scripts)
    except ValueError:
        return None, timedelta(0)
    return (moment if moment.tzinfo is not None else None), timedelta(0)


# -- export -------------------------------------------------------------------------------------
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str:
    """A CSV cell that a spreadsheet shows as text (OWASP CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _csv_line(values: list) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([_cell(v) for v in values])
    return buffer.getvalue()


def export_csv(query: AuditQuery, *, actor: Actor = CLI_ACTOR) -> Iterator[str]:
    """The matching events as CSV lines, oldest first, times in Beijing time with their offset.
    Starts with a byte-order mark so spreadsheet software reads the Chinese header as UTF-8.
    The export is recorded before the first line is produced."""
    actor.require("audit.read")
    stmt = statement(query).order_by(AuditEvent.at, AuditEvent.id)
    audit.add("audit.exported", actor=actor.username, filter=query.describe())
    db.session.commit()

    def lines() -> Iterator[str]:
        yield "\ufeff" + _csv_line([label for _, label in CSV_COLUMNS])
        for event in db.session.scalars(stmt.execution_options(yield_per=1000)):
            yield _csv_line([
                event.at.astimezone(BEIJING).isoformat(timespec="seconds"),
                event.event, event.outcome, event.actor, event.subject, event.client_id, event.ip,
                event.user_agent, json.dumps(event.details or {}, ensure_ascii=False, sort_keys=True),
            ])

    return lines()


# -- retention ----------------------------------------------------------------------------------
_AGE = re.compile(r"^\s*(\d{1,5})\s*d\s*$", re.IGNORECASE)


def parse_age(text: str) -> timedelta:
    """``180d`` → 180 days."""
    match = _AGE.match(text or "")
    if not match:
        raise AgeInvalid()
    return timedelta(days=int(match.group(1)))


def check_retention(older_than: timedelta) -> timedelta:
    if older_than < RETENTION_MINIMUM:
        raise RetentionTooShort()
    return older_than


def prune(older_than: timedelta, *, actor: Actor = CLI_ACTOR) -> int:
    """Delete events older than ``older_than`` (at least 180 days), in batches so a large log
    does not hold one long lock; the pruning itself is recorded.  Returns the number deleted."""
    actor.require("audit.prune")
    check_retention(older_than)
    cutoff = datetime.now(timezone.utc) - older_than
    deleted = 0
    while True:
        batch = select(AuditEvent.id).where(AuditEvent.at < cutoff).limit(PRUNE_BATCH)
        count = db.session.execute(
            delete(AuditEvent).where(AuditEvent.id.in_(batch)).execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
        deleted += count
        if count < PRUNE_BATCH:
            break
    audit.add("audit.pruned", actor=actor.username, deleted=deleted, cutoff=cutoff.isoformat(timespec="seconds"),
              older_than_days=older_than.days)
    db.session.commit()
    return deleted
