"""Submitted reports (Art. 17): a school's figures frozen when it reports, and who is late.

A snapshot is never updated: a later change of the students changes the live report, not what the
school submitted. Submitting again (after the county returned it) adds a new snapshot; the latest counts.
When a report is due is the annual_cycle BPMN's to say (registry/annual_cycle.py `report_dues`), not this module's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ForeignKey, Index, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from registry.access import holds
from registry.audit import record
from registry.db import Base, JSONType, UTCDateTime, utcnow
from registry.errors import PermissionDenied, msg
from registry.org_units import OrgUnit
from registry.reports import Report, county_report, school_report
from registry.settings import local_zone
from registry.subsidy import period_label, report_months
from registry.users import Role, User


class ReportSnapshot(Base):
    __tablename__ = "report_snapshot"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"))
    year: Mapped[int]
    month: Mapped[int | None]
    figures: Mapped[dict[str, Any]] = mapped_column(JSONType)
    submitted_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"))

    submitted_by: Mapped[User] = relationship(lazy="joined")

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "year": self.year, "month": self.month, "figures": self.figures,
                "submitted_by": self.submitted_by.username, "submitted_by_name": self.submitted_by.display_name,
                "submitted_at": self.submitted_at.isoformat(), "instance_id": self.instance_id}


Index("ix_report_snapshot_unit_period", ReportSnapshot.org_unit_id, ReportSnapshot.year, ReportSnapshot.month)


def due_for(session: Session, *, unit: OrgUnit, year: int) -> datetime | None:
    """When the school's report of the school year is due: its annual_cycle task's due date, or the BPMN's."""
    return _report_dues(session, units=[unit], year=year)[unit.id]


def _report_dues(session: Session, *, units: list[OrgUnit], year: int) -> dict[int, datetime | None]:
    # registry.annual_cycle submits through this module and imports registry.workflows, whose flows import
    # this module's ReportSnapshot (registry/transfers.py): imported when asked, not at the top.
    from registry import annual_cycle

    return annual_cycle.report_dues(session, units=units, year=year)


class Reported(NamedTuple):
    """The last month of a school's figures that a report it submitted froze, and that report."""

    school_name: str
    period: str  # the report's label: 2024–2025 学年, 2025年3月
    last_month: str


def last_reported(session: Session, *, school: OrgUnit) -> Reported | None:
    """The latest month whose figures the school has submitted, with that report: a change dated in it or
    before would make the live figures differ from what the school reported (registry/transfers.py).

    A report froze the months of its period that had begun when it was submitted: a school-year
    report, due on 15 September (Art. 17), states September's pupils and forecasts the rest of the
    year, which transfers are expected to change; a month report sent after its month froze all of it."""
    found: Reported | None = None
    for year, month, submitted_at in session.execute(
            select(ReportSnapshot.year, ReportSnapshot.month, ReportSnapshot.submitted_at)
            .where(ReportSnapshot.org_unit_id == school.id)):
        first, last = report_months(year, month)
        last = min(last, f"{submitted_at.astimezone(local_zone()):%Y-%m}")
        if last >= first and (found is None or last > found.last_month):
            found = Reported(school.name, period_label(year, month), last)
    return found


def submit_school_report(session: Session, *, actor: User, school_code: str, year: int, month: int | None = None,
                         instance_id: int | None = None, now: datetime | None = None) -> ReportSnapshot:
    report = school_report(session, actor=actor, school_code=school_code, year=year, month=month)
    school = report.unit
    if not (holds(actor, Role.school_registrar, school) or holds(actor, Role.school_principal, school)):
        raise PermissionDenied(msg("只有本校学籍管理员或校长可以上报本校报表"))
    snapshot = ReportSnapshot(org_unit_id=school.id, year=year, month=month, figures=report.school_json(),
                              submitted_by_id=actor.id, submitted_at=now or utcnow(), instance_id=instance_id)
    session.add(snapshot)
    session.flush()
    record(session, actor=actor, action="report.submit", object_type="report_snapshot", object_id=str(snapshot.id),
           org_unit_id=school.id, instance_id=instance_id, after={"period": report.label, **_headline(report)})
    return snapshot


def _headline(report: Report) -> dict[str, Any]:
    figures = report.school_json()
    return {k: figures[k] for k in ("students_total", "beneficiaries", "subsidy_total")}


def latest(session: Session, *, unit: OrgUnit, year: int, month: int | None = None) -> ReportSnapshot | None:
    month_clause = ReportSnapshot.month.is_(None) if month is None else ReportSnapshot.month == month
    return session.scalars(select(ReportSnapshot).where(ReportSnapshot.org_unit_id == unit.id,
                                                        ReportSnapshot.year == year, month_clause)
                           .order_by(ReportSnapshot.id.desc()).limit(1)).first()


def history(session: Session, *, unit: OrgUnit, year: int, month: int | None = None) -> list[ReportSnapshot]:
    month_clause = ReportSnapshot.month.is_(None) if month is None else ReportSnapshot.month == month
    return list(session.scalars(select(ReportSnapshot).where(ReportSnapshot.org_unit_id == unit.id,
                                                             ReportSnapshot.year == year, month_clause)
                                .order_by(ReportSnapshot.id)))


@dataclass(frozen=True)
class Submission:
    unit: OrgUnit
    snapshot: ReportSnapshot | None
    due: datetime | None  # None: the deployed BPMN gives the report no due date, so nobody is late
    late: bool

    def as_json(self) -> dict[str, Any]:
        return {"school_code": self.unit.code, "school_name": self.unit.name,
                "due_at": self.due.isoformat() if self.due else None,
                "submitted": self.snapshot is not None, "late": self.late,
                "snapshot": self.snapshot.as_json() if self.snapshot else None}


def submissions(session: Session, *, actor: User, year: int, now: datetime | None = None,
                report: Report | None = None) -> list[Submission]:
    """Each beneficiary school in the caller's county report for the school year: submitted, and late or not
    by its own due date. A caller that already has that report passes it, rather than have it computed again."""
    report = report or county_report(session, actor=actor, year=year)
    now = now or utcnow()
    dues = _report_dues(session, units=[s.school.org_unit for s in report.schools], year=year)
    ids = [s.school.org_unit_id for s in report.schools]
    first: dict[int, ReportSnapshot] = {}
    last: dict[int, ReportSnapshot] = {}
    for snapshot in session.scalars(select(ReportSnapshot).where(ReportSnapshot.org_unit_id.in_(ids),
                                                                 ReportSnapshot.year == year,
                                                                 ReportSnapshot.month.is_(None))
                                    .order_by(ReportSnapshot.id)):
        first.setdefault(snapshot.org_unit_id, snapshot)  # the first submission decides lateness
        last[snapshot.org_unit_id] = snapshot  # the latest holds the figures
    result = []
    for school in report.schools:
        unit_id = school.school.org_unit_id
        due = dues[unit_id]
        late = due is not None and (first[unit_id].submitted_at if unit_id in first else now) > due
        result.append(Submission(school.school.org_unit, last.get(unit_id), due, late))
    return result
