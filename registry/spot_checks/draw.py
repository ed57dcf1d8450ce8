"""A spot check's parameters, its population, and the seeded draw (Art. 25 随机抽查, Art. 26 重点).

Rules chosen here:
- Scope: the auditor's county. Schools are named by the auditor, or `school_count` of them are drawn
  among the county's schools that have at least one candidate; `meal_models` (供餐模式) narrows the
  schools either way (a named school outside it is refused, not silently dropped).
- Candidates of a school: the students whose enrolment period at that school covers the check's
  month (`EnrolmentPeriod.covers`: the subsidised children of that month, so a child who has left
  since is still checked), in at least one chosen focus: 受益学生 (every one of them), 寄宿生
  (就读方式 2 住校), 享受一补. The focuses read the record as it stands at the draw, and the row of
  each sampled student keeps a copy of it.
- Per school, `students_per_school` are drawn; a school with fewer candidates gives all of them, and
  the check's notes say so. A named school with no candidate at all is refused.
- The seed is the auditor's (up to 18 digits) or a fresh random one; `registry.rules.sampling`
  draws from it, over schools in code order and students in id order.
"""

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from registry.access import holds
from registry.audit import record
from registry.code_tables import load_code_tables
from registry.errors import InvalidTransition, PermissionDenied, RuleViolation, join_messages, msg
from registry.forms import check_form
from registry.org_units import OrgKind, OrgUnit
from registry.rules import sampling
from registry.schools import School
from registry.spot_checks.models import FOCUS_LABELS, Focus, SpotCheck, SpotCheckSchool, SpotCheckStudent
from registry.students import EnrolmentPeriod, Student
from registry.users import Role, User

MAX_SCHOOLS = 500
MAX_PER_SCHOOL = 200
BOARDER = "2"  # 就读方式 2 住校
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
_SEED = re.compile(r"\d{1,18}")

START_FORM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"title": "抽查名称", "type": "string", "maxLength": 200},
        "county_code": {"title": "县", "type": "string", "maxLength": 20},
        "month": {"title": "核查月份", "type": "string", "maxLength": 7},
        "school_codes": {"title": "抽查学校", "type": "array", "maxItems": MAX_SCHOOLS,
                         "items": {"type": "string", "maxLength": 20}},
        "school_count": {"title": "随机抽取学校数", "type": "integer", "minimum": 1, "maximum": MAX_SCHOOLS},
        "students_per_school": {"title": "每校抽查学生数", "type": "integer", "minimum": 1, "maximum": MAX_PER_SCHOOL},
        "focus": {"title": "抽查重点", "type": "array", "maxItems": 10, "items": {"type": "string", "maxLength": 40}},
        "meal_models": {"title": "供餐模式", "type": "array", "maxItems": 10, "items": {"type": "string", "maxLength": 2}},
        "seed": {"title": "随机种子", "type": ["string", "integer"]},
    },
    "required": ["students_per_school", "focus"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class Params:
    """What is drawn, as the auditor asked; `school_codes` and `school_count` are exclusive."""

    students_per_school: int
    focus: tuple[Focus, ...]
    school_codes: tuple[str, ...] | None = None
    school_count: int | None = None
    meal_models: tuple[str, ...] = ()

    def as_record(self) -> dict[str, Any]:
        return {"school_codes": list(self.school_codes) if self.school_codes is not None else None,
                "school_count": self.school_count, "students_per_school": self.students_per_school,
                "focus": [str(f) for f in self.focus], "meal_models": list(self.meal_models)}

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> "Params":
        codes = data.get("school_codes")
        return cls(students_per_school=int(data["students_per_school"]), focus=tuple(Focus(f) for f in data["focus"]),
                   school_codes=tuple(codes) if codes is not None else None, school_count=data.get("school_count"),
                   meal_models=tuple(data.get("meal_models") or ()))


@dataclass(frozen=True)
class StartRequest:
    county: OrgUnit
    title: str
    month: str
    seed: int
    params: Params


@dataclass(frozen=True)
class Drawn:
    sample: sampling.Sample
    schools: dict[str, OrgUnit]  # the sampled schools by code
    candidates: dict[str, dict[int, tuple[str, ...]]]  # code → student id → the focuses matched
    notes: list[str]


def _problem(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def auditor_county(actor: User, code: str | None = None) -> OrgUnit:
    """The county where `actor` is the auditor: the one they name, or their only one."""
    counties = {g.org_unit.code: g.org_unit for g in actor.grants
                if g.role == Role.auditor and g.org_unit.kind == OrgKind.county}
    if not counties:
        raise PermissionDenied(msg("只有县监督检查员可以发起抽查"))
    if code:
        if code not in counties:
            raise PermissionDenied(msg("您不是 {code} 的监督检查员", code=code))
        return counties[code]
    if len(counties) > 1:
        raise RuleViolation(msg("县：您在多个县担任监督检查员，请指定县"), details=[_problem("county_code", msg("请指定县"))])
    return next(iter(counties.values()))


def parse_start(session: Session, *, actor: User, data: dict[str, Any], today: date) -> StartRequest:
    """The start data checked: every problem at once, each naming its field (RuleViolation)."""
    county = auditor_county(actor, data.get("county_code") if isinstance(data.get("county_code"), str) else None)
    problems = check_form(START_FORM, data)
    if problems:
        raise RuleViolation(msg("抽查参数有误：{problems}", problems=join_messages(p["message"] for p in problems)),
                            details=problems)

    month = (data.get("month") or "").strip() or f"{today:%Y-%m}"
    # `today` is the UTC date; the county's calendar (UTC+8) may already be a day, and so a month, ahead.
    if not _MONTH.fullmatch(month):
        problems.append(_problem("month", msg("核查月份：格式应为 YYYY-MM")))
    elif month > f"{today + timedelta(days=1):%Y-%m}":
        problems.append(_problem("month", msg("核查月份：不能晚于本月")))

    focus: list[Focus] = []
    for value in data["focus"]:
        if value not in Focus.__members__:
            problems.append(_problem("focus", msg("抽查重点：未知的重点 {value!r}，应为 受益学生、寄宿生 或 享受一补学生", value=value)))
        elif Focus(value) not in focus:
            focus.append(Focus(value))
    if not data["focus"]:
        problems.append(_problem("focus", msg("抽查重点：至少选择一项")))

    meal_models = list(dict.fromkeys(data.get("meal_models") or []))
    unknown = [m for m in meal_models if not load_code_tables().contains("meal_model", m)]
    if unknown:
        problems.append(_problem("meal_models", msg("供餐模式：未知的代码 {unknown}", unknown='、'.join(unknown))))

    codes = list(dict.fromkeys(c.strip() for c in (data.get("school_codes") or []) if c.strip()))
    count = data.get("school_count")
    if codes and count is not None:
        problems.append(_problem("school_codes", msg("抽查学校：指定学校与随机抽取学校数只能选一种")))
    elif not codes and count is None:
        problems.append(_problem("school_codes", msg("抽查学校：请选择学校，或填写随机抽取学校数（至少 1 所）")))
    if codes:
        problems += _named_school_problems(session, county, codes, meal_models)

    seed = _seed(data.get("seed"), problems)
    if problems:
        raise RuleViolation(msg("抽查参数有误：{problems}", problems=join_messages(p["message"] for p in problems)),
                            details=problems)
    title = (data.get("title") or "").strip() or f"{county.name}{month}营养改善计划实名制抽查"
    params = Params(students_per_school=data["students_per_school"], focus=tuple(focus),
                    school_codes=tuple(sorted(codes)) if codes else None, school_count=count,
                    meal_models=tuple(meal_models))
    return StartRequest(county=county, title=title, month=month, seed=seed, params=params)


def _seed(value: Any, problems: list[dict[str, str]]) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        return secrets.randbelow(10**12)  # 12 digits: short enough to read out and type in again
    text = str(value).strip() if not isinstance(value, bool) else ""
    if not _SEED.fullmatch(text):
        problems.append(_problem("seed", msg("随机种子：应为 1 至 18 位数字（不填则由系统生成）")))
        return 0
    return int(text)


def _named_school_problems(session: Session, county: OrgUnit, codes: Sequence[str],
                           meal_models: Sequence[str]) -> list[dict[str, str]]:
    found = {school.org_unit.code: school for school in session.scalars(
        select(School).join(School.org_unit).where(OrgUnit.code.in_(codes), OrgUnit.path.startswith(county.path)))}
    problems = []
    missing = [c for c in codes if c not in found]
    if missing:
        problems.append(_problem("school_codes", msg("抽查学校：{missing} 不是{name}的学校",
                                                     missing='、'.join(missing), name=county.name)))
    tables = load_code_tables()
    outside = [s for s in found.values() if meal_models and s.meal_model not in meal_models]
    for school in outside:
        model = tables.label("meal_model", school.meal_model or "") or "未登记"
        problems.append(_problem("school_codes", msg("抽查学校：{name}的供餐模式为{model}，不在所选供餐模式内",
                                                     name=school.org_unit.name, model=model)))
    return problems


def _schools_in_scope(session: Session, county: OrgUnit, params: Params) -> list[OrgUnit]:
    query = (select(OrgUnit).join(School, School.org_unit_id == OrgUnit.id)
             .where(OrgUnit.path.startswith(county.path), OrgUnit.kind == OrgKind.school))
    if params.school_codes is not None:
        query = query.where(OrgUnit.code.in_(params.school_codes))
    if params.meal_models:
        query = query.where(School.meal_model.in_(params.meal_models))
    return list(session.scalars(query.order_by(OrgUnit.code)))


def _matches(focus: Focus, boarding_mode: str, boarding_allowance: bool) -> bool:
    if focus == Focus.boarders:
        return boarding_mode == BOARDER
    if focus == Focus.boarding_allowance:
        return bool(boarding_allowance)
    return True


def candidates(session: Session, *, schools: Sequence[OrgUnit], month: str,
               focus: Sequence[Focus]) -> dict[str, dict[int, tuple[str, ...]]]:
    """School code → the students subsidised there in `month` who are in a chosen focus, with those focuses."""
    by_id = {s.id: s.code for s in schools}
    out: dict[str, dict[int, tuple[str, ...]]] = {code: {} for code in by_id.values()}
    if not by_id:
        return out
    rows = session.execute(
        select(EnrolmentPeriod.school_id, Student.id, EnrolmentPeriod.boarding_mode, EnrolmentPeriod.boarding_allowance)
        .join(Student, Student.id == EnrolmentPeriod.student_id)
        .where(EnrolmentPeriod.school_id.in_(list(by_id)), EnrolmentPeriod.from_month <= month,
               or_(EnrolmentPeriod.to_month.is_(None), EnrolmentPeriod.to_month >= month)))
    for school_id, student_id, boarding_mode, allowance in rows:
        matched = tuple(str(f) for f in focus if _matches(f, boarding_mode, allowance))
        if matched:
            out[by_id[school_id]][student_id] = matched
    return out


def draw_sample(session: Session, *, county: OrgUnit, month: str, seed: int, params: Params) -> Drawn:
    """The sample `seed` gives over the county's population of `month` as it is now: the same
    arguments over the same records give the same sample (the reproducible draw)."""
    schools = _schools_in_scope(session, county, params)
    if not schools:
        field = "meal_models" if params.meal_models else "school_codes"
        raise RuleViolation(msg("抽查学校：{name}没有符合条件的学校", name=county.name), details=[_problem(field, msg("没有符合条件的学校"))])
    found = candidates(session, schools=schools, month=month, focus=params.focus)
    population = [sampling.SchoolPopulation(code=s.code, student_ids=tuple(sorted(found[s.code]))) for s in schools]
    focus_text = "、".join(FOCUS_LABELS[f] for f in params.focus)
    notes: list[str] = []
    if params.school_count is None:
        empty = [s for s in schools if not found[s.code]]
        if empty:
            names = "、".join(f"{s.name}（{s.code}）" for s in empty)
            raise RuleViolation(msg("抽查学校：{names}在 {month} 没有{focus_text}，无可抽查的学生",
                                    names=names, month=month, focus_text=focus_text),
                                details=[_problem("school_codes", msg("{names}没有符合抽查重点的学生", names=names))])
    else:
        empty = [s for s in schools if not found[s.code]]
        if len(empty) == len(schools):
            raise RuleViolation(msg("抽查重点：所选范围内的学校在 {month} 都没有{focus_text}", month=month, focus_text=focus_text),
                                details=[_problem("focus", msg("没有符合抽查重点的学生"))])
        if empty:
            notes.append(f"{len(empty)} 所学校在 {month} 没有{focus_text}，未参与抽取："
                         + "、".join(s.name for s in empty[:10]) + ("等" if len(empty) > 10 else ""))
        available = len(schools) - len(empty)
        if params.school_count > available:
            notes.append(f"随机抽取学校数 {params.school_count} 多于符合条件的学校数 {available}：{available} 所学校全部入选")
    sample = sampling.draw(seed=seed, population=population, per_school=params.students_per_school,
                           school_count=params.school_count)
    by_code = {s.code: s for s in schools}
    for part in sample.schools:
        if part.eligible < params.students_per_school:
            notes.append(f"{by_code[part.code].name}：符合条件的学生只有 {part.eligible} 人，少于每校抽查人数 "
                         f"{params.students_per_school}，全部抽取")
    chosen = {p.code for p in sample.schools}
    return Drawn(sample=sample, schools={c: by_code[c] for c in sorted(chosen)},
                 candidates={c: found[c] for c in sorted(chosen)}, notes=notes)


def redraw(check: SpotCheck) -> sampling.Sample:
    """The draw again from the check's own record: it equals the recorded sample unless the record was altered."""
    params = Params.from_record(check.params)
    return sampling.redraw(seed=check.seed, eligible_schools=check.eligible_schools,
                           candidates={p.school.code: p.candidate_ids for p in check.parts},
                           per_school=params.students_per_school, school_count=params.school_count)


def recorded_sample(check: SpotCheck) -> dict[str, tuple[int, ...]]:
    return {p.school.code: tuple(sorted(s.student_id for s in p.students)) for p in check.parts}


def record_draw(session: Session, *, check_id: int, actor: User | None, instance_id: int,
                now: datetime) -> dict[str, Any]:
    """The service task 抽取样本: draw, and keep the sample, the population it came from and the seed."""
    check = session.get(SpotCheck, check_id, with_for_update={"of": SpotCheck})
    if check is None or check.parts:
        raise InvalidTransition(msg("抽查样本已抽取"))
    if actor is not None and not holds(actor, Role.auditor, check.county):
        raise PermissionDenied(msg("只有县监督检查员可以抽取样本"))
    drawn = draw_sample(session, county=check.county, month=check.month, seed=check.seed,
                        params=Params.from_record(check.params))
    students = {s.id: s for s in session.scalars(select(Student).where(Student.id.in_(
        [i for part in drawn.sample.schools for i in part.student_ids])))}
    for sampled in drawn.sample.schools:
        found = drawn.candidates[sampled.code]
        part = SpotCheckSchool(check=check, school=drawn.schools[sampled.code], eligible=sampled.eligible,
                               candidate_ids=sorted(found))
        session.add(part)
        for student_id in sampled.student_ids:
            student = students[student_id]
            part.students.append(SpotCheckStudent(student_id=student_id, matched=list(found[student_id]), recorded={
                "name": student.name, "grade": student.grade, "class_name": student.class_name,
                "boarding_mode": student.boarding_mode, "boarding_allowance": student.boarding_allowance}))
    check.eligible_schools = list(drawn.sample.eligible_schools)
    check.notes = drawn.notes
    check.instance_id = instance_id
    session.flush()
    after = {"seed": str(check.seed), "month": check.month, "notes": drawn.notes,
             "sample": {s.code: list(s.student_ids) for s in drawn.sample.schools}}
    record(session, actor=actor, action="spot_check.draw", object_type="spot_check", object_id=check.id,
           org_unit_id=check.county_id, instance_id=instance_id, after=after)
    return {"seed": str(check.seed), "schools": len(drawn.sample.schools),
            "students": sum(len(s.student_ids) for s in drawn.sample.schools)}
