"""The dashboard's figures, within the caller's scope: beneficiaries and money by month, by meal model and
by township (from the Art. 12 report of the school year), the workload of intakes and changes by status,
overdue tasks by school, and the schools late with their report (Art. 17)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from registry import report_submissions, reports
from registry.access import scope_clause
from registry.code_tables import load_code_tables
from registry.db import utcnow
from registry.errors import msg
from registry.org_units import OrgUnit
from registry.subsidy import months_between, report_months
from registry.users import User
from registry.workflows import HumanTask, InstanceStatus, ProcessInstance, ProcessVersion, TaskStatus

# The processes whose load the county watches: intakes and changes (the rest are the county's own work).
WORKLOAD = ("student_intake", "batch_intake", "key_field_change", "status_change", "student_transfer",
            "annual_cycle")
MONTH_NAMES = {1: "1月", 2: "2月", 3: "3月", 4: "4月", 5: "5月", 6: "6月", 7: "7月", 8: "8月", 9: "9月", 10: "10月",
               11: "11月", 12: "12月"}
STATUS_LABELS = {InstanceStatus.running: "办理中", InstanceStatus.completed: "已办结",
                 InstanceStatus.withdrawn: "已撤回", InstanceStatus.suspended: "已暂停",
                 InstanceStatus.cancelled: "已取消", InstanceStatus.error: "出错"}


@dataclass(frozen=True)
class Row:
    label: str
    values: tuple[int | float | str, ...]


@dataclass(frozen=True)
class Chart:
    """One chart and the table under it: rows of a label and one value per series."""

    key: str
    title: str
    kind: str  # "bar", "pie", or "table" (a list, no chart)
    series: tuple[str, ...]
    rows: list[Row]

    def as_json(self) -> dict[str, object]:
        return {"key": self.key, "title": self.title, "kind": self.kind, "series": list(self.series),
                "labels": [r.label for r in self.rows], "values": [list(r.values) for r in self.rows]}


def _yuan(cents: int) -> float:
    return float(Decimal(cents) / 100)


def dashboard(session: Session, *, actor: User, year: int, now: datetime | None = None) -> list[Chart]:
    now = now or utcnow()
    report = reports.county_report(session, actor=actor, year=year)
    first, last = report_months(year)
    totals = report.totals
    months = months_between(first, last)
    # Titles and words as messages (registry/errors.py): the page shows them in its language.
    beneficiaries, amount = msg("受益学生人数"), msg("补助金额（元）")
    charts = [Chart("months", msg("受益学生人数和补助金额（按月）"), "bar", (beneficiaries, amount),
                    [Row(msg(MONTH_NAMES[int(m[5:])]), (n, _yuan(c)))
                     for m, n, c in zip(months, totals.month_beneficiaries or [0] * 12, totals.month_cents or [0] * 12,
                                        strict=True)])]
    labels = load_code_tables()
    charts.append(Chart("meal_models", msg("不同供餐模式受益学生人数"), "pie", (beneficiaries,),
                        [Row(msg(labels.label("meal_model", m) or m), (len(ids),))
                         for m, ids in sorted(totals.by_meal_model.items())]))
    charts.append(Chart("townships", msg("各乡镇受益学生人数"), "bar", (beneficiaries, amount),
                        _by_township(session, report)))
    charts.append(Chart("workload", msg("录入和变更办理情况"), "bar",
                        tuple(msg(STATUS_LABELS[s]) for s in STATUS_LABELS), _workload(session, actor)))
    charts.append(Chart("overdue", msg("逾期任务（按学校）"), "bar", (msg("逾期任务数"),), _overdue(session, actor, now)))
    late = [s for s in report_submissions.submissions(session, actor=actor, year=year, now=now, report=report)
            if s.late]
    charts.append(Chart("late_reports", msg("逾期上报常规报表的学校"), "table", (msg("情况"),),
                        [Row(s.unit.name, (msg("逾期后已上报") if s.snapshot else msg("逾期未上报"),)) for s in late]))
    return charts


def _by_township(session: Session, report: reports.Report) -> list[Row]:
    """Each township's pupils counted once (a move between two of its schools is one child)."""
    parents = {s.school.org_unit.parent_id for s in report.schools}
    names = dict(session.execute(select(OrgUnit.id, OrgUnit.name).where(OrgUnit.id.in_(parents))).all())
    pupils: dict[int, set[int]] = {}
    cents: dict[int, int] = {}
    for school in report.schools:
        parent = school.school.org_unit.parent_id
        pupils.setdefault(parent, set()).update(school.tally.beneficiaries)
        cents[parent] = cents.get(parent, 0) + school.tally.subsidy_cents
    return [Row(names.get(t, "—"), (len(pupils[t]), _yuan(cents[t]))) for t in sorted(pupils, key=lambda t: names.get(t, ""))]


def _workload(session: Session, actor: User) -> list[Row]:
    unit = aliased(OrgUnit)
    rows = session.execute(
        select(ProcessVersion.name, ProcessInstance.process_id, ProcessInstance.status, func.count())
        .join(ProcessVersion, ProcessVersion.id == ProcessInstance.process_version_id)
        .join(unit, unit.id == ProcessInstance.org_unit_id)
        .where(ProcessInstance.process_id.in_(WORKLOAD), scope_clause(actor, unit.path))
        .group_by(ProcessVersion.name, ProcessInstance.process_id, ProcessInstance.status)).all()
    counts: dict[str, dict[str, int]] = {}
    names: dict[str, str] = {}
    for name, process_id, status, n in rows:
        names.setdefault(process_id, name)
        counts.setdefault(process_id, {})
        counts[process_id][status] = counts[process_id].get(status, 0) + n
    return [Row(names[p], tuple(counts[p].get(s, 0) for s in STATUS_LABELS))
            for p in WORKLOAD if p in counts]


def _overdue(session: Session, actor: User, now: datetime) -> list[Row]:
    """Open tasks past their due time, by the org unit that has to act (a school, or the county's own)."""
    rows = session.execute(
        select(OrgUnit.name, func.count()).join(HumanTask, HumanTask.org_unit_id == OrgUnit.id)
        .where(HumanTask.status == TaskStatus.open, HumanTask.due_at < now, scope_clause(actor, OrgUnit.path))
        .group_by(OrgUnit.name).order_by(func.count().desc(), OrgUnit.name).limit(30)).all()
    return [Row(name, (n,)) for name, n in rows]
