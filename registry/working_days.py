"""Working days: the State Council's calendar (holidays and make-up working days, the `chinese-calendar`
package), plus what a county decides for itself — a local holiday (苗年, 三月三), a day to work, or a
whole year entered by hand when the official schedule is out before the package knows it."""

from dataclasses import dataclass, field
from datetime import date, datetime

import chinese_calendar
from sqlalchemy import Date, ForeignKey, String, UniqueConstraint, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from registry.access import holds
from registry.audit import record
from registry.db import Base, UTCDateTime, utcnow
from registry.errors import Conflict, NotFound, PermissionDenied, RuleViolation, msg
from registry.org_units import OrgKind, OrgUnit
from registry.users import Role, User


class CalendarNotCovered(Conflict):
    """A day of a year neither the package nor the county covers: reminders refuse to guess."""

    code = "calendar_not_covered"


class WorkCalendarDay(Base):
    """A county's own exception to the official calendar: a holiday (working=False) or a working day."""

    __tablename__ = "work_calendar_day"
    __table_args__ = (UniqueConstraint("org_unit_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"))
    day: Mapped[date] = mapped_column(Date)
    working: Mapped[bool]
    note: Mapped[str] = mapped_column(String(100))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WorkCalendarYear(Base):
    """A year the county has entered itself: Monday to Friday work, except the county's own days."""

    __tablename__ = "work_calendar_year"
    __table_args__ = (UniqueConstraint("org_unit_id", "year"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"))
    year: Mapped[int]
    note: Mapped[str] = mapped_column(String(100))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


@dataclass
class WorkCalendar:
    county_days: dict[date, bool] = field(default_factory=dict)
    county_years: frozenset[int] = frozenset()

    def is_working(self, day: date) -> bool:
        if day in self.county_days:
            return self.county_days[day]
        if day.year in self.county_years:
            return day.weekday() < 5
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            raise CalendarNotCovered(
                f"工作日历没有 {day.year} 年的节假日安排：请升级 chinese-calendar 包，或由县教育局系统管理员在“工作日历”中"
                f"录入 {day.year} 年的放假和调休日期并确认该年已录入 / no calendar for {day.year}") from None


def calendar_of(session: Session, county: OrgUnit) -> WorkCalendar:
    days = session.execute(select(WorkCalendarDay.day, WorkCalendarDay.working)
                           .where(WorkCalendarDay.org_unit_id == county.id)).all()
    years = session.scalars(select(WorkCalendarYear.year).where(WorkCalendarYear.org_unit_id == county.id))
    return WorkCalendar(county_days={d: w for d, w in days}, county_years=frozenset(years))


def _check_admin(actor: User, county: OrgUnit) -> None:
    if county.kind != OrgKind.county or not holds(actor, Role.county_admin, county):
        raise PermissionDenied(msg("只有县教育局系统管理员可以维护工作日历"))


def county_days(session: Session, *, actor: User, county: OrgUnit) -> tuple[list[WorkCalendarDay], list[WorkCalendarYear]]:
    _check_admin(actor, county)
    days = session.scalars(select(WorkCalendarDay).where(WorkCalendarDay.org_unit_id == county.id)
                           .order_by(WorkCalendarDay.day.desc()))
    years = session.scalars(select(WorkCalendarYear).where(WorkCalendarYear.org_unit_id == county.id)
                            .order_by(WorkCalendarYear.year.desc()))
    return list(days), list(years)


def _note(note: str | None) -> str:
    text = (note or "").strip()
    if not text or len(text) > 100:
        raise RuleViolation(msg("说明：必填，不超过 100 字"), details=[{"field": "note", "message": msg("必填，不超过 100 字")}])
    return text


def set_day(session: Session, *, actor: User, county: OrgUnit, day: date, working: bool, note: str | None) -> WorkCalendarDay:
    """A county holiday or working day; setting a day again replaces what it was."""
    _check_admin(actor, county)
    text = _note(note)
    entry = session.scalars(select(WorkCalendarDay).where(WorkCalendarDay.org_unit_id == county.id,
                                                          WorkCalendarDay.day == day)).one_or_none()
    before = {"working": entry.working, "note": entry.note} if entry else None
    if entry is None:
        entry = WorkCalendarDay(org_unit_id=county.id, day=day, working=working, note=text, created_by_id=actor.id)
        session.add(entry)
    else:
        entry.working, entry.note = working, text
    session.flush()
    record(session, actor=actor, action="calendar.day", object_type="work_calendar_day", object_id=day.isoformat(),
           org_unit_id=county.id, before=before, after={"working": working, "note": text})
    return entry


def remove_day(session: Session, *, actor: User, county: OrgUnit, day_id: int) -> None:
    _check_admin(actor, county)
    entry = session.get(WorkCalendarDay, day_id)
    if entry is None or entry.org_unit_id != county.id:
        raise NotFound(msg("找不到该日期"))
    before = {"day": entry.day.isoformat(), "working": entry.working, "note": entry.note}
    session.execute(delete(WorkCalendarDay).where(WorkCalendarDay.id == entry.id))
    record(session, actor=actor, action="calendar.day_remove", object_type="work_calendar_day",
           object_id=before["day"], org_unit_id=county.id, before=before)


def declare_year(session: Session, *, actor: User, county: OrgUnit, year: int, note: str | None) -> WorkCalendarYear:
    """The county has entered this year's official holidays and make-up days itself (as county days)."""
    _check_admin(actor, county)
    text = _note(note)
    if not 2000 <= year <= 2100:
        raise RuleViolation(msg("年份：应为 2000 到 2100"), details=[{"field": "year", "message": msg("年份无效")}])
    if session.scalars(select(WorkCalendarYear).where(WorkCalendarYear.org_unit_id == county.id,
                                                      WorkCalendarYear.year == year)).one_or_none():
        raise Conflict(msg("{year} 年已确认录入", year=year), details=[{"field": "year", "message": msg("已确认")}])
    entry = WorkCalendarYear(org_unit_id=county.id, year=year, note=text, created_by_id=actor.id)
    session.add(entry)
    session.flush()
    record(session, actor=actor, action="calendar.year", object_type="work_calendar_year", object_id=year,
           org_unit_id=county.id, after={"year": year, "note": text})
    return entry
