"""Graduation (毕业) of a school's final grade, as one list per school (学籍异动, Art. 15).

The registrar submits the list — by default every active student of the school's final grade
(primary schools grade 6, every other school type grade 9), edited before submitting — the principal
reviews it once, the county approves it once, and every listed student becomes 已毕业 from the given
month in one transaction: the subsidy stops from that month (Art. 15, `student_status.change_status`).
Returned or rejected, the list closes unchanged and the registrar submits a corrected one, as with a
bulk intake. A school has at most one list under way; a later list in the same year (a student left
out) is a new list.
"""

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from registry import process_guards, student_status
from registry.access import holds, mask_id_number, may_see_full_id, sees
from registry.audit import record
from registry.code_tables import load_code_tables
from registry.db import Base, UTCDateTime, utcnow
from registry.errors import (
    Conflict,
    DomainError,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    RuleViolation,
    join_messages,
    msg,
)
from registry.org_units import OrgKind, OrgUnit, find_org_unit
from registry.schools import School
from registry.students import STATUS_LABELS, EnrolmentPeriod, Student, StudentStatus
from registry.users import Role, User

# 办学类型 whose last grade is grade 6: 小学, 小学教学点, 附设小学班. Every other compulsory-education
# type (初级中学, 九年一贯制, 完全中学, 十二年一贯制, ...) ends compulsory schooling with grade 9; in a
# nine-year school grade 6 moves on to grade 7 in the same school, which is no change of 学籍.
PRIMARY_TYPES = frozenset({"211", "218", "219"})
GRADE_NAMES = {6: "六年级", 9: "九年级"}
REASON_MAX = 500


class BatchStatus(StrEnum):
    open = "open"
    graduated = "graduated"
    returned = "returned"
    rejected = "rejected"
    withdrawn = "withdrawn"


BATCH_STATUS_LABELS = {BatchStatus.open: "办理中", BatchStatus.graduated: "已毕业", BatchStatus.returned: "已退回",
                       BatchStatus.rejected: "已驳回", BatchStatus.withdrawn: "已撤回"}


class GraduationBatch(Base):
    __tablename__ = "graduation_batch"

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True)
    grade: Mapped[int]
    effective_month: Mapped[str] = mapped_column(String(7))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default=BatchStatus.open)
    # Set by the process's first step: the list is filed before its instance exists.
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"), index=True)
    filed_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    filed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    close_comment: Mapped[str | None] = mapped_column(Text)

    school: Mapped[OrgUnit] = relationship(lazy="joined")


class GraduationEntry(Base):
    __tablename__ = "graduation_entry"

    batch_id: Mapped[int] = mapped_column(ForeignKey("graduation_batch.id"), primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("student.id"), primary_key=True, index=True)


def default_month(today: date) -> str:
    """July of the school year under way: students graduate when it ends."""
    return f"{today.year + 1 if today.month >= 9 else today.year}-07"


def final_grade(session: Session, school: OrgUnit) -> int:
    record_ = session.get(School, school.id)
    school_type = record_.school_type if record_ is not None else None
    if not school_type:
        raise RuleViolation(msg("{name}未登记办学类型，无法确定毕业年级：请县教育局系统管理员补充学校信息", name=school.name),
                            details=[{"field": "school_code", "message": msg("学校办学类型未登记")}])
    return 6 if school_type in PRIMARY_TYPES else 9


def _registrar_school(session: Session, actor: User, school_code: Any) -> OrgUnit:
    school = find_org_unit(session, code=school_code) if isinstance(school_code, str) else None
    if school is None or school.kind != OrgKind.school or not sees(actor, school):
        raise RuleViolation(msg("学校代码：{school_code} 不是您可以办理的学校", school_code=school_code),
                            details=[{"field": "school_code", "message": msg("学校不存在或不在您的管辖范围内")}])
    if not holds(actor, Role.school_registrar, school):
        raise PermissionDenied(msg("只有{name}的学籍管理员可以提交毕业名单", name=school.name))
    return school


def candidates(session: Session, *, actor: User, school_code: str) -> tuple[OrgUnit, int, list[Student]]:
    """The default list: every active student of the school's final grade, by class and name."""
    school = _registrar_school(session, actor, school_code)
    grade = final_grade(session, school)
    rows = session.scalars(select(Student).where(Student.school_id == school.id, Student.grade == grade,
                                                 Student.status == StudentStatus.active)
                           .order_by(Student.class_name, Student.name, Student.id))
    return school, grade, list(rows)


def open_batch_of(session: Session, *, school: OrgUnit) -> GraduationBatch | None:
    return session.scalars(select(GraduationBatch).where(GraduationBatch.school_id == school.id,
                                                         GraduationBatch.status == BatchStatus.open)
                           .limit(1)).first()


def _named(student: Student) -> str:
    return f"{student.name}（学生编号 {student.id}）"


def _ids(student_ids: Any) -> list[int]:
    if not isinstance(student_ids, list) or not all(isinstance(i, int) and not isinstance(i, bool)
                                                    for i in student_ids):
        raise RuleViolation(msg("毕业名单：应为学生编号（整数）的列表"),
                            details=[{"field": "student_ids", "message": msg("毕业名单：应为学生编号（整数）的列表")}])
    return list(dict.fromkeys(student_ids))


def _check_month(month: Any) -> list[dict[str, str]]:
    # The same format rule as every status change; the months of each student are checked one by one.
    try:
        student_status.check_input(StudentStatus.graduated, month, "毕业")
    except RuleViolation as err:
        return list(err.details or [])
    return []


def _problems_of(session: Session, school: OrgUnit, grade: int, listed: list[Student], month: Any,
                 wanted: list[int]) -> list[dict[str, str]]:
    problems: list[dict[str, str]] = []
    found = {s.id: s for s in listed}
    for student_id in wanted:
        student = found.get(student_id)
        if student is None:
            problems.append({"field": "student_ids", "message": msg("学生编号 {student_id}：找不到该学生", student_id=student_id)})
        elif student.school_id != school.id:
            # Another school's child: the registrar may not see them, so they are not named.
            problems.append({"field": "student_ids", "message": msg("学生编号 {student_id}：不是{name}的学生",
                                                                    student_id=student_id, name=school.name)})
        elif student.status != StudentStatus.active:
            label = STATUS_LABELS[StudentStatus(student.status)]
            problems.append({"field": "student_ids", "message": msg("{student}：状态为“{label}”，不是在籍学生",
                                                                    student=_named(student), label=label)})
        elif student.grade != grade:
            problems.append({"field": "student_ids", "message": msg("{student}：是{grade}年级学生，不是毕业年级（{grade_name}）",
                                                                    student=_named(student), grade=student.grade, grade_name=msg(GRADE_NAMES[grade]))})
    if isinstance(month, str) and not problems:
        periods = session.scalars(select(EnrolmentPeriod).where(EnrolmentPeriod.student_id.in_(wanted),
                                                                EnrolmentPeriod.to_month.is_(None)))
        for period in periods:
            if month < period.from_month:
                problems.append({"field": "effective_month",
                                 "message": msg("{found}：毕业年月 {month} 早于本次在籍起始年月 {from_month}",
                                                found=_named(found[period.student_id]), month=month, from_month=period.from_month)})
    for student_id, instances in process_guards.open_requests_for_students(session, student_ids=wanted).items():
        problems.append({"field": "student_ids", "message": f"{_named(found[student_id])}："
                                                            f"{process_guards.describe(instances[0])}"})
    return problems


def file_batch(session: Session, *, actor: User, school_code: Any, student_ids: Any, effective_month: Any,
               reason: Any) -> GraduationBatch:
    """The registrar submits the school's graduation list; `student_ids` None means the default list."""
    school = _registrar_school(session, actor, school_code)
    # One list under way per school: two submitted at once are decided one after the other.
    session.get(School, school.id, with_for_update={"of": School})
    grade = final_grade(session, school)
    wanted = [s.id for s in candidates(session, actor=actor, school_code=school.code)[2]] \
        if student_ids is None else _ids(student_ids)
    clean_reason = reason.strip() if isinstance(reason, str) and reason.strip() else f"{GRADE_NAMES[grade]}毕业"
    problems = _check_month(effective_month)
    if len(clean_reason) > REASON_MAX:
        problems.append({"field": "reason", "message": msg("毕业说明：不能超过 {reason_max} 字", reason_max=REASON_MAX)})
    if not wanted:
        problems.append({"field": "student_ids", "message": msg("毕业名单：没有学生（本校没有{grade_name}在籍学生，或全部未选）",
                                                                grade_name=msg(GRADE_NAMES[grade]))})
    # Locked in id order: a transfer or another list touching the same children waits for this one.
    listed = list(session.scalars(select(Student).where(Student.id.in_(wanted)).order_by(Student.id)
                                  .with_for_update(of=Student)))
    problems += _problems_of(session, school, grade, listed, effective_month if not problems else None, wanted)
    if problems:
        more = msg("；等共 {count} 处", count=len(problems)) if len(problems) > 20 else ""
        raise RuleViolation(msg("毕业名单有误：{problems}{more}", problems=join_messages(p["message"] for p in problems[:20]),
                                more=more), details=problems)
    under_way = open_batch_of(session, school=school)
    if under_way is not None:
        raise Conflict(msg("{name}已有办理中的毕业名单（流程 {instance_id}），办结或撤回后再提交",
                           name=school.name, instance_id=under_way.instance_id))
    batch = GraduationBatch(school_id=school.id, school=school, grade=grade, effective_month=effective_month,
                            reason=clean_reason, status=BatchStatus.open, filed_by_id=actor.id, filed_at=utcnow())
    session.add(batch)
    session.flush()
    session.add_all([GraduationEntry(batch_id=batch.id, student_id=student_id) for student_id in wanted])
    session.flush()
    record(session, actor=actor, action="graduation.file", object_type="graduation_batch", object_id=batch.id,
           org_unit_id=school.id, reason=clean_reason,
           after={"school_code": school.code, "grade": grade, "effective_month": effective_month,
                  "students": len(wanted)})
    return batch


def _open_batch(session: Session, batch_id: int) -> GraduationBatch:
    batch = session.get(GraduationBatch, batch_id, with_for_update={"of": GraduationBatch})
    if batch is None:
        raise NotFound(msg("找不到毕业名单 {batch_id}", batch_id=batch_id))
    if batch.status != BatchStatus.open:
        raise InvalidTransition(msg("该毕业名单{batch_status}，不能再办理",
                                    batch_status=msg(BATCH_STATUS_LABELS[BatchStatus(batch.status)])))
    return batch


def link(session: Session, *, batch_id: int, instance_id: int) -> None:
    batch = _open_batch(session, batch_id)
    if batch.instance_id is None:
        batch.instance_id = instance_id


def student_ids_of(session: Session, batch: GraduationBatch) -> list[int]:
    return list(session.scalars(select(GraduationEntry.student_id).where(GraduationEntry.batch_id == batch.id)
                                .order_by(GraduationEntry.student_id)))


def graduate(session: Session, *, batch_id: int, actor: User | None, instance_id: int) -> int:
    """The county approved: every listed student graduates from the batch's month, or none does."""
    batch = _open_batch(session, batch_id)
    count = 0
    for student_id in student_ids_of(session, batch):
        try:
            student_status.change_status(session, student_id=student_id, to_status=StudentStatus.graduated,
                                         effective_month=batch.effective_month, reason=batch.reason, actor=actor,
                                         instance_id=instance_id)
        except DomainError as err:
            # The whole unit of work rolls back: nobody on the list has graduated.
            student = session.get(Student, student_id)
            who = _named(student) if student is not None else msg("学生编号 {student_id}", student_id=student_id)
            raise type(err)(msg("{who}：{problem}；整份名单均未办理毕业，请退回学校修改名单", who=who, problem=err.message),
                            details=[{"field": "student_ids",
                                      "message": msg("{who}：{problem}", who=who, problem=err.message)}]) from err
        count += 1
    batch.status, batch.closed_at = BatchStatus.graduated, utcnow()
    record(session, actor=actor, action="graduation.graduate", object_type="graduation_batch", object_id=batch.id,
           org_unit_id=batch.school_id, instance_id=instance_id,
           after={"status": BatchStatus.graduated, "students": count, "effective_month": batch.effective_month})
    return count


def close(session: Session, *, batch_id: int, decision: str, comment: str | None, actor: User | None,
          instance_id: int) -> None:
    """Returned or rejected: the list closes, nobody's status changes; a corrected list is a new one."""
    batch = _open_batch(session, batch_id)
    status = BatchStatus.returned if decision == "return" else BatchStatus.rejected
    batch.status, batch.closed_at, batch.close_comment = status, utcnow(), comment
    record(session, actor=actor, action=f"graduation.{status}", object_type="graduation_batch", object_id=batch.id,
           org_unit_id=batch.school_id, instance_id=instance_id, reason=comment, after={"status": status})


def withdraw(session: Session, *, instance_id: int, reason: str, actor: User | None) -> None:
    batch = session.scalars(select(GraduationBatch).where(GraduationBatch.instance_id == instance_id)).one_or_none()
    if batch is None or batch.status != BatchStatus.open:
        return
    batch.status, batch.closed_at, batch.close_comment = BatchStatus.withdrawn, utcnow(), reason
    record(session, actor=actor, action="graduation.withdrawn", object_type="graduation_batch", object_id=batch.id,
           org_unit_id=batch.school_id, instance_id=instance_id, reason=reason,
           after={"status": BatchStatus.withdrawn})


def get_batch(session: Session, *, actor: User, batch_id: int) -> GraduationBatch:
    batch = session.get(GraduationBatch, batch_id)
    if batch is None or not sees(actor, batch.school):
        raise NotFound(msg("找不到毕业名单 {batch_id}", batch_id=batch_id))
    return batch


def to_read(session: Session, batch: GraduationBatch, *, actor: User) -> dict[str, Any]:
    """The list as the caller may see it (ID numbers masked unless their role reads them in full)."""
    full_id = may_see_full_id(actor, batch.school)
    listed = session.scalars(select(Student).join(GraduationEntry, GraduationEntry.student_id == Student.id)
                             .where(GraduationEntry.batch_id == batch.id)
                             .order_by(Student.class_name, Student.name, Student.id))
    codes = load_code_tables()
    return {"id": batch.id, "school": batch.school.as_ref(), "grade": batch.grade,
            "grade_name": GRADE_NAMES.get(batch.grade, f"{batch.grade}年级"),
            "effective_month": batch.effective_month, "reason": batch.reason, "status": batch.status,
            "status_label": BATCH_STATUS_LABELS[BatchStatus(batch.status)], "close_comment": batch.close_comment,
            "instance_id": batch.instance_id,
            "students": [{"id": s.id, "name": s.name, "sex": codes.label("sex", s.sex) or s.sex,
                          "class_name": s.class_name, "status_label": STATUS_LABELS[StudentStatus(s.status)],
                          "id_number": s.id_number if full_id else mask_id_number(s.id_number)} for s in listed]}
