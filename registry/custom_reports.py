"""Custom reports (Art. 12 自定义报表, Art. 18 数据分析): the caller's pupils grouped by chosen dimensions.

Who counts is what registry/reports.py counts, cut finer: a pupil is on roll in a group when one of their
enrolment periods overlaps the group's months at the group's school; a beneficiary when one of those months
the school served meals; money is summed month by month (integer cents, sums prefixed by month as in the
standard reports). Unlike the county report's 受益学校名单, every school in scope counts, served meals or not.
With `month` (or `meal_model`) as a dimension a pupil counts in each month (each meal model) they were on roll.
The totals row counts each child once and adds the amounts up.

Student attributes are the record's current values (grade, boarding, …): they are not historised.
A definition can be saved, and shared with the county: whoever runs it sees only their own scope's data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any

from sqlalchemy import Boolean, ForeignKey, String, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from registry.access import scope_clause
from registry.audit import record
from registry.code_tables import load_code_tables
from registry.county_policy import county_of_user
from registry.db import Base, JSONType, UTCDateTime, utcnow
from registry.errors import NotFound, PermissionDenied, RuleViolation, join_messages, msg
from registry.org_units import OrgKind, OrgUnit
from registry.reports import kind_sums, period_rows
from registry.students import Student
from registry.subsidy import (
    meal_models,
    money,
    months_between,
    period_label,
    rate_book,
    report_months,
)
from registry.users import User

DIMENSIONS = {
    "school": "学校", "township": "乡镇", "grade": "年级", "class": "班级", "sex": "性别", "ethnicity": "民族",
    "meal_model": "供餐模式", "boarding": "就读方式", "left_behind": "留守儿童", "migrant": "外来务工人员子女",
    "allowance": "一补", "month": "月份",
}
MEASURES = {
    "students_total": "在校学生数", "beneficiaries": "受益学生数", "subsidy_total": "营养膳食补助金额（元）",
    "boarding_allowance_total": "一补金额（元）",
}
# Dimensions whose values are codes of a national code table.
CODE_TABLES = {"sex": "sex", "ethnicity": "ethnicity", "meal_model": "meal_model", "boarding": "boarding_mode",
               "left_behind": "left_behind", "migrant": "migrant_child"}
# A record without the value (a school serving no meals, left_behind not filled in) groups under "".
BLANK_LABELS = {"meal_model": "未供餐", "left_behind": "未填写"}
ALLOWANCE_LABELS = {"1": "享受一补", "0": "不享受一补"}
MAX_FILTER_VALUES = 500
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def _problem(field_name: str, message: str) -> dict[str, str]:
    return {"field": field_name, "message": message}


@dataclass(frozen=True)
class ReportDefinition:
    """What to count: dimensions, measures, filters (dimension → allowed values) and the period.

    `year` and `month` mean what they mean for /api/reports: a month of calendar year `year`, else school
    year `year` (September to August)."""

    dimensions: tuple[str, ...]
    measures: tuple[str, ...]
    year: int
    month: int | None = None
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def months(self) -> list[str]:
        return months_between(*report_months(self.year, self.month))

    @property
    def period(self) -> str:
        return period_label(self.year, self.month)

    def as_json(self) -> dict[str, Any]:
        return {"dimensions": list(self.dimensions), "measures": list(self.measures),
                "filters": {k: list(v) for k, v in self.filters.items()}, "year": self.year, "month": self.month}

    @classmethod
    def parse(cls, data: object) -> ReportDefinition:
        """A definition from JSON-like data; every problem is named by its field, in Chinese."""
        if not isinstance(data, Mapping):
            raise RuleViolation(msg("报表定义应为一个对象"), details=[_problem("definition", msg("应为一个对象"))])
        problems: list[dict[str, str]] = []
        year, month = data.get("year"), data.get("month")
        if not (isinstance(year, int) and not isinstance(year, bool) and 2000 <= year <= 2100):
            problems.append(_problem("year", msg("年份：应为 2000 到 2100 的整数")))
            year = 2000
        if month is not None and not (isinstance(month, int) and not isinstance(month, bool) and 1 <= month <= 12):
            problems.append(_problem("month", msg("月份：应为 1 到 12 的整数，或不填（整个学年）")))
            month = None
        dimensions = _names(data.get("dimensions", []), DIMENSIONS, "dimensions", msg("分组维度"), problems)
        measures = _names(data.get("measures", []), MEASURES, "measures", msg("统计指标"), problems)
        if not measures and not any(p["field"] == "measures" for p in problems):
            problems.append(_problem("measures", msg("统计指标：至少选一项")))
        months = months_between(*report_months(year, month))
        filters: dict[str, tuple[str, ...]] = {}
        raw = data.get("filters") or {}
        if not isinstance(raw, Mapping):
            problems.append(_problem("filters", msg("筛选条件：应为“维度: [值, …]”的对象")))
            raw = {}
        for name, values in raw.items():
            if name not in DIMENSIONS:
                problems.append(_problem("filters", msg("筛选条件：不认识的维度“{name}”（可选：{known}）", name=name,
                                                        known="、".join(f"{k} {v}" for k, v in DIMENSIONS.items()))))
                continue
            if isinstance(values, str):
                values = [values]
            if not isinstance(values, list) or not values or len(values) > MAX_FILTER_VALUES:
                problems.append(_problem(f"filters.{name}", msg("筛选条件 {dimension}：应为 1 到 {count} 个值的列表",
                                                                dimension=msg(DIMENSIONS[name]),
                                                                count=MAX_FILTER_VALUES)))
                continue
            texts = tuple(dict.fromkeys("" if v is None else str(v).strip() for v in values))
            bad = [v for v in texts if not _valid_value(name, v, months)]
            if bad:
                problems.append(_problem(f"filters.{name}", msg("筛选条件 {dimension}：不认识的值 {values}",
                                                                dimension=msg(DIMENSIONS[name]),
                                                                values="、".join(f"“{v}”" for v in bad[:5]))))
                continue
            filters[name] = texts
        if problems:
            raise RuleViolation(msg("报表定义有误：{problems}", problems=join_messages(p["message"] for p in problems)),
                                details=problems)
        return cls(tuple(dimensions), tuple(measures), year, month, filters)


def _names(value: object, known: Mapping[str, str], field_name: str, title: str,
           problems: list[dict[str, str]]) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        problems.append(_problem(field_name, msg("{title}：应为列表", title=title)))
        return []
    unknown = [str(v) for v in value if v not in known]
    if unknown:
        problems.append(_problem(field_name, msg("{title}：不认识“{unknown}”（可选：{known}）", title=title,
                                                 unknown="、".join(unknown),
                                                 known="、".join(f"{k} {v}" for k, v in known.items()))))
    return list(dict.fromkeys(v for v in value if v in known))


def _valid_value(name: str, value: str, months: list[str]) -> bool:
    if name in CODE_TABLES:
        return (value == "" and name in BLANK_LABELS) or load_code_tables().contains(CODE_TABLES[name], value)
    if name == "allowance":
        return value in ALLOWANCE_LABELS
    if name == "grade":
        return value.isdigit() and 1 <= int(value) <= 12
    if name == "month":
        return bool(_MONTH.fullmatch(value)) and value in months
    if name == "class":
        return 0 < len(value) <= 40
    return 0 < len(value) <= 20  # school and township codes: checked against the county when run


def label_of(dimension: str, value: str, names: Mapping[str, str] | None = None) -> str:
    """The Chinese label of a dimension's value (school and township names come from `names`)."""
    if dimension in ("school", "township"):
        return (names or {}).get(value, value)
    if value == "" and dimension in BLANK_LABELS:
        return BLANK_LABELS[dimension]
    if dimension in CODE_TABLES:
        return load_code_tables().label(CODE_TABLES[dimension], value) or value
    if dimension == "allowance":
        return ALLOWANCE_LABELS.get(value, value)
    if dimension == "grade":
        return f"{value} 年级"
    if dimension == "month":
        return f"{value[:4]}年{int(value[5:])}月"
    return value


# Running one ---------------------------------------------------------------------------------------


@dataclass
class Group:
    students: set[int] = field(default_factory=set)
    beneficiaries: set[int] = field(default_factory=set)
    subsidy_cents: int = 0
    allowance_cents: int = 0

    def measure(self, name: str) -> int | Decimal:
        if name == "students_total":
            return len(self.students)
        if name == "beneficiaries":
            return len(self.beneficiaries)
        return Decimal(self.subsidy_cents if name == "subsidy_total" else self.allowance_cents) / 100


@dataclass
class Table:
    """The result: one row per group (its dimension values, sorted) with the measures, and the totals."""

    definition: ReportDefinition
    unit: OrgUnit
    rows: list[tuple[tuple[str, ...], Group]]
    totals: Group
    names: dict[str, str]

    @property
    def title(self) -> str:
        return f"{self.unit.name} 自定义报表 {self.definition.period}"

    def headings(self) -> list[str]:
        return [DIMENSIONS[d] for d in self.definition.dimensions] + [MEASURES[m] for m in self.definition.measures]

    def labels(self, key: tuple[str, ...]) -> list[str]:
        return [label_of(d, v, self.names) for d, v in zip(self.definition.dimensions, key, strict=True)]

    def as_json(self) -> dict[str, Any]:
        definition = self.definition

        def measures(group: Group) -> dict[str, object]:
            values = {m: group.measure(m) for m in definition.measures}
            return {m: money(v) if isinstance(v, Decimal) else v for m, v in values.items()}

        first, last = report_months(definition.year, definition.month)
        return {
            "unit": self.unit.as_ref(), "title": self.title, "definition": definition.as_json(),
            "period": {"year": definition.year, "month": definition.month, "first_month": first, "last_month": last,
                       "label": definition.period},
            "columns": [{"key": d, "heading": DIMENSIONS[d], "kind": "dimension"} for d in definition.dimensions]
            + [{"key": m, "heading": MEASURES[m], "kind": "measure"} for m in definition.measures],
            "rows": [{**{d: v for d, v in zip(definition.dimensions, key, strict=True)},
                      **{f"{d}_label": label for d, label in zip(definition.dimensions, self.labels(key), strict=True)},
                      **measures(group)} for key, group in self.rows],
            "totals": measures(self.totals),
        }


# Per enrolment period, the dimensions that are the pupil's: the column of `reports.period_rows` (student id,
# from, to, grade, class, boarding, 一补, left-behind, migrant, sex, ethnicity) and how it reads as a value.
_ROW_VALUES: dict[str, tuple[int, Callable[[Any], str]]] = {
    "grade": (3, str), "class": (4, lambda v: v), "boarding": (5, lambda v: v),
    "allowance": (6, lambda v: "1" if v else "0"), "left_behind": (7, lambda v: v or ""),
    "migrant": (8, lambda v: "1" if v else "0"), "sex": (9, lambda v: v), "ethnicity": (10, lambda v: v),
}
# Dimensions that change from month to month at one school: they cut an enrolment period into segments.
_SEGMENT = ("month", "meal_model")
_PLACE = ("school", "township")


def _scope_schools(session: Session, actor: User) -> tuple[OrgUnit, list[OrgUnit], dict[int, OrgUnit]]:
    if not actor.grants:
        raise PermissionDenied(msg("您没有任何机构的权限"))
    county = county_of_user(session, actor)
    schools = list(session.scalars(select(OrgUnit).where(
        OrgUnit.path.like(county.path + "%"), OrgUnit.kind == OrgKind.school,
        scope_clause(actor, OrgUnit.path)).order_by(OrgUnit.code)))
    townships = {u.id: u for u in session.scalars(select(OrgUnit).where(
        OrgUnit.path.like(county.path + "%"), OrgUnit.kind == OrgKind.township))}
    return county, schools, townships


def places(session: Session, *, actor: User) -> tuple[list[OrgUnit], list[OrgUnit]]:
    """The schools a custom report of this caller covers, and their townships: the form's choices."""
    _, schools, townships = _scope_schools(session, actor)
    wanted = {s.parent_id for s in schools}
    return schools, sorted((t for t in townships.values() if t.id in wanted), key=lambda t: t.code)


def _check_places(session: Session, county: OrgUnit, definition: ReportDefinition) -> None:
    problems = []
    for name, kind in (("school", OrgKind.school), ("township", OrgKind.township)):
        wanted = definition.filters.get(name)
        if not wanted:
            continue
        known = set(session.scalars(select(OrgUnit.code).where(OrgUnit.code.in_(wanted), OrgUnit.kind == kind,
                                                                OrgUnit.path.like(county.path + "%"))))
        unknown = [c for c in wanted if c not in known]
        if unknown:
            problems.append(_problem(f"filters.{name}", msg("筛选条件 {dimension}：本县没有代码 {codes}",
                                                            dimension=msg(DIMENSIONS[name]), codes="、".join(unknown[:5]))))
    if problems:
        raise RuleViolation(msg("报表定义有误：{problems}", problems=join_messages(p["message"] for p in problems)),
                            details=problems)


def _segments(definition: ReportDefinition, months: list[str],
              models: list[str | None]) -> list[tuple[int, int, tuple[str, ...]]]:
    """The school's months cut where a segment dimension changes value: (first index, last index, values)."""
    month_filter, model_filter = definition.filters.get("month"), definition.filters.get("meal_model")
    dims = [d for d in _SEGMENT if d in definition.dimensions]
    segments: list[tuple[int, int, tuple[str, ...]]] = []
    for index, (month, model) in enumerate(zip(months, models, strict=True)):
        if (month_filter and month not in month_filter) or (model_filter and (model or "") not in model_filter):
            continue
        key = tuple(month if d == "month" else (model or "") for d in dims)
        if segments and segments[-1][1] == index - 1 and segments[-1][2] == key:
            segments[-1] = (segments[-1][0], index, key)
        else:
            segments.append((index, index, key))
    return segments


def run(session: Session, *, actor: User, definition: ReportDefinition) -> Table:
    """The definition over the caller's scope: a registrar's own school, a township officer's township, …"""
    county, schools, townships = _scope_schools(session, actor)
    _check_places(session, county, definition)
    months = definition.months
    first, last, n = months[0], months[-1], len(months)
    position = {m: i for i, m in enumerate(months)}
    filters = definition.filters
    schools = [s for s in schools if "school" not in filters or s.code in filters["school"]]
    schools = [s for s in schools if "township" not in filters
               or (s.parent_id in townships and townships[s.parent_id].code in filters["township"])]
    names = {s.code: s.name for s in schools} | {t.code: t.name for t in townships.values()}
    ids = [s.id for s in schools]
    book, models = rate_book(session, county), meal_models(session, ids)
    rows = period_rows(session, ids, first, last, extra=(Student.sex, Student.ethnicity))
    # The group key is (place values, pupil values, segment values); reordered to the definition's at the end.
    place_dims = [d for d in _PLACE if d in definition.dimensions]
    row_dims = [d for d in _ROW_VALUES if d in definition.dimensions]
    segment_dims = [d for d in _SEGMENT if d in definition.dimensions]
    columns = [_ROW_VALUES[d] for d in row_dims]
    row_filters = [(*_ROW_VALUES[d], set(filters[d])) for d in _ROW_VALUES if d in filters]
    # Periods alike in the pupil's dimensions, months and kind of pupil are counted together: Python works per
    # kind (a few thousand in a county), the sets of pupils are built by C loops.
    kind_of = itemgetter(*(i for i, _ in columns), 1, 2, 3, 5, 6)
    groups: dict[tuple[str, ...], Group] = {}
    prefix: dict[tuple, tuple[list[int], list[int]]] = {}
    for school in schools:
        by_month = [models.at(school.id, m) for m in months]
        served = tuple(m is not None for m in by_month)
        served_before = [0]
        for serves in served:
            served_before.append(served_before[-1] + serves)
        segments = _segments(definition, months, by_month)
        if not segments:
            continue
        # Most reports cut nothing by month: one segment of the whole period, no overlap to compute.
        whole = segments[0][2] if len(segments) == 1 and segments[0][:2] == (0, n - 1) else None
        township = townships.get(school.parent_id)
        place = tuple(school.code if d == "school" else (township.code if township else "") for d in place_dims)
        school_rows = rows[school.id]
        if row_filters:
            school_rows = [r for r in school_rows if all(read(r[i]) in allowed for i, read, allowed in row_filters)]
        kinds: dict[tuple, list[tuple]] = {}
        for row, kind in zip(school_rows, map(kind_of, school_rows), strict=True):
            kinds.setdefault(kind, []).append(row)
        for kind, periods in kinds.items():
            *values, from_month, to_month, grade, boarding_mode, allowance = kind
            # period_rows keeps non-empty periods overlapping the range: months outside it are its edges.
            start, end = position.get(from_month, 0), position.get(to_month, n - 1)
            _, (meal, allowance_sums) = kind_sums(prefix, book, months, served, grade, boarding_mode, allowance)
            base = place + tuple(read(v) for (_, read), v in zip(columns, values, strict=True))
            ids, count = set(map(itemgetter(0), periods)), len(periods)
            for lo, hi, segment in [(0, n - 1, whole)] if whole is not None else segments:
                a, b = max(start, lo), min(end, hi)
                if a > b:
                    continue
                key = base + segment if segment else base
                group = groups.get(key)
                if group is None:
                    group = groups[key] = Group()
                group.students |= ids
                if served_before[b + 1] > served_before[a]:
                    group.beneficiaries |= ids
                group.subsidy_cents += count * (meal[b + 1] - meal[a])
                group.allowance_cents += count * (allowance_sums[b + 1] - allowance_sums[a])
    order = place_dims + row_dims + segment_dims
    at = [order.index(d) for d in definition.dimensions]
    result = sorted(((tuple(key[i] for i in at), group) for key, group in groups.items()),
                    key=lambda item: _sort_key(definition.dimensions, item[0]))
    totals = Group()
    for _, group in result:
        totals.students |= group.students
        totals.beneficiaries |= group.beneficiaries
        totals.subsidy_cents += group.subsidy_cents
        totals.allowance_cents += group.allowance_cents
    # The title names the caller's scope: their school or township when all their grants are at one unit.
    units = {g.org_unit.id: g.org_unit for g in actor.grants}
    unit = next(iter(units.values())) if len(units) == 1 else county
    return Table(definition, unit, result, totals, names)


def _sort_key(dimensions: Iterable[str], key: tuple[str, ...]) -> tuple:
    # Grades as numbers (9 before 10); a blank value after the coded ones.
    return tuple((0, int(v), "") if d == "grade" else (1 if v == "" else 0, 0, v) for d, v in zip(dimensions, key,
                                                                                               strict=True))


# Saved definitions ---------------------------------------------------------------------------------


class CustomReport(Base):
    """A saved definition; `shared` ones are offered to every user of the county (each runs it on their scope)."""

    __tablename__ = "custom_report"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    county_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    definition: Mapped[dict[str, Any]] = mapped_column(JSONType)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def as_json(self, actor: User | None = None) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "shared": self.shared, "owner_id": self.owner_id,
                "mine": actor is not None and actor.id == self.owner_id, "definition": self.definition,
                "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat()}


MAX_SAVED = 100


def _valid_name(name: object) -> str:
    text = str(name or "").strip()
    if not text or len(text) > 100:
        raise RuleViolation(msg("报表名称：必填，最多 100 字"), details=[_problem("name", msg("报表名称：必填，最多 100 字"))])
    return text


def list_definitions(session: Session, *, actor: User) -> list[CustomReport]:
    """The caller's own definitions and those shared in their county, by name."""
    county = county_of_user(session, actor)
    return list(session.scalars(select(CustomReport).where(
        CustomReport.county_id == county.id,
        or_(CustomReport.owner_id == actor.id, CustomReport.shared.is_(True)))
        .order_by(CustomReport.name, CustomReport.id)))


def get_definition(session: Session, *, actor: User, report_id: int) -> CustomReport:
    saved = session.get(CustomReport, report_id)
    if saved is None or not (saved.owner_id == actor.id or (
            saved.shared and actor.grants and saved.county_id == county_of_user(session, actor).id)):
        raise NotFound(msg("找不到自定义报表 {report_id}", report_id=report_id))
    return saved


def create_definition(session: Session, *, actor: User, name: object, definition: object,
                      shared: bool = False) -> CustomReport:
    parsed = ReportDefinition.parse(definition)
    text = _valid_name(name)
    county = county_of_user(session, actor)
    owned = session.scalars(select(CustomReport.id).where(CustomReport.owner_id == actor.id)).all()
    if len(owned) >= MAX_SAVED:
        raise RuleViolation(msg("每人最多保存 {count} 个自定义报表，请先删除不用的", count=MAX_SAVED),
                            details=[_problem("name", msg("最多 {count} 个", count=MAX_SAVED))])
    saved = CustomReport(owner_id=actor.id, county_id=county.id, name=text, definition=parsed.as_json(),
                         shared=bool(shared))
    session.add(saved)
    session.flush()
    record(session, actor=actor, action="custom_report.create", object_type="custom_report", object_id=saved.id,
           org_unit_id=county.id, after={"name": text, "shared": saved.shared, "definition": saved.definition})
    return saved


def _owned(session: Session, actor: User, report_id: int) -> CustomReport:
    saved = get_definition(session, actor=actor, report_id=report_id)
    if saved.owner_id != actor.id:
        raise PermissionDenied(msg("只有创建者可以修改或删除这个共享报表"))
    return saved


def update_definition(session: Session, *, actor: User, report_id: int, name: object = None,
                      definition: object = None, shared: bool | None = None) -> CustomReport:
    """Changes what is given (None leaves a field as it is); the owner only."""
    saved = _owned(session, actor, report_id)
    before = {"name": saved.name, "shared": saved.shared, "definition": saved.definition}
    if definition is not None:
        saved.definition = ReportDefinition.parse(definition).as_json()
    if name is not None:
        saved.name = _valid_name(name)
    if shared is not None:
        saved.shared = bool(shared)
    saved.updated_at = utcnow()
    session.flush()
    record(session, actor=actor, action="custom_report.update", object_type="custom_report", object_id=saved.id,
           org_unit_id=saved.county_id, before=before,
           after={"name": saved.name, "shared": saved.shared, "definition": saved.definition})
    return saved


def delete_definition(session: Session, *, actor: User, report_id: int) -> None:
    saved = _owned(session, actor, report_id)
    record(session, actor=actor, action="custom_report.delete", object_type="custom_report", object_id=saved.id,
           org_unit_id=saved.county_id, before={"name": saved.name, "shared": saved.shared,
                                                "definition": saved.definition})
    session.delete(saved)
    session.flush()


def run_saved(session: Session, *, actor: User, report_id: int, year: int | None = None,
              month: int | None = None) -> tuple[CustomReport, Table]:
    """A saved definition run by the caller, optionally for another period."""
    saved = get_definition(session, actor=actor, report_id=report_id)
    if month is not None and year is None:
        raise RuleViolation(msg("月份：请同时给出年份"), details=[_problem("year", msg("月份：请同时给出年份"))])
    data = dict(saved.definition)
    if year is not None:
        data["year"], data["month"] = year, month
    return saved, run(session, actor=actor, definition=ReportDefinition.parse(data))
