"""The standard reports of Art. 12, for a school and for a county, computed from enrolment periods.

A report covers a month or a school year (registry/subsidy.py `report_months`). Who counts:
- 在校学生总数 `students_total`: pupils with an enrolment period at the school in the period;
- 受益学生人数 `beneficiaries`: those of them with at least one month at the school while it served meals;
- 寄宿生, 留守儿童, 外来务工人员子女: among the pupils on roll, those who were so in a month of the period
  (the enrolment period's values, which change from a month on: registry/students.py `restate_periods`);
- 享受一补 `boarding_allowance`: pupils with a 一补 amount above zero in the period;
- 补助标准 `subsidy_rate`: the meal rate per day (national + county top-up) in the period's last month;
- 补助总额 `subsidy_total`: the meal subsidy, summed month by month (一补 apart, `boarding_allowance_total`).
The county's totals count each child once even when a transfer put them at two schools in a year;
the amounts add up, since no month is paid twice.

Each figure keeps the ids of the pupils behind it, so that a page can list them (`figure_students`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from itertools import compress, groupby, repeat
from operator import itemgetter
from typing import Any

from sqlalchemy import Integer, cast, or_, select
from sqlalchemy.orm import Session

from registry.access import scope_clause, sees
from registry.code_tables import load_code_tables
from registry.errors import NotFound, PermissionDenied, RuleViolation, join_messages, msg
from registry.org_units import OrgKind, OrgUnit, county_of, find_org_unit
from registry.schools import School
from registry.students import EnrolmentPeriod, Student
from registry.subsidy import (
    Pupil,
    RateBook,
    RateKind,
    meal_models,
    money,
    month_line,
    months_between,
    period_label,
    rate_book,
    report_months,
)
from registry.users import User

# Figure key → Chinese heading, in the order of Art. 12.
FIGURES = {
    "students_total": msg("在校学生总数"), "classes": msg("班级数"), "beneficiaries": msg("受益学生人数"),
    "boarders": msg("寄宿生人数"), "boarding_allowance": msg("享受一补人数"), "left_behind": msg("留守儿童人数"),
    "migrant_children": msg("外来务工人员子女人数"), "subsidy_rate": msg("补助标准（元/天）"),
    "subsidy_total": msg("补助总额（元）"), "meal_model": msg("供餐模式"),
}
# Figures that are a set of pupils, and so can be listed child by child.
COUNTED = ("students_total", "beneficiaries", "boarders", "boarding_allowance", "left_behind", "migrant_children")


@dataclass
class Tally:
    """One school's (or the county's) pupils per figure, and its money."""

    students_total: set[int] = field(default_factory=set)
    beneficiaries: set[int] = field(default_factory=set)
    boarders: set[int] = field(default_factory=set)
    boarding_allowance: set[int] = field(default_factory=set)
    left_behind: set[int] = field(default_factory=set)
    migrant_children: set[int] = field(default_factory=set)
    classes: set[tuple[int, int, str]] = field(default_factory=set)
    # Money in cents: integers add up fast and exactly over 60k pupils.
    subsidy_cents: int = 0
    allowance_cents: int = 0
    by_meal_model: dict[str, set[int]] = field(default_factory=dict)
    cents_by_meal_model: dict[str, int] = field(default_factory=dict)
    # Month by month over the report's months: pupils subsidised (no pupil has two periods in one month)
    # and the meal subsidy, for the dashboard's chart.
    month_beneficiaries: list[int] = field(default_factory=list)
    month_cents: list[int] = field(default_factory=list)

    @property
    def subsidy_total(self) -> Decimal:
        return Decimal(self.subsidy_cents) / 100

    @property
    def boarding_allowance_total(self) -> Decimal:
        return Decimal(self.allowance_cents) / 100

    def add(self, other: Tally) -> None:
        for name in COUNTED:
            getattr(self, name).update(getattr(other, name))
        self.classes |= other.classes
        self.subsidy_cents += other.subsidy_cents
        self.allowance_cents += other.allowance_cents
        for model, ids in other.by_meal_model.items():
            self.by_meal_model.setdefault(model, set()).update(ids)
            self.cents_by_meal_model[model] = self.cents_by_meal_model.get(model, 0) + other.cents_by_meal_model[model]
        if not self.month_beneficiaries:
            self.month_beneficiaries, self.month_cents = [0] * len(other.month_beneficiaries), [0] * len(other.month_cents)
        for i, (count, cents) in enumerate(zip(other.month_beneficiaries, other.month_cents, strict=True)):
            self.month_beneficiaries[i] += count
            self.month_cents[i] += cents

    def counts(self) -> dict[str, int]:
        return {"students_total": len(self.students_total), "classes": len(self.classes),
                **{name: len(getattr(self, name)) for name in COUNTED if name != "students_total"}}


@dataclass
class SchoolReport:
    school: School
    tally: Tally
    subsidy_rate: Decimal
    meal_model: str | None

    def as_json(self) -> dict[str, object]:
        labels = load_code_tables()
        return {
            "school_code": self.school.org_unit.code, "school_name": self.school.org_unit.name,
            "school_type": self.school.school_type,
            "school_type_label": labels.label("school_type", self.school.school_type or "") or "",
            **self.tally.counts(),
            "subsidy_rate": money(self.subsidy_rate), "subsidy_total": money(self.tally.subsidy_total),
            "boarding_allowance_total": money(self.tally.boarding_allowance_total),
            "meal_model": self.meal_model,
            "meal_model_label": labels.label("meal_model", self.meal_model or "") or "未供餐",
        }


@dataclass
class Report:
    """A school's or a county's report for one period; `unit` is the school or the county."""

    unit: OrgUnit
    year: int
    month: int | None
    schools: list[SchoolReport]

    @cached_property
    def totals(self) -> Tally:
        totals = Tally()
        for school in self.schools:
            totals.add(school.tally)
        return totals

    @property
    def label(self) -> str:
        return period_label(self.year, self.month)

    def period_json(self) -> dict[str, object]:
        first, last = report_months(self.year, self.month)
        return {"year": self.year, "month": self.month, "first_month": first, "last_month": last,
                "label": self.label}

    def school_json(self) -> dict[str, object]:
        return {**self.schools[0].as_json(), "period": self.period_json()}

    def county_json(self) -> dict[str, object]:
        labels = load_code_tables()
        totals = self.totals
        by_model = {}
        for model in sorted(totals.by_meal_model):
            by_model[model] = {
                "label": labels.label("meal_model", model) or model,
                "schools": sum(1 for s in self.schools if model in s.tally.by_meal_model),
                "beneficiaries": len(totals.by_meal_model[model]),
                "subsidy_total": money(Decimal(totals.cents_by_meal_model[model]) / 100),
            }
        return {
            "county": self.unit.as_ref(), "period": self.period_json(),
            "schools": [s.as_json() for s in self.schools],
            "totals": {"schools": len(self.schools), **totals.counts(),
                       "subsidy_total": money(totals.subsidy_total),
                       "boarding_allowance_total": money(totals.boarding_allowance_total)},
            "by_meal_model": by_model,
        }


# (served month by month, junior, boarding mode, 一补) → cents per month, summed from the period's start:
# schools that served meals in the same months share them, so a county needs only a handful.
Prefix = dict[tuple[tuple[bool, ...], bool, str, int], tuple[list[int], list[int]]]


def _cents(value: Decimal) -> int:
    return int(value * 100)


def prefix_sums(book: RateBook, months: list[str], served: tuple[bool, ...], junior: bool, boarding_mode: str,
                 allowance: int) -> tuple[list[int], list[int]]:
    """A kind of pupil's meal and 一补 cents summed month by month from the first month (index 0 is 0)."""
    pupil = Pupil(7 if junior else 1, boarding_mode, bool(allowance))
    meal, allowance_sums = [0], [0]
    for month, serves in zip(months, served, strict=True):
        line = month_line(book, 0, "served" if serves else None, month, pupil)
        meal.append(meal[-1] + _cents(line.meal_amount))
        allowance_sums.append(allowance_sums[-1] + _cents(line.allowance_amount))
    return meal, allowance_sums


# The columns of `period_rows`, by name: the tally works on whole columns at C speed, not row by row.
_STUDENT, _FROM, _TO, _GRADE, _CLASS, _BOARDING, _ALLOWANCE, _LEFT_BEHIND, _MIGRANT = range(9)
_ids = itemgetter(_STUDENT)
_span = itemgetter(_FROM, _TO)
_kind = itemgetter(_FROM, _TO, _GRADE, _BOARDING, _ALLOWANCE)
_LEFT_BEHIND_CODES = frozenset({"1", "2"})


def _ids_where(rows: list[tuple], flags: Iterable[object]) -> set[int]:
    """The students of the rows whose flag is true."""
    return set(map(_ids, compress(rows, flags)))


def kind_sums(prefix: Prefix, book: RateBook, months: list[str], served: tuple[bool, ...], grade: int,
              boarding_mode: str, allowance: int) -> tuple[tuple, tuple[list[int], list[int]]]:
    """A kind of pupil's key and its prefix sums (`prefix_sums`), worked out once per report."""
    key = (served, grade >= 7, boarding_mode, allowance)
    sums = prefix.get(key)
    if sums is None:
        sums = prefix[key] = prefix_sums(book, months, *key)
    return key, sums


def _tally_school(book: RateBook, school_id: int, months: list[str], models: list[str | None],
                  rows: list[tuple], prefix: Prefix) -> Tally:
    """Pupils and money of one school. Periods of the same kind (months, grade, boarding, 一补) are counted
    together, and each kind's money costs O(1) through sums prefixed by month: a county's 70k periods make
    a few thousand kinds, so that Python works per kind and the sets of pupils are built by C loops."""
    n = len(months)
    position = {m: i for i, m in enumerate(months)}
    served = tuple(m is not None for m in models)
    # The months the school served meals, as runs of one meal model: (model, first index, last index).
    runs: list[tuple[str, int, int]] = []
    for index, model in enumerate(models):
        if model is not None and runs and runs[-1][0] == model and runs[-1][2] == index - 1:
            runs[-1] = (model, runs[-1][1], index)
        elif model is not None:
            runs.append((model, index, index))
    tally = Tally()
    tally.students_total = set(map(_ids, rows))
    tally.classes = set(zip(repeat(school_id), map(itemgetter(_GRADE), rows), map(itemgetter(_CLASS), rows)))
    tally.boarders = _ids_where(rows, map("2".__eq__, map(itemgetter(_BOARDING), rows)))
    tally.left_behind = _ids_where(rows, map(_LEFT_BEHIND_CODES.__contains__, map(itemgetter(_LEFT_BEHIND), rows)))
    tally.migrant_children = _ids_where(rows, map(itemgetter(_MIGRANT), rows))
    # The query keeps periods overlapping the range and not empty, so start <= end and both are indexes.
    spans_of_model: dict[str, set[tuple[str, str | None]]] = {model: set() for model, _, _ in runs}
    allowance_kinds: set[tuple] = set()
    edges: dict[tuple, list[int]] = {}  # per kind of pupil: +count where periods start, -count after they end
    subsidy = allowance_total = 0
    cents_by_model = dict.fromkeys(spans_of_model, 0)
    for kind, count in Counter(map(_kind, rows)).items():
        from_month, to_month, grade, boarding_mode, allowance = kind
        # Months outside the range are its edges: period_rows keeps only periods overlapping it.
        start, end = position.get(from_month, 0), position.get(to_month, n - 1)
        key, (meal, allowance_sums) = kind_sums(prefix, book, months, served, grade, boarding_mode, allowance)
        subsidy += count * (meal[end + 1] - meal[start])
        if allowance:
            cents = allowance_sums[end + 1] - allowance_sums[start]
            if cents > 0:
                allowance_kinds.add(kind)
                allowance_total += count * cents
        for model, run_start, run_end in runs:
            a, b = max(start, run_start), min(end, run_end)
            if a <= b:
                spans_of_model[model].add((from_month, to_month))
                cents_by_model[model] += count * (meal[b + 1] - meal[a])
        counts = edges.get(key)
        if counts is None:
            counts = edges[key] = [0] * (n + 1)
        counts[start] += count
        counts[end + 1] -= count
    if allowance_kinds:
        flagged = list(compress(rows, map(itemgetter(_ALLOWANCE), rows)))
        tally.boarding_allowance = _ids_where(flagged, map(allowance_kinds.__contains__, map(_kind, flagged)))
    whole = runs[0][0] if len(runs) == 1 and runs[0][1:] == (0, n - 1) else None
    for model, spans in spans_of_model.items():
        ids = set(tally.students_total) if model == whole else _ids_where(rows, map(spans.__contains__, map(_span, rows)))
        if ids:
            tally.by_meal_model[model] = ids
            tally.cents_by_meal_model[model] = cents_by_model[model]
            tally.beneficiaries |= ids
    tally.subsidy_cents, tally.allowance_cents = subsidy, allowance_total
    tally.month_beneficiaries, tally.month_cents = [0] * n, [0] * n
    for key, counts in edges.items():
        meal = prefix[key][0]
        running = 0
        for i in range(n):
            running += counts[i]
            if served[i]:
                tally.month_beneficiaries[i] += running
                tally.month_cents[i] += running * (meal[i + 1] - meal[i])
    return tally


def period_rows(session: Session, school_ids: list[int], first: str, last: str,
                extra: tuple[Any, ...] = ()) -> dict[int, list[tuple]]:
    """By school: each enrolment period overlapping first…last, not empty, with what the money and the counts
    depend on (student id, from, to, grade, class, boarding, 一补, left-behind, migrant), then `extra` columns."""
    # Everything counted is the period's own (registry/students.py PERIOD_VALUES): the student table is
    # joined only for `extra` columns, which on SQLite saves a third of the fetch. The flags as integers:
    # no per-row conversion to bool on the way out.
    query = (select(EnrolmentPeriod.school_id, EnrolmentPeriod.student_id, EnrolmentPeriod.from_month,
                    EnrolmentPeriod.to_month, EnrolmentPeriod.grade, EnrolmentPeriod.class_name,
                    EnrolmentPeriod.boarding_mode, cast(EnrolmentPeriod.boarding_allowance, Integer),
                    EnrolmentPeriod.left_behind, cast(EnrolmentPeriod.migrant_child, Integer), *extra)
             .where(EnrolmentPeriod.school_id.in_(school_ids), EnrolmentPeriod.from_month <= last,
                    or_(EnrolmentPeriod.to_month.is_(None), EnrolmentPeriod.to_month >= first),
                    # An empty period is no month at all: one closed in its first month, and every period of
                    # a voided record (registry/students.py `void_active`; a pending record has none).
                    or_(EnrolmentPeriod.to_month.is_(None), EnrolmentPeriod.to_month >= EnrolmentPeriod.from_month))
             .order_by(EnrolmentPeriod.school_id))
    if extra:
        query = query.join(Student, Student.id == EnrolmentPeriod.student_id)
    # The driver's plain tuples: for 70k rows SQLAlchemy's Row objects would cost a third of the report.
    fetched = session.connection().execute(query).cursor.fetchall()
    by_school: dict[int, list[tuple]] = {school_id: [] for school_id in school_ids}
    rest = itemgetter(slice(1, None))
    for school_id, rows in groupby(fetched, itemgetter(0)):
        by_school[school_id] = list(map(rest, rows))
    return by_school


def _build(session: Session, unit: OrgUnit, schools: list[School], year: int, month: int | None) -> Report:
    if not 2000 <= year <= 2100:
        raise RuleViolation(msg("年份应在 2000 到 2100 之间"),
                            details=[{"field": "year", "message": msg("年份应在 2000 到 2100 之间")}])
    first, last = report_months(year, month)
    county = county_of(session, unit)
    book = rate_book(session, county)
    ids = [s.org_unit_id for s in schools]
    models = meal_models(session, ids)
    rows = period_rows(session, ids, first, last)
    meal, topup = book.rate(RateKind.meal, last), book.rate(RateKind.topup, last)
    rate = (meal.per_day if meal else Decimal(0)) + (topup.per_day if topup else Decimal(0))
    months = months_between(first, last)
    reports, prefix = [], {}
    for school in schools:
        by_month = [models.at(school.org_unit_id, m) for m in months]
        tally = _tally_school(book, school.org_unit_id, months, by_month, rows[school.org_unit_id], prefix)
        served = [m for m in by_month if m]
        reports.append(SchoolReport(school, tally, rate, served[-1] if served else None))
    return Report(unit, year, month, reports)


def school_report(session: Session, *, actor: User, school_code: str, year: int, month: int | None = None) -> Report:
    unit = find_org_unit(session, code=school_code)
    school = session.get(School, unit.id) if unit is not None else None
    if school is None or not sees(actor, school.org_unit):
        raise NotFound(msg("找不到学校 {school_code}", school_code=school_code))
    return _build(session, school.org_unit, [school], year, month)


def county_report(session: Session, *, actor: User, year: int, month: int | None = None) -> Report:
    """The beneficiary schools of the caller's county, as far as the caller sees (a township officer: theirs)."""
    if not actor.grants:
        raise PermissionDenied(msg("您没有任何机构的权限"))
    county = county_of(session, actor.grants[0].org_unit)
    schools = list(session.scalars(
        select(School).join(School.org_unit)
        .where(OrgUnit.path.like(county.path + "%"), OrgUnit.kind == OrgKind.school,
               scope_clause(actor, OrgUnit.path))
        .order_by(OrgUnit.code)))
    report = _build(session, county, schools, year, month)
    # 受益学校名单: the schools that served meals in the period, or had beneficiaries in it.
    beneficiary_schools = [s for s in report.schools if s.meal_model is not None or s.tally.beneficiaries]
    return Report(county, year, month, beneficiary_schools)


def figure_students(session: Session, report: Report, figure: str, *, school_code: str | None = None,
                    limit: int = 200, offset: int = 0) -> tuple[list[Student], int]:
    """The pupils behind one figure of a report (one school's, or the totals'), by grade, class and name."""
    if figure not in COUNTED:
        raise RuleViolation(msg("统计项 {figure} 不能列出学生", figure=figure), details=[
            {"field": "figure", "message": msg("可列出：{figures}", figures=join_messages((FIGURES[f] for f in COUNTED), "、"))}])
    if school_code is None:
        tally = report.totals
    else:
        found = [s for s in report.schools if s.school.org_unit.code == school_code]
        if not found:
            raise NotFound(msg("报表中没有学校 {school_code}", school_code=school_code))
        tally = found[0].tally
    ids = sorted(getattr(tally, figure))
    if not ids:
        return [], 0
    page = session.scalars(select(Student).where(Student.id.in_(ids))
                           .order_by(Student.school_id, Student.grade, Student.class_name, Student.name, Student.id)
                           .limit(limit).offset(offset)).all() if len(ids) <= 5000 else _page_by_chunks(
        session, ids, limit, offset)
    return list(page), len(ids)


def _page_by_chunks(session: Session, ids: list[int], limit: int, offset: int) -> list[Student]:
    # Databases cap the parameters of one IN list; a county-wide figure is sorted in Python instead.
    keys = []
    for at in range(0, len(ids), 5000):
        keys += session.execute(select(Student.id, Student.school_id, Student.grade, Student.class_name, Student.name)
                                .where(Student.id.in_(ids[at:at + 5000]))).all()
    keys.sort(key=lambda k: (k[1], k[2], k[3], k[4], k[0]))
    wanted = [k[0] for k in keys[offset:offset + limit]]
    found = {s.id: s for s in session.scalars(select(Student).where(Student.id.in_(wanted)))}
    return [found[i] for i in wanted]
