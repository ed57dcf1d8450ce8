"""Student records: intake, revision, confirmation into the database, voiding. Lists: student_lists.py."""

from collections.abc import Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from registry.access import holds, mask_id_number, mask_phone, may_see_full_id, sees
from registry.audit import AuditEntry, record
from registry.code_tables import load_code_tables
from registry.county_policy import key_field_lock_date, policy_of
from registry.db import Base, UTCDateTime, utcnow, write_row
from registry.errors import Conflict, InvalidTransition, NotFound, PermissionDenied, RuleViolation, join_messages, msg
from registry.file_store import FileStore
from registry.org_units import OrgKind, OrgUnit, county_of, county_path_of, find_org_unit
from registry.photos import accept_photo
from registry.rules.findings import Finding
from registry.rules.student import check_student, normalise_student
from registry.users import Role, User


class StudentStatus(StrEnum):
    pending = "pending"
    active = "active"
    suspended = "suspended"
    transferred_out = "transferred_out"
    graduated = "graduated"
    dropped_out = "dropped_out"
    deceased = "deceased"
    # Entered by mistake or refused at intake: never deleted, voided with a reason.
    voided = "voided"


STATUS_LABELS = {
    StudentStatus.pending: "待审核",
    StudentStatus.active: "在籍",
    StudentStatus.suspended: "休学",
    StudentStatus.transferred_out: "已转出",
    StudentStatus.graduated: "已毕业",
    StudentStatus.dropped_out: "辍学",
    StudentStatus.deceased: "死亡",
    StudentStatus.voided: "已作废",
}

# Field name → column; the Art. 10 student fields, names as in DESIGN.md "Student fields".
STUDENT_FIELDS = (
    "name", "former_name", "sex", "birth_date", "id_type", "id_number", "ethnicity", "hukou_area",
    "hukou_address", "grade", "class_name", "enrolled_month", "enrolment_mode", "boarding_mode",
    "health", "height_cm", "weight_kg", "left_behind", "migrant_child", "boarding_allowance",
    "address", "guardian_name", "guardian_phone", "file_card_no", "student_number",
    "student_number_aux", "national_student_number",
)
# Art. 14 到期即锁: after the county's lock date these change only through key_field_change.
KEY_FIELDS = ("name", "sex", "birth_date", "id_type", "id_number")
# These change who is subsidised or how much (school, months, 一补): a process with county approval
# decides them (Art. 14, 15), never a direct edit.
PROCESS_FIELDS = ("school_code", "enrolled_month", "boarding_mode", "boarding_allowance")
# An ID number counts twice only where the record is live.
LIVE_STATUSES = (StudentStatus.pending, StudentStatus.active)


class Student(Base):
    __tablename__ = "student"
    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"))
    status: Mapped[str] = mapped_column(String(20), default=StudentStatus.pending, index=True)
    name: Mapped[str] = mapped_column(String(50), index=True)
    former_name: Mapped[str | None] = mapped_column(String(50))
    sex: Mapped[str] = mapped_column(String(1))
    birth_date: Mapped[date]
    id_type: Mapped[str] = mapped_column(String(2))
    id_number: Mapped[str] = mapped_column(String(30), index=True)
    ethnicity: Mapped[str] = mapped_column(String(2))
    hukou_area: Mapped[str | None] = mapped_column(String(6))
    hukou_address: Mapped[str | None] = mapped_column(String(200))
    grade: Mapped[int]
    class_name: Mapped[str] = mapped_column(String(40))
    enrolled_month: Mapped[str] = mapped_column(String(7))
    enrolment_mode: Mapped[str | None] = mapped_column(String(2))
    boarding_mode: Mapped[str] = mapped_column(String(1))
    health: Mapped[str | None] = mapped_column(String(2))
    height_cm: Mapped[float | None]
    weight_kg: Mapped[float | None]
    left_behind: Mapped[str | None] = mapped_column(String(1))
    migrant_child: Mapped[bool] = mapped_column(default=False)
    boarding_allowance: Mapped[bool] = mapped_column(default=False)
    address: Mapped[str | None] = mapped_column(String(200))
    guardian_name: Mapped[str | None] = mapped_column(String(50))
    guardian_phone: Mapped[str | None] = mapped_column(String(20))
    file_card_no: Mapped[str | None] = mapped_column(String(40))
    student_number: Mapped[str | None] = mapped_column(String(40))
    student_number_aux: Mapped[str | None] = mapped_column(String(40))
    national_student_number: Mapped[str | None] = mapped_column(String(19))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    void_reason: Mapped[str | None] = mapped_column(Text)
    # 学生照片 (Art. 10): keys in the file store, the stored image and its thumbnail.
    photo_key: Mapped[str | None] = mapped_column(String(64))
    photo_thumb_key: Mapped[str | None] = mapped_column(String(64))

    school: Mapped[OrgUnit] = relationship(lazy="joined")
    periods: Mapped[list["EnrolmentPeriod"]] = relationship(
        back_populates="student", order_by="EnrolmentPeriod.from_month"
    )

    def fields(self) -> dict[str, Any]:
        out = {f: getattr(self, f) for f in STUDENT_FIELDS}
        out["birth_date"] = self.birth_date.isoformat()
        out["school_code"] = self.school.code
        return out


# Art. 7 一人一号: the database itself refuses a second active record for one ID number
# (siblings registered under a guardian's ID are told apart by 学籍辅号).
Index(
    "uq_student_active_id_number",
    Student.id_number,
    func.coalesce(Student.student_number_aux, ""),
    unique=True,
    postgresql_where=Student.status == "active",
    sqlite_where=Student.status == "active",
)
# Student search (registry/student_lists.py, measured in bench/RESULTS.md): a school's students in id
# order, a school's names by prefix (varchar_pattern_ops: PostgreSQL's LIKE 'x%' cannot use an index
# in the default collation; SQLite matches prefixes with GLOB, which uses a plain index), 学籍号 exactly.
Index("ix_student_school_id_id", Student.school_id, Student.id)
Index("ix_student_school_id_name", Student.school_id, Student.name, postgresql_ops={"name": "varchar_pattern_ops"})
Index("ix_student_student_number", Student.student_number)


# What of the pupil a month is counted and paid with: grade (the primary or junior 一补 rate) and class
# (the class counts), boarding mode and 一补, left-behind and migrant (the Art. 12 counts). A period
# carries them for its months, so that a change applies from its month on and never rewrites months
# already past (`restate_periods`).
PERIOD_VALUES = ("grade", "class_name", "boarding_mode", "boarding_allowance", "left_behind", "migrant_child")


def period_values(source: Any) -> dict[str, Any]:
    """The PERIOD_VALUES of a student (or of a period, or a mapping with those keys)."""
    if isinstance(source, Mapping):
        return {name: source[name] for name in PERIOD_VALUES}
    return {name: getattr(source, name) for name in PERIOD_VALUES}


class EnrolmentPeriod(Base):
    """The months a student belongs to a school, with the values those months count with; subsidy
    months are derived from these."""

    __tablename__ = "enrolment_period"

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("student.id"), index=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"))
    from_month: Mapped[str] = mapped_column(String(7))
    to_month: Mapped[str | None] = mapped_column(String(7))
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"))
    grade: Mapped[int]
    class_name: Mapped[str] = mapped_column(String(40))
    boarding_mode: Mapped[str] = mapped_column(String(1))
    boarding_allowance: Mapped[bool]
    left_behind: Mapped[str | None] = mapped_column(String(1))
    migrant_child: Mapped[bool]

    student: Mapped[Student] = relationship(back_populates="periods")
    school: Mapped[OrgUnit] = relationship(lazy="joined")

    def covers(self, month: str) -> bool:
        """Subsidy is paid for the months from_month … to_month inclusive (to_month None: still open).

        A period closed in its own first month, and every period of a voided record, has to_month
        before from_month and so covers no month (registry/student_status.py, `void_active`)."""
        return self.from_month <= month and (self.to_month is None or month <= self.to_month)

    @classmethod
    def opening(cls, student: Student, school: OrgUnit, from_month: str, *, to_month: str | None = None,
                instance_id: int | None = None) -> "EnrolmentPeriod":
        """A new period at `school` from `from_month`, counted with the student's values as they are now."""
        return cls(student_id=student.id, school_id=school.id, school=school, from_month=from_month,
                   to_month=to_month, instance_id=instance_id, **period_values(student))


# The reports read a county's periods by school (registry/reports.py): without this, a scan of the province's.
Index("ix_enrolment_period_school_id_from_month", EnrolmentPeriod.school_id, EnrolmentPeriod.from_month)


def previous_month(month: str) -> str:
    """"2024-01" → "2023-12"; months are YYYY-MM strings, which sort as they should."""
    year, number = int(month[:4]), int(month[5:])
    return f"{year - 1}-12" if number == 1 else f"{year}-{number - 1:02d}"


def restate_periods(session: Session, student: Student, month: str,
                    instance_id: int | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
    """The student's PERIOD_VALUES, just changed, count from `month` on: a period reaching into `month` or
    later is split there (the months before keep the values they were counted with) or, when it starts
    at `month` or later, takes the new values itself. Returns the periods before and after, for the
    audit, or None when no period changes."""
    wanted = period_values(student)
    periods = list(session.scalars(
        select(EnrolmentPeriod).where(EnrolmentPeriod.student_id == student.id)
        .order_by(EnrolmentPeriod.from_month, EnrolmentPeriod.id)
        .with_for_update(of=EnrolmentPeriod).execution_options(populate_existing=True)))
    # Empty periods (to_month before from_month) are no month at all: nothing to restate there.
    reaching = [p for p in periods if (p.to_month is None or p.to_month >= max(month, p.from_month))
                and period_values(p) != wanted]
    if not reaching:
        return None
    before = [_period_ref(p) for p in periods]
    for period in reaching:
        if period.from_month >= month:
            for name, value in wanted.items():
                setattr(period, name, value)
        else:
            opened = EnrolmentPeriod.opening(student, period.school, month, to_month=period.to_month,
                                             instance_id=instance_id)
            session.add(opened)
            periods.append(opened)
            period.to_month = previous_month(month)
    session.flush()
    session.expire(student, ["periods"])
    return before, [_period_ref(p) for p in sorted(periods, key=lambda p: (p.from_month, p.id))]


def _period_ref(period: EnrolmentPeriod) -> dict[str, Any]:
    return {"school_code": period.school.code, "from_month": period.from_month, "to_month": period.to_month,
            **period_values(period)}


def _raise_on_errors(findings: list[Finding]) -> list[Finding]:
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        raise RuleViolation(
            msg("学生信息有误：{problems}", problems=join_messages(e.message for e in errors)),
            details=[{"field": e.field, "code": e.code, "message": e.message} for e in errors],
        )
    return [f for f in findings if f.severity == "warning"]


def validate_student(data: dict[str, Any], *, today: date) -> tuple[dict[str, Any], list[Finding]]:
    """Normalise and check; raise RuleViolation naming every bad field, return the warnings."""
    clean = normalise_student(data)
    warnings = _raise_on_errors(check_student(clean, today=today, codes=load_code_tables()))
    return clean, warnings


def _school_for(session: Session, actor: User | None, code: str) -> OrgUnit:
    # Usually the registrar's own school, already loaded with their grants.
    own = [g.org_unit for g in actor.grants if g.org_unit.code == code] if actor is not None else []
    school = own[0] if own else find_org_unit(session, code=code)
    if school is None or school.kind != OrgKind.school or (actor is not None and not sees(actor, school)):
        raise RuleViolation(
            msg("学校代码：{code} 不是您可以录入的学校", code=code),
            details=[{"field": "school_code", "message": msg("学校不存在或不在您的管辖范围内")}],
        )
    return school


def _assign(student: Student, clean: dict[str, Any]) -> None:
    for field in STUDENT_FIELDS:
        value = clean.get(field)
        if field == "birth_date":
            value = date.fromisoformat(value)
        elif field in ("migrant_child", "boarding_allowance"):
            value = bool(value)
        setattr(student, field, value)


def register_pending(session: Session, *, actor: User, data: dict[str, Any], today: date) -> tuple[Student, list[Finding]]:
    """Art. 13: the school enters the student; the record stays pending until the county confirms it."""
    clean, warnings = validate_student(data, today=today)
    school = _school_for(session, actor, clean["school_code"])
    warnings += _near_duplicates(session, clean, school)
    student = Student(school_id=school.id, school=school, created_by_id=actor.id, status=StudentStatus.pending)
    _assign(student, clean)
    session.add(student)
    session.flush()
    record(session, actor=actor, action="student.register", object_type="student", object_id=student.id,
           org_unit_id=school.id, after=student.fields())
    return student, warnings


_SAME_PERSON_OTHER_ID = (
    select(Student.id, OrgUnit.name).join(OrgUnit, Student.school_id == OrgUnit.id)
    .where(Student.name == bindparam("name"), Student.birth_date == bindparam("birth_date"),
           Student.sex == bindparam("sex"), Student.id_number != bindparam("id_number"),
           Student.status.in_(LIVE_STATUSES), OrgUnit.path.startswith(bindparam("county_path")))
    .limit(5))


def _near_duplicates(session: Session, clean: dict[str, Any], school: OrgUnit) -> list[Finding]:
    """Same name, birth date and sex under another ID: possibly one child twice (a warning, never a refusal)."""
    rows = session.connection().execute(_SAME_PERSON_OTHER_ID, {
        "name": clean["name"], "birth_date": date.fromisoformat(clean["birth_date"]), "sex": clean["sex"],
        "id_number": clean["id_number"], "county_path": county_path_of(school)}).all()
    if not rows:
        return []
    places = "、".join(sorted({row.name for row in rows}))
    return [Finding(field="id_number", code="near_duplicate", severity="warning",
                    message=msg("身份证件号：县内{places}已有同名、同出生日期、同性别但证件号不同的学生，请核对是否为同一人", places=places))]


def revise(session: Session, *, actor: User | None, student_id: int, data: dict[str, Any], today: date,
           instance_id: int | None = None) -> list[Finding]:
    student = session.get(Student, student_id, with_for_update={"of": Student})
    if student is None or student.status != StudentStatus.pending:
        raise InvalidTransition(msg("只能修改待审核的学生信息"))
    clean, warnings = validate_student(data, today=today)
    school = _school_for(session, actor, clean["school_code"])
    before = student.fields()
    student.school_id, student.school = school.id, school
    _assign(student, clean)
    session.flush()
    after = student.fields()
    changed = {k: after[k] for k in after if after[k] != before[k]}
    record(session, actor=actor, action="student.revise", object_type="student", object_id=student.id,
           org_unit_id=school.id, instance_id=instance_id,
           before={k: before[k] for k in changed}, after=changed)
    return warnings


def key_fields_lock_date(session: Session, student: Student) -> date | None:
    return key_field_lock_date(policy_of(session, county_of(session, student.school)), student.confirmed_at)


def key_fields_locked(session: Session, student: Student, *, today: date) -> bool:
    lock = key_fields_lock_date(session, student)
    return lock is not None and today >= lock


def directly_editable(*, key_fields_locked: bool) -> tuple[str, ...]:
    """The fields a registrar corrects without a process: never PROCESS_FIELDS, KEY_FIELDS until they lock."""
    return tuple(f for f in STUDENT_FIELDS if f not in PROCESS_FIELDS and not (key_fields_locked and f in KEY_FIELDS))


def may_edit(actor: User, student: Student) -> bool:
    return student.status == StudentStatus.active and holds(actor, Role.school_registrar, student.school)


def get_for_edit(session: Session, *, actor: User, student_id: int) -> Student:
    """The record as its school's registrar may correct it: active, and in their own school."""
    student = get_student(session, actor=actor, student_id=student_id)
    if not holds(actor, Role.school_registrar, student.school):
        raise PermissionDenied(msg("只有本校学籍管理员可以修改学生信息"))
    if student.status == StudentStatus.pending:
        raise InvalidTransition(msg("待审核的学生请在录入流程的“退回修改”任务中修改"))
    if student.status != StudentStatus.active:
        raise InvalidTransition(msg("{status}的学生信息不能直接修改", status=msg(STATUS_LABELS[StudentStatus(student.status)])))
    return student


def update_student(session: Session, *, actor: User, student_id: int, changes: dict[str, Any], today: date,
                   reason: str | None = None, require_reason: bool = False) -> list[Finding]:
    """A registrar's direct correction of an active record; key fields only until they lock.

    Only fields whose value really changes count (compared after normalising: "3" is grade 3);
    nothing changed, nothing written. `require_reason` (the edit page) reports a blank reason
    together with the field errors."""
    student = get_for_edit(session, actor=actor, student_id=student_id)
    unknown = [k for k in changes if k not in STUDENT_FIELDS and k != "school_code"]
    if unknown:
        raise RuleViolation(msg("未知字段：{unknown}", unknown="、".join(unknown)),
                            details=[{"field": k, "message": msg("{field}：不是学生信息的字段", field=k)} for k in unknown])
    current = student.fields()
    proposed = normalise_student({**current, **changes})
    changed = {k: proposed.get(k) for k in changes if proposed.get(k) != current.get(k)}
    guarded = [k for k in changed if k in PROCESS_FIELDS]
    if guarded:
        raise Conflict(msg("学校、入学年月、就读方式和享受一补的变更影响受益人数，须经学籍异动或转学流程报县审批后更改（办法第十四、十五条）"),
                       details=[{"field": k, "message": msg("须通过流程变更")} for k in guarded])
    lock = key_fields_lock_date(session, student)
    locked = [k for k in changed if k in KEY_FIELDS]
    if locked and lock is not None and today >= lock:
        raise Conflict(msg("关键信息已于 {lock} 锁定（到期即锁），请由监护人申请，通过关键信息变更流程（key_field_change）报县审批后更改", lock=lock.isoformat()),
                       details=[{"field": k, "message": msg("已锁定")} for k in locked])
    reason = reason.strip() if isinstance(reason, str) else None
    no_reason = [{"field": "reason", "message": msg("修改原因：必填")}] if require_reason and not reason else []
    try:
        clean, warnings = validate_student({**current, **changes}, today=today)
    except RuleViolation as err:
        raise RuleViolation(join_messages([err.message, *(p["message"] for p in no_reason)]),
                            details=[*(err.details or []), *no_reason]) from None
    if not changed:
        return warnings
    if no_reason:
        raise RuleViolation(no_reason[0]["message"], details=no_reason)
    if "id_number" in changed or "student_number_aux" in changed:
        _refuse_live_duplicate(session, student, clean)
    before = {k: current[k] for k in changed}
    _assign(student, clean)
    try:
        session.flush()
    except IntegrityError as err:
        raise Conflict(msg("身份证件号在县内已有在籍记录"),
                       details=[{"field": "id_number", "message": msg("身份证件号：县内已有在籍记录（一人一号）")}]) from err
    after = {k: v for k, v in student.fields().items() if k in changed}
    # A correction counts from this month on: months already reported keep the grade and class they had.
    periods = restate_periods(session, student, f"{today:%Y-%m}")
    if periods is not None:
        before["enrolment_periods"], after["enrolment_periods"] = periods
    record(session, actor=actor, action="student.update", object_type="student", object_id=student.id,
           org_unit_id=student.school_id, before=before, after=after, reason=reason)
    return warnings


def apply_key_field_change(session: Session, *, student_id: int, changes: dict[str, Any], reason: str,
                           actor: User | None, today: date, instance_id: int | None = None) -> list[Finding]:
    """Art. 14: the change a guardian applied for and the county approved, applied to a record whose key
    fields are locked. Only key fields (and 学籍辅号, which goes with an ID number); the same rules and the
    county-wide duplicate check as any entry; before/after in history with the approving instance."""
    student = session.get(Student, student_id, with_for_update={"of": Student})
    if student is None:
        raise NotFound(msg("找不到学生 {student_id}", student_id=student_id))
    if student.status not in LIVE_STATUSES:
        raise InvalidTransition(msg("{status}的学生不能变更关键信息", status=msg(STATUS_LABELS[StudentStatus(student.status)])))
    allowed = (*KEY_FIELDS, "student_number_aux")
    other = [k for k in changes if k not in allowed]
    if other:
        raise RuleViolation(msg("关键信息变更只能更改姓名、性别、出生日期、身份证件类型、身份证件号和学籍辅号"),
                            details=[{"field": k, "message": msg("不是关键信息")} for k in other])
    current = student.fields()
    clean, warnings = validate_student({**current, **changes}, today=today)
    changed = {k: clean.get(k) for k in changes if clean.get(k) != current.get(k)}
    if not changed:
        raise RuleViolation(msg("申请变更的值与现有信息相同"), details=[{"field": k, "message": msg("未变化")} for k in changes])
    if "id_number" in changed or "student_number_aux" in changed:
        _refuse_live_duplicate(session, student, clean)
    _assign(student, clean)
    try:
        session.flush()
    except IntegrityError as err:
        raise Conflict(msg("身份证件号在县内已有在籍记录"),
                       details=[{"field": "id_number", "message": msg("身份证件号：县内已有在籍记录（一人一号）")}]) from err
    record(session, actor=actor, action="student.key_field_change", object_type="student", object_id=student.id,
           org_unit_id=student.school_id, instance_id=instance_id, reason=reason,
           before={k: current[k] for k in changed}, after={k: student.fields()[k] for k in changed})
    return warnings


def _refuse_live_duplicate(session: Session, student: Student, clean: dict[str, Any]) -> None:
    if _live_same_id(session, student_id=student.id, id_number=clean["id_number"],
                     aux=clean.get("student_number_aux"), school=student.school):
        raise Conflict(msg("身份证件号 {id_number} 在县内已有学籍记录，一人一号（办法第七条）", id_number=mask_id_number(clean['id_number'])),
                       details=[{"field": "id_number",
                                 "message": msg("身份证件号：县内已有相同证件号和学籍辅号的学籍记录（一人一号）")}])


# Built once: the duplicate check runs on every intake and transfer.
_LIVE_SAME_ID = (
    select(Student.id).join(OrgUnit, Student.school_id == OrgUnit.id)
    .where(Student.id != bindparam("student_id"), Student.id_number == bindparam("id_number"),
           func.coalesce(Student.student_number_aux, "") == bindparam("aux"),
           Student.status.in_(LIVE_STATUSES), OrgUnit.path.startswith(bindparam("county_path")))
    .order_by(Student.id))
_STUDENT_FOR_ACTIVATION = (select(Student.id_number, Student.student_number_aux, Student.school_id,
                                  Student.enrolled_month, Student.status, *(getattr(Student, v) for v in PERIOD_VALUES))
                           .where(Student.id == bindparam("student_id")).with_for_update())
_ACTIVE_SAME_ID = (select(Student.id).where(Student.id_number == bindparam("id_number"),
                                            Student.status == StudentStatus.active,
                                            func.coalesce(Student.student_number_aux, "") == bindparam("aux"))
                   .limit(1))


def _live_same_id(session: Session, *, student_id: int, id_number: str, aux: str | None,
                  school: OrgUnit) -> list[int]:
    """Other live records of the county under this ID number and 学籍辅号."""
    return list(session.connection().execute(_LIVE_SAME_ID, {
        "student_id": student_id, "id_number": id_number, "aux": aux or "",
        "county_path": county_path_of(school)}).scalars())


def live_records_with_id(session: Session, *, student: Student, id_number: str, aux: str | None) -> list[int]:
    """Other live records of the county under an ID number (and 学籍辅号) this record does not carry yet:
    what a key-field change is checked against before the county decides (Art. 7)."""
    return _live_same_id(session, student_id=student.id, id_number=id_number, aux=aux, school=student.school)


def check_duplicates(session: Session, *, student_id: int) -> dict[str, Any]:
    """Art. 7 一人一号，全县联网: the same ID live at any school of the county is a conflict.

    Siblings registered under a guardian's ID (学籍主号) are told apart by 学籍辅号.
    """
    student = get_student_unscoped(session, student_id)
    rows = _live_same_id(session, student_id=student.id, id_number=student.id_number,
                         aux=student.student_number_aux, school=student.school)
    return {"conflict": bool(rows), "matches": list(rows)}


def activate(session: Session, *, student_id: int, actor: User | None, now: datetime,
             instance_id: int | None = None, from_month: str | None = None) -> None:
    """确认入库: the record becomes active and its first enrolment period opens at the enrolment month,
    or at `from_month` for a student transferred in from another county (registry/transfers.py)."""
    conn = session.connection()
    row = conn.execute(_STUDENT_FOR_ACTIVATION, {"student_id": student_id}).first()
    if row is None or row.status != StudentStatus.pending:
        raise InvalidTransition(msg("只能确认待审核的学生"))
    refusal = Conflict(msg("身份证件号 {id_number} 已有在籍学生，不能重复入库", id_number=mask_id_number(row.id_number)),
                       details=[{"field": "id_number", "message": msg("县内已有在籍记录")}])
    # Art. 7: never a second active record for one ID; the unique index backs this up against races.
    already_active = conn.execute(_ACTIVE_SAME_ID, {"id_number": row.id_number,
                                                    "aux": row.student_number_aux or ""}).first()
    if already_active is not None:
        raise refusal
    try:
        write_row(session, Student, student_id, {"status": StudentStatus.active, "confirmed_at": now})
    except IntegrityError as err:
        raise refusal from err  # two confirmations of one ID raced past the check; the index stopped this one
    conn.execute(insert(EnrolmentPeriod.__table__).values(student_id=student_id, school_id=row.school_id,
                                                          from_month=from_month or row.enrolled_month,
                                                          instance_id=instance_id, **period_values(row._mapping)))
    record(session, actor=actor, action="student.activate", object_type="student", object_id=student_id,
           org_unit_id=row.school_id, instance_id=instance_id,
           before={"status": StudentStatus.pending}, after={"status": StudentStatus.active})


def void(session: Session, *, student_id: int, reason: str, actor: User | None, instance_id: int | None = None) -> None:
    student = session.get(Student, student_id, with_for_update={"of": Student})
    if student is None or student.status != StudentStatus.pending:
        raise InvalidTransition(msg("只能作废待审核的学生"))
    student.status = StudentStatus.voided
    student.void_reason = reason
    record(session, actor=actor, action="student.void", object_type="student", object_id=student.id,
           org_unit_id=student.school_id, instance_id=instance_id, reason=reason,
           before={"status": StudentStatus.pending}, after={"status": StudentStatus.voided})


VOID_REASON_MAX = 500


def may_void(actor: User, student: Student) -> bool:
    return student.status == StudentStatus.active and (
        holds(actor, Role.county_reviewer, student.school) or holds(actor, Role.county_admin, student.school))


def void_active(session: Session, *, actor: User, student_id: int, reason: str) -> Student:
    """A confirmed record entered by mistake (a ghost or a double, Art. 10, 27), voided by the county.

    Nothing is deleted: the record stays, voided with its reason, and each of its enrolment periods
    gets to_month = the month before its from_month, so it covers no month (`EnrolmentPeriod.covers`)
    and the record never counts for subsidy, past months included. The periods as they were are in
    the audit entry. Voiding frees the ID number for a correct record (only active ones are unique)."""
    student = get_student(session, actor=actor, student_id=student_id)
    if not (holds(actor, Role.county_reviewer, student.school) or holds(actor, Role.county_admin, student.school)):
        raise PermissionDenied(msg("只有县营养办审核员或县教育局系统管理员可以作废在籍学生的记录"))
    clean = reason.strip() if isinstance(reason, str) else ""
    if not clean or len(clean) > VOID_REASON_MAX:
        message = "作废原因：必填" if not clean else f"作废原因：不能超过 {VOID_REASON_MAX} 字"
        raise RuleViolation(message, details=[{"field": "reason", "message": message}])
    student = session.get(Student, student_id, with_for_update={"of": Student}, populate_existing=True)
    assert student is not None  # seen a moment ago; students are never deleted
    if student.status == StudentStatus.pending:
        raise InvalidTransition(msg("待审核的学生不在此作废：请在录入流程的县级确认任务中驳回"))
    if student.status != StudentStatus.active:
        raise InvalidTransition(msg("只能作废在籍学生的记录，该生为“{status}”",
                                    status=msg(STATUS_LABELS[StudentStatus(student.status)])))
    periods = list(session.scalars(select(EnrolmentPeriod).where(EnrolmentPeriod.student_id == student.id)
                                   .order_by(EnrolmentPeriod.from_month, EnrolmentPeriod.id)
                                   .with_for_update(of=EnrolmentPeriod).execution_options(populate_existing=True)))
    before = [{"school_code": p.school.code, "from_month": p.from_month, "to_month": p.to_month} for p in periods]
    for period in periods:
        period.to_month = previous_month(period.from_month)
    student.status, student.void_reason = StudentStatus.voided, clean
    session.flush()
    session.expire(student, ["periods"])
    record(session, actor=actor, action="student.void", object_type="student", object_id=student.id,
           org_unit_id=student.school_id, reason=clean,
           before={"status": StudentStatus.active, "enrolment_periods": before},
           after={"status": StudentStatus.voided,
                  "enrolment_periods": [{**b, "to_month": p.to_month} for b, p in zip(before, periods, strict=True)]})
    return student


def get_student_unscoped(session: Session, student_id: int) -> Student:
    student = session.get(Student, student_id)
    if student is None:
        raise NotFound(msg("找不到学生 {student_id}", student_id=student_id))
    return student


def get_student(session: Session, *, actor: User, student_id: int) -> Student:
    """Outside the caller's scope a student does not exist for them: 404, never 403."""
    student = session.get(Student, student_id)
    if student is None or not sees(actor, student.school):
        raise NotFound(msg("找不到学生 {student_id}", student_id=student_id))
    return student


def set_photo(session: Session, *, actor: User, student_id: int, data: bytes, store: FileStore) -> Student:
    """The registrar uploads 学生照片; the stored copy is re-encoded without metadata (photos.accept_photo)."""
    student = get_student(session, actor=actor, student_id=student_id)
    if not holds(actor, Role.school_registrar, student.school):
        raise PermissionDenied(msg("只有本校学籍管理员可以上传学生照片"))
    if student.status not in LIVE_STATUSES:
        raise InvalidTransition(msg("{status}的学生不能更换照片", status=msg(STATUS_LABELS[StudentStatus(student.status)])))
    photo = accept_photo(data)
    image = store.put(photo.image, content_type=photo.content_type)
    thumb = store.put(photo.thumbnail, content_type=photo.content_type)
    before = {"photo_key": student.photo_key}
    student.photo_key, student.photo_thumb_key = image.key, thumb.key
    record(session, actor=actor, action="student.photo", object_type="student", object_id=student.id,
           org_unit_id=student.school_id, before=before,
           after={"photo_key": image.key, "width": photo.width, "height": photo.height})
    return student


def photo_of(session: Session, *, actor: User, student_id: int, thumbnail: bool, store: FileStore) -> bytes:
    student = get_student(session, actor=actor, student_id=student_id)
    key = student.photo_thumb_key if thumbnail else student.photo_key
    if key is None:
        raise NotFound(msg("该学生还没有照片"))
    return store.open(key)


def history(session: Session, *, student: Student) -> list[AuditEntry]:
    """Every recorded change of one student, oldest first: the timeline of the record."""
    return list(session.scalars(select(AuditEntry).where(AuditEntry.object_type == "student",
                                                         AuditEntry.object_id == str(student.id))
                                .order_by(AuditEntry.id)))


def review_findings(session: Session, *, student: Student, actor: User, today: date) -> dict[str, Any]:
    """What a reviewer should see beside the decision: the rules' warnings on the record as it is now,
    and the other live records of the county under the same ID number (Art. 7), as the reviewer may see them."""
    clean = normalise_student(student.fields())
    findings = [f for f in check_student(clean, today=today, codes=load_code_tables()) if f.severity == "warning"]
    findings += _near_duplicates(session, clean, student.school)
    same = _live_same_id(session, student_id=student.id, id_number=student.id_number,
                         aux=student.student_number_aux, school=student.school)
    others = [session.get(Student, other_id) for other_id in same]
    return {"warnings": [f.message for f in findings],
            "duplicates": [{"id": o.id, "name": o.name, "school": o.school.name,
                            "status_label": STATUS_LABELS[StudentStatus(o.status)],
                            "id_number": o.id_number if may_see_full_id(actor, o.school) else mask_id_number(o.id_number)}
                           for o in others if o is not None]}


def to_read(student: Student, *, actor: User) -> dict[str, Any]:
    out = {"id": student.id, "status": student.status, "status_label": STATUS_LABELS[StudentStatus(student.status)],
           **student.fields(),
           "school": student.school.as_ref(),
           "confirmed_at": student.confirmed_at.isoformat() if student.confirmed_at else None,
           "has_photo": student.photo_key is not None,
           "void_reason": student.void_reason,
           "enrolment_periods": [
               {"school_code": p.school.code, "from_month": p.from_month, "to_month": p.to_month}
               for p in student.periods
           ]}
    if not may_see_full_id(actor, student.school):
        out["id_number"] = mask_id_number(student.id_number)
        out["student_number"] = mask_id_number(student.student_number)
        out["national_student_number"] = mask_id_number(student.national_student_number)
        out["guardian_phone"] = mask_phone(student.guardian_phone)
    return out
