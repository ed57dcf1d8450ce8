"""School records (Art. 11): one per school org unit, editable by the county, every change audited."""

import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Numeric, String, func, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from registry.access import holds, scope_clause, sees
from registry.audit import AuditEntry, record
from registry.code_tables import load_code_tables
from registry.db import Base
from registry.errors import NotFound, PermissionDenied, RuleViolation, join_messages, msg
from registry.org_units import OrgKind, OrgUnit, find_org_unit
from registry.rules.school import EDITABLE_FIELDS, SCHOOL_FIELDS, check_school
from registry.settings import local_zone
from registry.users import Role, User


class School(Base):
    __tablename__ = "school"

    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), primary_key=True)
    sponsor_type: Mapped[str | None] = mapped_column(String(3))
    urban_rural: Mapped[str | None] = mapped_column(String(3))
    school_type: Mapped[str | None] = mapped_column(String(3))
    subsidy_rate: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    meal_model: Mapped[str | None] = mapped_column(String(2))
    address: Mapped[str | None] = mapped_column(String(200))
    postcode: Mapped[str | None] = mapped_column(String(6))
    phone: Mapped[str | None] = mapped_column(String(30))
    fax: Mapped[str | None] = mapped_column(String(30))
    email: Mapped[str | None] = mapped_column(String(100))
    website: Mapped[str | None] = mapped_column(String(200))
    principal_name: Mapped[str | None] = mapped_column(String(50))
    principal_phone: Mapped[str | None] = mapped_column(String(30))
    principal_mobile: Mapped[str | None] = mapped_column(String(11))

    org_unit: Mapped[OrgUnit] = relationship(lazy="joined", innerjoin=True)

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {f: getattr(self, f) for f in EDITABLE_FIELDS if f != "name"}
        out["code"] = self.org_unit.code
        out["name"] = self.org_unit.name
        out["subsidy_rate"] = str(self.subsidy_rate) if self.subsidy_rate is not None else None
        return {f: out[f] for f in SCHOOL_FIELDS}


class SchoolMealModel(Base):
    """A school's meal model from a month on (None: no meals provided); without rows, the school's current one."""

    __tablename__ = "school_meal_model"

    school_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), primary_key=True)
    effective_month: Mapped[str] = mapped_column(String(7), primary_key=True)
    meal_model: Mapped[str | None] = mapped_column(String(2))


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        value = value.strip() if isinstance(value, str) else value
        out[key] = None if value == "" else value
    if out.get("subsidy_rate") is not None:
        out["subsidy_rate"] = Decimal(str(out["subsidy_rate"]))
    return out


def _raise_on(findings: list[Any]) -> None:
    if findings:
        raise RuleViolation(msg("学校信息有误：{problems}", problems=join_messages(f.message for f in findings)),
                            details=[{"field": f.field, "code": f.code, "message": f.message} for f in findings])


def create_school(session: Session, *, unit: OrgUnit, data: dict[str, Any], by: User | None = None) -> School:
    """The record of a school org unit; `data` holds its Art. 11 fields other than code and name."""
    if unit.kind != OrgKind.school:
        raise RuleViolation(msg("{name} 不是学校", name=unit.name), details=[{"field": "code", "message": msg("不是学校")}])
    _raise_on(check_school({"code": unit.code, "name": unit.name, **data}, codes=load_code_tables()))
    school = School(org_unit_id=unit.id, org_unit=unit, **{k: v for k, v in _clean(data).items()
                                                          if k not in ("code", "name")})
    session.add(school)
    session.flush()
    record(session, actor=by, action="school.create", object_type="school", object_id=unit.code,
           org_unit_id=unit.id, after=school.fields())
    return school


def get_school(session: Session, *, actor: User, code: str) -> School:
    """Outside the caller's scope a school does not exist for them."""
    unit = find_org_unit(session, code=code)
    school = session.get(School, unit.id) if unit is not None else None
    if school is None or not sees(actor, school.org_unit):
        raise NotFound(msg("找不到学校 {code}", code=code))
    return school


def list_schools(session: Session, *, actor: User, q: str | None = None, limit: int = 100,
                 offset: int = 0) -> tuple[list[School], int]:
    query = select(School).join(School.org_unit).where(scope_clause(actor, OrgUnit.path))
    if q:
        term = q.strip()
        query = query.where(or_(OrgUnit.name.contains(term, autoescape=True), OrgUnit.code == term))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(OrgUnit.code).limit(limit).offset(offset)).all()
    return list(rows), total


def update_school(session: Session, *, actor: User, code: str, changes: dict[str, Any],
                  reason: str | None = None, meal_model_from: str | None = None) -> School:
    """Art. 11 fields changed by the county's system administrator, before and after recorded.

    A new meal model holds from `meal_model_from` (YYYY-MM; default this month) on: the subsidy
    of the months before is computed with the model they had (registry/subsidy.py)."""
    school = get_school(session, actor=actor, code=code)
    if not holds(actor, Role.county_admin, school.org_unit):
        raise PermissionDenied(msg("只有县教育局系统管理员可以修改学校信息"))
    if "code" in changes:
        raise RuleViolation(msg("学校代码不能修改"), details=[{"field": "code", "message": msg("学校代码不能修改")}])
    _raise_on(check_school(changes, codes=load_code_tables()))
    clean = _clean(changes)
    before = school.fields()
    for key, value in clean.items():
        if key == "name":
            if not value:
                _raise_on(check_school({"name": ""}, codes=load_code_tables()))
            school.org_unit.name = value
        else:
            if key == "meal_model" and value != school.meal_model:
                # The months before keep the model they had: the subsidy of past months must not move.
                month = meal_model_from or f"{datetime.now(local_zone()):%Y-%m}"
                if not re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", month):
                    raise RuleViolation(msg("供餐模式生效月份应为 YYYY-MM"),
                                        details=[{"field": "meal_model_from", "message": msg("应为 YYYY-MM")}])
                record_meal_model(session, school=school.org_unit, old=school.meal_model, new=value, month=month)
            setattr(school, key, value)
    session.flush()
    after = school.fields()
    changed = {k: after[k] for k in after if after[k] != before[k]}
    if changed:
        record(session, actor=actor, action="school.update", object_type="school", object_id=code,
               org_unit_id=school.org_unit_id, before={k: before[k] for k in changed}, after=changed, reason=reason)
    return school


def school_history(session: Session, *, actor: User, code: str) -> list[AuditEntry]:
    get_school(session, actor=actor, code=code)
    return list(session.scalars(select(AuditEntry).where(AuditEntry.object_type == "school",
                                                         AuditEntry.object_id == code).order_by(AuditEntry.id)))


def record_meal_model(session: Session, *, school: OrgUnit, old: str | None, new: str | None, month: str) -> None:
    """Keep a meal-model change from `month` on, so the months before keep the model they had."""
    rows = session.scalars(select(SchoolMealModel).where(SchoolMealModel.school_id == school.id)).all()
    if not rows:
        # The first change: what held before it holds for every earlier month.
        session.add(SchoolMealModel(school_id=school.id, effective_month="2000-01", meal_model=old))
    same = next((r for r in rows if r.effective_month == month), None)
    if same is None:
        session.add(SchoolMealModel(school_id=school.id, effective_month=month, meal_model=new))
    else:
        same.meal_model = new
    session.flush()
