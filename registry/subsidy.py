"""The money: which child is subsidised for which month, at which school, how much, and by which rule.

A month is paid where an enrolment period covers it (registry/students.py): a transfer, suspension,
graduation or dropout closes the period with the month before the change (Art. 15), so no month is
ever paid at two schools. The amounts come from rate rows with effective months (national rows, which
migration 0013 seeds, and the county's own), the county's school calendar, and the school's meal model
of that month: a school without a meal model provides no meals and its pupils get no meal subsidy.

Every figure is built from `MonthLine`s, each carrying the rule that produced it in words, so that
`mealroll subsidy explain` and the student page can show a registrar exactly why a child got what.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from sqlalchemy import ForeignKey, Numeric, String, Text, UniqueConstraint, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from registry.access import holds, sees
from registry.audit import record
from registry.db import Base
from registry.errors import NotFound, PermissionDenied, RuleViolation, join_messages, msg
from registry.org_units import OrgUnit, county_of
from registry.schools import School, SchoolMealModel
from registry.students import Student, StudentStatus
from registry.users import Role, User

CENT = Decimal("0.01")
# Without a county calendar: 200 school days a year over the ten months of the two terms.
DEFAULT_SCHOOL_MONTHS = (9, 10, 11, 12, 1, 3, 4, 5, 6, 7)


class RateKind(StrEnum):
    meal = "meal"                          # 营养膳食补助, national
    topup = "topup"                        # 县级配套, the county's own
    allowance_primary = "allowance_primary"    # 一补, boarders at primary school (grades 1–6)
    allowance_junior = "allowance_junior"      # 一补, boarders at junior middle school (grades 7–9)
    allowance_day_primary = "allowance_day_primary"  # 一补 for non-boarders, where the county pays it
    allowance_day_junior = "allowance_day_junior"


RATE_LABELS = {
    RateKind.meal: "营养膳食补助", RateKind.topup: "县级配套",
    RateKind.allowance_primary: "一补（小学寄宿生）", RateKind.allowance_junior: "一补（初中寄宿生）",
    RateKind.allowance_day_primary: "一补（小学走读生）", RateKind.allowance_day_junior: "一补（初中走读生）",
}


class SubsidyRate(Base):
    """A rate from its effective month on, until a later row of the same kind; county_id None is national."""

    __tablename__ = "subsidy_rate"
    __table_args__ = (UniqueConstraint("county_id", "kind", "effective_month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    county_id: Mapped[int | None] = mapped_column(ForeignKey("org_unit.id"))
    kind: Mapped[str] = mapped_column(String(30))
    effective_month: Mapped[str] = mapped_column(String(7))
    per_day: Mapped[Decimal] = mapped_column(Numeric(8, 2))
    days_per_year: Mapped[int]
    note: Mapped[str | None] = mapped_column(Text)


class SchoolCalendarMonth(Base):
    """The county's own school days in a month; once a school year has any, they replace the default."""

    __tablename__ = "school_calendar_month"

    county_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    school_days: Mapped[int]


# Months ---------------------------------------------------------------------------------------


def month_index(month: str) -> int:
    return int(month[:4]) * 12 + int(month[5:7]) - 1


def month_of(index: int) -> str:
    return f"{index // 12}-{index % 12 + 1:02d}"


def months_between(first: str, last: str) -> list[str]:
    return [month_of(i) for i in range(month_index(first), month_index(last) + 1)]


def school_year_of_month(month: str) -> int:
    return int(month[:4]) if int(month[5:7]) >= 9 else int(month[:4]) - 1


def report_months(year: int, month: int | None = None) -> tuple[str, str]:
    """`year` with `month` is that calendar month; `year` alone the school year from September (DESIGN.md)."""
    if month is not None:
        if not 1 <= month <= 12:
            raise RuleViolation(msg("月份应为 1 到 12"), details=[{"field": "month", "message": msg("月份应为 1 到 12")}])
        return f"{year}-{month:02d}", f"{year}-{month:02d}"
    return f"{year}-09", f"{year + 1}-08"


def period_label(year: int, month: int | None = None) -> str:
    if month:
        return msg("{year}年{month}月", year=year, month=month)
    return msg("{year}–{next_year} 学年", year=year, next_year=year + 1)


# Rates, calendar and meal models of one county -------------------------------------------------


@dataclass(frozen=True)
class Rate:
    per_day: Decimal
    days_per_year: int
    effective_month: str
    county: bool

    def describe(self, label: str) -> str:
        origin = "县定" if self.county else "国家标准"
        return f"{label} {self.per_day} 元/天（{origin}，{self.effective_month[:4]}年{int(self.effective_month[5:])}月起）"


class RateBook:
    """What a county pays: rates by kind and month, school days by month. Built once per report."""

    def __init__(self, rates: Iterable[SubsidyRate], calendar: dict[str, int]) -> None:
        by_kind: dict[str, list[tuple[str, int, Rate]]] = {}
        for row in rates:
            rate = Rate(Decimal(row.per_day), row.days_per_year, row.effective_month, row.county_id is not None)
            # The latest effective month wins; in the same month the county's row beats the national one.
            by_kind.setdefault(row.kind, []).append((row.effective_month, int(rate.county), rate))
        self._rates = {kind: sorted(rows, key=lambda r: (r[0], r[1])) for kind, rows in by_kind.items()}
        self._keys = {kind: [r[0] for r in rows] for kind, rows in self._rates.items()}
        self._calendar = calendar
        self._calendar_years = {school_year_of_month(m) for m in calendar}
        # A report asks the same months again for every pupil: remember the answers.
        self._days: dict[str, tuple[int, str]] = {}
        self._school_months: dict[int, int] = {}

    def rate(self, kind: str, month: str) -> Rate | None:
        keys = self._keys.get(kind, [])
        at = bisect.bisect_right(keys, month)
        return self._rates[kind][at - 1][2] if at else None

    def school_days(self, month: str) -> tuple[int, str]:
        """The meal subsidy's days in a month, and where that number comes from."""
        if month not in self._days:
            self._days[month] = self._school_days(month)
        return self._days[month]

    def _school_days(self, month: str) -> tuple[int, str]:
        if school_year_of_month(month) in self._calendar_years:
            days = self._calendar.get(month, 0)
            return days, f"县校历 {days} 天"
        meal = self.rate(RateKind.meal, month)
        if meal is None or int(month[5:7]) not in DEFAULT_SCHOOL_MONTHS:
            return 0, "非上课月 0 天"
        days = meal.days_per_year // len(DEFAULT_SCHOOL_MONTHS)
        return days, f"每学年 {meal.days_per_year} 天 ÷ {len(DEFAULT_SCHOOL_MONTHS)} 个上课月 = {days} 天"

    def school_months_in_year(self, month: str) -> int:
        year = school_year_of_month(month)
        if year not in self._school_months:
            first, last = report_months(year)
            self._school_months[year] = sum(1 for m in months_between(first, last) if self.school_days(m)[0] > 0)
        return self._school_months[year]


def rate_book(session: Session, county: OrgUnit) -> RateBook:
    rates = session.scalars(select(SubsidyRate).where(or_(SubsidyRate.county_id.is_(None),
                                                          SubsidyRate.county_id == county.id)))
    calendar = dict(session.execute(select(SchoolCalendarMonth.month, SchoolCalendarMonth.school_days)
                                    .where(SchoolCalendarMonth.county_id == county.id)).all())
    return RateBook(rates, calendar)


class MealModels:
    """Each school's meal model by month, from its history rows, else its record."""

    def __init__(self, current: dict[int, str | None], history: Iterable[tuple[int, str, str | None]]) -> None:
        self._current = current
        self._history: dict[int, list[tuple[str, str | None]]] = {}
        for school_id, month, model in sorted(history, key=lambda h: (h[0], h[1])):
            self._history.setdefault(school_id, []).append((month, model))

    def at(self, school_id: int, month: str) -> str | None:
        rows = self._history.get(school_id)
        if not rows:
            return self._current.get(school_id)
        at = bisect.bisect_right([r[0] for r in rows], month)
        return rows[at - 1][1] if at else rows[0][1]


def meal_models(session: Session, school_ids: Sequence[int]) -> MealModels:
    current = dict(session.execute(select(School.org_unit_id, School.meal_model)
                                   .where(School.org_unit_id.in_(school_ids))).all())
    history = session.execute(select(SchoolMealModel.school_id, SchoolMealModel.effective_month,
                                     SchoolMealModel.meal_model)
                              .where(SchoolMealModel.school_id.in_(school_ids)))
    return MealModels(current, history)


# One child, one month ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Pupil:
    """What of a student the money depends on, as an enrolment period carries it for its months."""

    grade: int
    boarding_mode: str
    boarding_allowance: bool

    @property
    def junior(self) -> bool:
        return self.grade >= 7


@dataclass(frozen=True)
class MonthLine:
    month: str
    school_id: int
    meal_model: str | None
    school_days: int
    meal_rate: Decimal
    meal_amount: Decimal
    allowance_rate: Decimal
    allowance_amount: Decimal
    rule: str

    @property
    def beneficiary(self) -> bool:
        return self.meal_model is not None


def month_line(book: RateBook, school_id: int, model: str | None, month: str, pupil: Pupil) -> MonthLine:
    """One pupil's month at a school serving meals in `model` that month (None: no meals)."""
    days, days_rule = book.school_days(month)
    meal, topup = book.rate(RateKind.meal, month), book.rate(RateKind.topup, month)
    if model is None:
        meal_rate, meal_rule = Decimal(0), "学校未供餐，无营养膳食补助"
    elif meal is None:
        meal_rate, meal_rule = Decimal(0), "该月尚无补助标准"
    else:
        meal_rate = meal.per_day + (topup.per_day if topup else 0)
        parts = [meal.describe(RATE_LABELS[RateKind.meal])] + ([topup.describe("县级配套")] if topup else [])
        meal_rule = " + ".join(parts) + f" × {days_rule}"
    meal_amount = (meal_rate * days).quantize(CENT)
    allowance_rate, allowance_amount, allowance_rule = _allowance(book, month, pupil)
    rule = meal_rule + (f"；{allowance_rule}" if allowance_rule else "")
    return MonthLine(month, school_id, model, days if model else 0, meal_rate, meal_amount, allowance_rate,
                     allowance_amount, rule)


def _allowance(book: RateBook, month: str, pupil: Pupil) -> tuple[Decimal, Decimal, str]:
    if not pupil.boarding_allowance:
        return Decimal(0), Decimal(0), ""
    boarder = pupil.boarding_mode == "2"
    kind = {(False, True): RateKind.allowance_primary, (True, True): RateKind.allowance_junior,
            (False, False): RateKind.allowance_day_primary, (True, False): RateKind.allowance_day_junior}[
        (pupil.junior, boarder)]
    rate = book.rate(kind, month)
    months = book.school_months_in_year(month)
    if rate is None or book.school_days(month)[0] == 0 or months == 0:
        reason = "本县不补助走读生" if rate is None and not boarder else "非上课月" if rate else "该月尚无一补标准"
        return Decimal(0), Decimal(0), f"一补 0（{reason}）"
    amount = (rate.per_day * rate.days_per_year / months).quantize(CENT, ROUND_HALF_UP)
    return rate.per_day, amount, (f"{rate.describe(RATE_LABELS[kind])} × 每学年 {rate.days_per_year} 天 ÷ "
                                  f"{months} 个上课月")


# A student's months -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StudentSubsidy:
    student: Student
    lines: list[MonthLine]
    school_names: dict[int, tuple[str, str]]
    overlaps: list[str]

    @property
    def meal_total(self) -> Decimal:
        return sum((line.meal_amount for line in self.lines), Decimal(0))

    @property
    def allowance_total(self) -> Decimal:
        return sum((line.allowance_amount for line in self.lines), Decimal(0))


def student_subsidy(session: Session, *, actor: User, student_id: int, year: int | None = None,
                    today: date) -> StudentSubsidy:
    """Every month a student's periods cover (up to this month, or the school year asked for)."""
    student = session.get(Student, student_id)
    if student is None or not sees(actor, student.school):
        raise NotFound(msg("找不到学生 {student_id}", student_id=student_id))
    return explain(session, student, year=year, today=today)


def explain(session: Session, student: Student, *, year: int | None = None, today: date) -> StudentSubsidy:
    """`student_subsidy` for a caller already allowed to see the student (the command line, a checked page)."""
    first, last = report_months(year) if year is not None else ("0000-01", f"{today:%Y-%m}")
    county = county_of(session, student.school)
    periods = [p for p in student.periods if student.status != StudentStatus.voided]
    book, models = rate_book(session, county), meal_models(session, [p.school_id for p in periods])
    lines: list[MonthLine] = []
    for period in sorted(periods, key=lambda p: p.from_month):
        pupil = Pupil(period.grade, period.boarding_mode, period.boarding_allowance)
        start, end = max(period.from_month, first), min(period.to_month or last, last)
        lines += [month_line(book, period.school_id, models.at(period.school_id, m), m, pupil)
                  for m in months_between(start, end)]
    lines.sort(key=lambda line: line.month)
    seen: set[str] = set()
    # The periods never overlap when they are kept by the services; if they ever did, say so plainly.
    overlaps = sorted({line.month for line in lines if line.month in seen or seen.add(line.month)})
    names = {p.school_id: (p.school.code, p.school.name) for p in periods}
    return StudentSubsidy(student, lines, names, overlaps)


def money(value: Decimal) -> float:
    """JSON has no decimals: amounts leave as numbers with two places, which a float holds exactly enough."""
    return float(value.quantize(CENT))


def subsidy_json(result: StudentSubsidy) -> dict[str, object]:
    return {
        "student_id": result.student.id,
        "months": [{
            "month": line.month, "school_code": result.school_names[line.school_id][0],
            "school_name": result.school_names[line.school_id][1], "meal_model": line.meal_model,
            "school_days": line.school_days, "meal_rate": money(line.meal_rate),
            "meal_amount": money(line.meal_amount), "allowance_rate": money(line.allowance_rate),
            "allowance_amount": money(line.allowance_amount), "rule": line.rule,
        } for line in result.lines],
        "totals": {"months": len(result.lines), "meal_amount": money(result.meal_total),
                   "allowance_amount": money(result.allowance_total)},
        "overlapping_months": result.overlaps,
    }


# The county's settings ----------------------------------------------------------------------------


def _require_county_admin(actor: User, county: OrgUnit) -> None:
    if not holds(actor, Role.county_admin, county):
        raise PermissionDenied(msg("只有县教育局系统管理员可以设置补助标准和校历"))


def _valid_month(value: object, field: str) -> str:
    text = str(value or "")
    if not (len(text) == 7 and text[4] == "-" and text[:4].isdigit() and text[5:].isdigit()
            and 1 <= int(text[5:]) <= 12):
        raise RuleViolation(msg("{field}：应为 YYYY-MM 格式的月份", field=field),
                            details=[{"field": field, "message": msg("应为 YYYY-MM")}])
    return text


def rates_of(session: Session, county: OrgUnit) -> list[SubsidyRate]:
    """The national rates and the county's own, by kind and month."""
    return list(session.scalars(select(SubsidyRate).where(or_(SubsidyRate.county_id.is_(None),
                                                              SubsidyRate.county_id == county.id))
                                .order_by(SubsidyRate.kind, SubsidyRate.effective_month, SubsidyRate.county_id)))


def rate_json(rate: SubsidyRate) -> dict[str, object]:
    return {"kind": rate.kind, "label": RATE_LABELS.get(rate.kind, rate.kind), "effective_month": rate.effective_month,
            "per_day": money(rate.per_day), "days_per_year": rate.days_per_year,
            "source": "county" if rate.county_id is not None else "national", "note": rate.note}


def calendar_of(session: Session, county: OrgUnit, year: int) -> dict[str, int]:
    first, last = report_months(year)
    return dict(session.execute(select(SchoolCalendarMonth.month, SchoolCalendarMonth.school_days)
                                .where(SchoolCalendarMonth.county_id == county.id,
                                       SchoolCalendarMonth.month.between(first, last))
                                .order_by(SchoolCalendarMonth.month)).all())


def set_county_rate(session: Session, *, actor: User, county: OrgUnit, kind: str, effective_month: object,
                    per_day: Decimal | str, days_per_year: object, note: str | None = None) -> SubsidyRate:
    """The county's own rate of a kind from a month on (a top-up, a local 一补, 一补 for non-boarders)."""
    _require_county_admin(actor, county)
    problems = []
    if kind not in set(RateKind):
        problems.append({"field": "kind", "message": msg("补助项目：不认识 {kind}", kind=kind)})
    month = _valid_month(effective_month, "effective_month")
    try:
        amount = Decimal(str(per_day)).quantize(CENT)
    except ArithmeticError:
        amount = Decimal(-1)
    if not Decimal(0) <= amount <= Decimal(100):
        problems.append({"field": "per_day", "message": msg("每天标准：应为 0 到 100 元")})
    if not (isinstance(days_per_year, int) and not isinstance(days_per_year, bool) and 0 < days_per_year <= 366):
        problems.append({"field": "days_per_year", "message": msg("每学年天数：应为 1 到 366 的整数")})
    if problems:
        raise RuleViolation(msg("补助标准有误：{problems}", problems=join_messages(p["message"] for p in problems)),
                            details=problems)
    row = session.scalars(select(SubsidyRate).where(SubsidyRate.county_id == county.id, SubsidyRate.kind == kind,
                                                    SubsidyRate.effective_month == month)).one_or_none()
    before = None if row is None else {"per_day": str(row.per_day), "days_per_year": row.days_per_year}
    if row is None:
        row = SubsidyRate(county_id=county.id, kind=kind, effective_month=month)
        session.add(row)
    row.per_day, row.days_per_year, row.note = amount, int(str(days_per_year)), note
    session.flush()
    record(session, actor=actor, action="subsidy.rate", object_type="subsidy_rate", object_id=f"{kind}@{month}",
           org_unit_id=county.id, before=before, after={"per_day": str(amount), "days_per_year": days_per_year},
           reason=note)
    return row


def set_school_calendar(session: Session, *, actor: User, county: OrgUnit, year: int,
                        days: dict[str, object]) -> None:
    """The county's school days per month of school year `year` (Sep–Aug); months left out have none."""
    _require_county_admin(actor, county)
    if not 2000 <= year <= 2100:
        raise RuleViolation(msg("学年应在 2000 到 2100 之间"),
                            details=[{"field": "year", "message": msg("学年应在 2000 到 2100 之间")}])
    first, last = report_months(year)
    allowed = set(months_between(first, last))
    problems = [{"field": m, "message": msg("{month}：不在 {year} 内", month=m, year=period_label(year))}
                for m in days if m not in allowed]
    problems += [{"field": m, "message": msg("{month}：上课天数应为 0 到 31 的整数", month=m)} for m, d in days.items()
                 if not (isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 31)]
    if problems:
        raise RuleViolation(msg("校历有误：{problems}", problems=join_messages(p["message"] for p in problems)),
                            details=problems)
    existing = {row.month: row for row in session.scalars(select(SchoolCalendarMonth).where(
        SchoolCalendarMonth.county_id == county.id, SchoolCalendarMonth.month.in_(allowed)))}
    before = {m: row.school_days for m, row in existing.items()}
    for month in sorted(allowed):
        row = existing.get(month)
        if row is None:
            session.add(SchoolCalendarMonth(county_id=county.id, month=month, school_days=days.get(month, 0)))
        else:
            row.school_days = days.get(month, 0)
    session.flush()
    record(session, actor=actor, action="subsidy.calendar", object_type="school_calendar", object_id=str(year),
           org_unit_id=county.id, before=before or None, after={m: days.get(m, 0) for m in sorted(allowed)})
