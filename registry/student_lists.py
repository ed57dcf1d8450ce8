"""Lists of students: search and export."""

import re
import unicodedata
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session, selectinload

from registry.access import mask_phone, scope_clause
from registry.audit import record
from registry.errors import RuleViolation, msg
from registry.org_units import OrgKind, OrgUnit
from registry.rules.id_number import normalise_id_number, upgrade_15
from registry.student_files import build_export
from registry.students import Student
from registry.users import User

EXPORT_LIMIT = 100_000
_GLOB_SPECIAL = re.compile(r"([*?\[])")
_LIKE_SPECIAL = re.compile(r"([/%_])")


def search(session: Session, *, actor: User, q: str | None = None, status: str | None = None,
           school_code: str | None = None, grade: int | None = None, class_name: str | None = None,
           limit: int = 50, offset: int = 0) -> tuple[list[Student], int]:
    """Students in the caller's scope, by school, grade, class, status and `q`, in id order.

    `q` with a digit and nothing but ASCII (full-width folded) is a number: it matches 身份证件号 or
    学籍号 exactly, never a name. The shape cannot tell the two apart, since 学籍主号 is the ID
    number (or a guardian's), so both columns are tried, each through its own index; a 15-digit ID
    also finds its 18-digit form. Anything else is a name. County-wide (or township-wide) a name
    matches from its first character (杨颖 finds 杨颖慧, 颖 finds nothing): that reads one index range
    per school, where matching inside names read every student of the county, twice (count and
    page: p95 57 ms, max 810 ms at 4M students on PostgreSQL, bench/RESULTS.md). Bounded to one
    school (`school_code`, or a caller whose scope is a single school) a name matches anywhere
    (小明 finds 张小明): one school is at most a few thousand rows, reached through the school_id index.
    """
    ids = _matching_ids(session, actor=actor, q=q, status=status, school_code=school_code, grade=grade,
                        class_name=class_name)
    total = _count(session, ids)
    return (_page(session, ids, limit=limit, offset=offset) if total > offset else []), total


def export(session: Session, *, actor: User, limit: int = EXPORT_LIMIT, **filters: Any) -> tuple[bytes, int]:
    """Any list the caller may see, as XLSX, with ID numbers, 学籍号 and guardian phones masked.

    Art. 24: student data leaves the system only with county approval. An export needs none, so it
    stays within the caller's scope and is always masked, even for roles that read full IDs on
    screen; the full data leaves only through an approved data release (registry/data_releases.py).
    """
    ids = _matching_ids(session, actor=actor, **filters)
    total = _count(session, ids)
    if total > limit:
        raise RuleViolation(msg("一次最多导出 {limit} 人，请缩小查询范围", limit=limit),
                            details=[{"field": "q", "message": msg("结果过多")}])
    rows = _page(session, ids, limit=limit, offset=0)
    data = build_export([_exported(s) for s in rows], mask_id=True)
    # Art. 24: every copy of student data that leaves the screen is on record.
    record(session, actor=actor, action="student.export", object_type="student_list", object_id=None,
           after={"filters": {k: v for k, v in filters.items() if v is not None}, "rows": total, "masked": True})
    return data, total


def _exported(student: Student) -> dict[str, Any]:
    fields = student.fields()
    fields["guardian_phone"] = mask_phone(fields["guardian_phone"])  # build_export masks the ID columns itself
    return fields


def _matching_ids(session: Session, *, actor: User, q: str | None = None, status: str | None = None,
                  school_code: str | None = None, grade: int | None = None,
                  class_name: str | None = None) -> Select[tuple[int]]:
    query = select(Student.id).join(OrgUnit, Student.school_id == OrgUnit.id).where(scope_clause(actor, OrgUnit.path))
    if school_code:
        query = query.where(OrgUnit.code == school_code)
    if grade is not None:
        query = query.where(Student.grade == grade)
    if class_name:
        query = query.where(Student.class_name == class_name)
    if status:
        query = query.where(Student.status == status)
    term = (q or "").strip()
    if term:
        numbers = _number_forms(term)
        if numbers is not None:
            query = query.where(or_(Student.id_number.in_(numbers), Student.student_number.in_(numbers)))
        else:
            one_school = bool(school_code) or _scope_is_one_school(actor)
            query = query.where(_name_match(term, anywhere=one_school,
                                            sqlite=session.get_bind().dialect.name == "sqlite"))
    return query


def _count(session: Session, ids: Select[tuple[int]]) -> int:
    return session.scalar(select(func.count()).select_from(ids.subquery())) or 0


def _page(session: Session, ids: Select[tuple[int]], *, limit: int, offset: int) -> list[Student]:
    # The page of ids first, then its rows. `id + 0` hides the primary key's order from the planner,
    # which otherwise walks pk_student hoping to meet 50 in-scope rows early: at 4M on PostgreSQL a
    # county's first page took 360-430 ms instead of 21-30, and on SQLite a name search inside one
    # school scanned the whole table (15 ms instead of under 1). bench/RESULTS.md has the plans.
    page = ids.order_by(Student.id + 0).limit(limit).offset(offset).scalar_subquery()
    return list(session.scalars(select(Student).where(Student.id.in_(page))
                                .options(selectinload(Student.periods)).order_by(Student.id)))


def _number_forms(term: str) -> list[str] | None:
    """The forms a number may be stored in, or None when `term` is not a number."""
    number = normalise_id_number(unicodedata.normalize("NFKC", term))  # also drops the spaces
    if not (number.isascii() and any(c.isdigit() for c in number)):
        return None
    forms = {number, number.upper()}
    if len(number) == 15 and number.isdigit():
        forms.add(upgrade_15(number))  # a resident ID is stored upgraded to 18 digits
    return sorted(forms)


def _scope_is_one_school(actor: User) -> bool:
    units = {g.org_unit.id: g.org_unit for g in actor.grants}
    return len(units) == 1 and next(iter(units.values())).kind == OrgKind.school


def _name_match(term: str, *, anywhere: bool, sqlite: bool) -> ColumnElement[bool]:
    # The whole pattern is one bound value: SQLite uses no index for `? || '%'`. A prefix is an index
    # range per school (PostgreSQL: varchar_pattern_ops); `anywhere` is a filter, for one school only.
    if sqlite:
        # GLOB, not LIKE: SQLite's LIKE ignores ASCII case, so only an index declared COLLATE NOCASE
        # could serve it; GLOB is case-sensitive, as LIKE is on PostgreSQL, and uses the plain index.
        literal = _GLOB_SPECIAL.sub(r"[\1]", term)
        return Student.name.op("GLOB", is_comparison=True)(("*" if anywhere else "") + literal + "*")
    literal = _LIKE_SPECIAL.sub(r"/\1", term)
    return Student.name.like(("%" if anywhere else "") + literal + "%", escape="/")
