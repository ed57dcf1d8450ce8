"""Transfers (转学, Art. 15) and the rules every variant of the student_transfer process checks.

- 县内转学 in_county: the record moves between two schools of one county. One person, one number
  (Art. 7): the same record, its open enrolment period at the sending school closed with the month
  before the change month, a new period at the receiving school from the change month. No month is
  counted at both schools (`EnrolmentPeriod.covers`).
- 转出县外 out_of_county: the student leaves the county; registry/student_status.py makes them
  transferred_out from the change month.
- 县外转入 into_county: an intake at the receiving school (a pending record, the county-wide
  duplicate check, confirmation by the county) whose subsidy starts at the change month, not at the
  original enrolment month: the months before were another county's.

The lanes decided who asked and who approved; these functions check the request and the months.
A transfer is applied only to the child at the school it was filed at, and never from a month whose
figures that school has already reported (Art. 17).
"""

import re
from enum import StrEnum
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from registry import student_status, students
from registry.access import holds, mask_id_number
from registry.audit import record
from registry.errors import Conflict, InvalidTransition, NotFound, PermissionDenied, RuleViolation, join_messages, msg
from registry.org_units import OrgKind, OrgUnit, county_path_of, find_org_unit
from registry.report_submissions import Reported, last_reported
from registry.rules.student import normalise_student
from registry.students import STATUS_LABELS, EnrolmentPeriod, Student, StudentStatus, previous_month
from registry.users import Role, User


class TransferKind(StrEnum):
    in_county = "in_county"
    out_of_county = "out_of_county"
    into_county = "into_county"


_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])", re.ASCII)
Problems = list[dict[str, str]]


def _refuse(problems: Problems) -> None:
    if problems:
        raise RuleViolation(msg("转学信息有误：{problems}", problems=join_messages(p["message"] for p in problems)),
                            details=problems)


def month_problems(change_month: Any, *, enrolled_month: str | None, period_start: str | None = None,
                   reported: Reported | None = None) -> Problems:
    """The change month is a YYYY-MM not before the enrolment month (入学年月), nor before the start
    of the period now open (an earlier transfer or resumption), and after the months the sending
    school has reported."""
    if not isinstance(change_month, str) or not _MONTH.fullmatch(change_month):
        shown = change_month if isinstance(change_month, str) and change_month else "空"
        return [{"field": "change_month", "message": msg("转学年月：“{shown}”不是有效年月（应为 YYYY-MM）", shown=shown)}]
    if enrolled_month and change_month < enrolled_month:
        return [{"field": "change_month", "message": msg("转学年月：不能早于入学年月 {enrolled_month}",
                                                         enrolled_month=enrolled_month)}]
    if period_start and change_month < period_start:
        return [{"field": "change_month", "message": msg("转学年月：不能早于在本校的在籍起始年月 {period_start}",
                                                         period_start=period_start)}]
    if reported and change_month <= reported.last_month:
        # Art. 17: a submitted report is frozen; a transfer effective in a month it counted would make
        # the school's live figures disagree with what it reported, without anyone re-reporting them.
        return [{"field": "change_month",
                 "message": msg("转学年月：{school}已上报“{period}”报表，{last_month} 及以前各月的数字已冻结，转学年月须晚于 {last_month}",
                                school=reported.school_name, period=reported.period, last_month=reported.last_month)}]
    return []


def _open_since(session: Session, student: Student) -> str | None:
    return session.scalar(select(EnrolmentPeriod.from_month).where(EnrolmentPeriod.student_id == student.id,
                                                                   EnrolmentPeriod.to_month.is_(None))
                          .order_by(EnrolmentPeriod.from_month.desc()).limit(1))


def _check_active(student: Student) -> None:
    if student.status != StudentStatus.active:
        raise InvalidTransition(msg("只有在籍学生可以转学，该生为“{status}”",
                                    status=msg(STATUS_LABELS[StudentStatus(student.status)])))


def receiving_school(session: Session, *, student: Student, code: Any) -> OrgUnit:
    """The school of the student's own county a 县内转学 goes to; any other answer names the field."""
    school = find_org_unit(session, code=code) if isinstance(code, str) and code else None
    if not isinstance(code, str) or not code:
        problem = "转入学校：必填"
    elif school is None or school.kind != OrgKind.school:
        problem = f"转入学校：找不到学校代码 {code}"
    elif not school.path.startswith(county_path_of(student.school)):
        problem = f"转入学校：{school.name}（{code}）不在本县，县外学校请选择“转出县外”"
    elif school.id == student.school_id:
        problem = "转入学校：不能是学生现在就读的学校"
    else:
        return school
    raise RuleViolation(msg("转学信息有误：{problem}", problem=problem),
                        details=[{"field": "receiving_school_code", "message": problem}])


def check_request(session: Session, *, student_id: int, kind: str, change_month: Any,
                  receiving_school_code: str | None = None) -> OrgUnit | None:
    """Is this transfer of a confirmed student still possible? At the start, after each revision, and
    again when the county's approval applies it. Returns the receiving school of a 县内转学."""
    student = students.get_student_unscoped(session, student_id)
    _check_active(student)
    school = None
    if kind == TransferKind.in_county:
        school = receiving_school(session, student=student, code=receiving_school_code)
    _refuse(month_problems(change_month, enrolled_month=student.enrolled_month,
                           period_start=_open_since(session, student),
                           reported=last_reported(session, school=student.school)))
    return school


def check_still_at(session: Session, *, student: Student, school_code: str | None) -> None:
    """The transfer was filed for the child at `school_code`: a child who has left that school since
    (moved by a request that was held, or started before the one-request guard) is not moved on from
    a school that never agreed. None: an instance of a version that did not pass the sending school."""
    if school_code is None or student.school.code == school_code:
        return
    filed = find_org_unit(session, code=school_code)
    raise Conflict(msg("该生已不在申请时的转出学校{filed}，现在就读{current}：本次转学申请已过时，不能办理。"
                       "请驳回本申请；如仍需转学，由现在就读的学校重新申请",
                       filed=filed.name if filed else school_code, current=student.school.name))


def _locked(session: Session, student_id: int) -> Student:
    student = session.get(Student, student_id, with_for_update={"of": Student}, populate_existing=True)
    if student is None:
        raise NotFound(msg("找不到学生 {student_id}", student_id=student_id))
    return student


def get_for_transfer(session: Session, *, actor: User, student_id: int) -> Student:
    """The student as their own school's registrar sends them away: in that school's scope and 在籍."""
    student = students.get_student(session, actor=actor, student_id=student_id)
    if not holds(actor, Role.school_registrar, student.school):
        raise PermissionDenied(msg("只有学生所在学校的学籍管理员可以办理转出"))
    _check_active(student)
    return student


def receiving_schools(session: Session, *, student: Student) -> list[OrgUnit]:
    """The other schools of the student's county, by code: where a 县内转学 may go."""
    return list(session.scalars(select(OrgUnit).where(OrgUnit.kind == OrgKind.school, OrgUnit.id != student.school_id,
                                                      OrgUnit.path.startswith(county_path_of(student.school)))
                                .order_by(OrgUnit.code)))


def find_by_id_number(session: Session, *, actor: User, id_number: str, aux: str | None = None) -> Student:
    """The in-county student a receiving school names by ID number, before it may see the record.

    Searched only in the counties where the actor is a school registrar: a child of another county
    stays invisible, and what is shown of the match is `preview`, not the record."""
    county_paths = sorted({county_path_of(g.org_unit) for g in actor.grants if g.role == Role.school_registrar})
    if not county_paths:
        raise PermissionDenied(msg("只有学校学籍管理员可以按证件号查找转入学生"))
    # As entry normalises it: full-width digits, spaces, a lower-case x, a 15-digit resident ID.
    number = normalise_student({"id_type": "1", "id_number": id_number or ""}).get("id_number") or ""
    if not number:
        raise RuleViolation(msg("身份证件号：必填"), details=[{"field": "id_number", "message": msg("身份证件号：必填")}])
    query = (select(Student).join(OrgUnit, Student.school_id == OrgUnit.id)
             .where(Student.id_number == number, Student.status == StudentStatus.active,
                    or_(*(OrgUnit.path.startswith(p) for p in county_paths))))
    if aux and aux.strip():
        query = query.where(Student.student_number_aux == aux.strip())
    found = list(session.scalars(query.order_by(Student.id).limit(3)))
    if not found:
        message = "身份证件号：本县没有该证件号的在籍学生（从外县转入请选择“县外转入”）"
        raise RuleViolation(message, details=[{"field": "id_number", "message": message}])
    if len(found) > 1:
        message = "学籍辅号：该证件号下有多名在籍学生（以监护人证件登记的兄弟姐妹），请填写学籍辅号"
        raise RuleViolation(message, details=[{"field": "student_number_aux", "message": message}])
    return found[0]


def preview(student: Student) -> dict[str, Any]:
    """What a receiving school may see of a student it is asking for: enough to know it is the right
    child, no contact details, the ID number masked."""
    return {"name": student.name, "sex": student.sex, "id_number": mask_id_number(student.id_number),
            "school_name": student.school.name, "grade": student.grade, "class_name": student.class_name}


def move_within_county(session: Session, *, student_id: int, to_school_code: str, change_month: str,
                       actor: User | None, instance_id: int | None = None, reason: str | None = None,
                       from_school_code: str | None = None) -> Student:
    """Art. 15 县内转学, once the county approved it: the subsidy stops at the sending school from the
    change month and starts at the receiving school with it, on the same record."""
    student = _locked(session, student_id)
    check_still_at(session, student=student, school_code=from_school_code)
    check_request(session, student_id=student_id, kind=TransferKind.in_county, change_month=change_month,
                  receiving_school_code=to_school_code)
    to_school = find_org_unit(session, code=to_school_code)
    assert to_school is not None  # checked just now
    periods = list(session.scalars(
        select(EnrolmentPeriod).where(EnrolmentPeriod.student_id == student.id, EnrolmentPeriod.to_month.is_(None))
        .order_by(EnrolmentPeriod.from_month, EnrolmentPeriod.id)
        .with_for_update(of=EnrolmentPeriod).execution_options(populate_existing=True)))
    if not periods:
        raise InvalidTransition(msg("该生没有正在计算补助的在籍期间，不能转学"))
    from_school = student.school
    before = [_ref(p) for p in periods]
    for period in periods:
        period.to_month = previous_month(change_month)
    student.school_id, student.school = to_school.id, to_school
    opened = EnrolmentPeriod.opening(student, to_school, change_month, instance_id=instance_id)
    session.add(opened)
    session.flush()
    session.expire(student, ["periods"])
    record(session, actor=actor, action="student.transfer", object_type="student", object_id=student.id,
           org_unit_id=from_school.id, instance_id=instance_id, reason=reason or None,
           before={"school_code": from_school.code, "enrolment_periods": before},
           after={"school_code": to_school.code, "change_month": change_month,
                  "enrolment_periods": [*(_ref(p) for p in periods), _ref(opened)]})
    return student


def move_out_of_county(session: Session, *, student_id: int, change_month: str, destination: str | None,
                       reason: str | None, actor: User | None, instance_id: int | None = None,
                       from_school_code: str | None = None) -> Student:
    """Art. 15 转出县外, once the county approved it: transferred_out from the change month."""
    student = _locked(session, student_id)
    check_still_at(session, student=student, school_code=from_school_code)
    check_request(session, student_id=student_id, kind=TransferKind.out_of_county, change_month=change_month)
    return student_status.change_status(
        session, student_id=student_id, to_status=StudentStatus.transferred_out, effective_month=change_month,
        reason=f"转出县外（{destination or '县外'}）" + (f"：{reason}" if reason else ""), actor=actor,
        instance_id=instance_id)


def _ref(period: EnrolmentPeriod) -> dict[str, str | None]:
    return {"school_code": period.school.code, "from_month": period.from_month, "to_month": period.to_month}


def check_transfer_in(change_month: Any, *, student: dict[str, Any]) -> None:
    """县外转入: the month the subsidy starts here lies on or after the student's enrolment month."""
    enrolled = normalise_student(student).get("enrolled_month") if isinstance(student, dict) else None
    # A malformed enrolment month is the student check's to report, beside its own field.
    valid = isinstance(enrolled, str) and _MONTH.fullmatch(enrolled)
    _refuse(month_problems(change_month, enrolled_month=enrolled if valid else None))


def check_revised_transfer_in(change_month: str, *, student: dict[str, Any]) -> None:
    """A returned 县外转入 revised: the month is fixed now, so a late enrolment month is the field to correct."""
    enrolled = normalise_student(student).get("enrolled_month")
    if isinstance(enrolled, str) and _MONTH.fullmatch(enrolled) and enrolled > change_month:
        _refuse([{"field": "enrolled_month", "message": msg("入学年月：不能晚于转学年月 {change_month}",
                                                            change_month=change_month)}])


def record_certificate(session: Session, *, student_id: int, certificate_no: str | None, files: list[str],
                       actor: User | None, instance_id: int) -> None:
    """县外转入 needs the transfer certificate (转学证明) on file before anyone reviews it; the upload
    itself checked that it is a PDF or an image."""
    if not files:
        message = "转学证明：请先在“附件”中上传转学证明的扫描件或照片（PDF、JPEG 或 PNG），再提交"
        raise RuleViolation(message, details=[{"field": "file", "message": message}])
    record(session, actor=actor, action="student.transfer_certificate", object_type="student", object_id=student_id,
           instance_id=instance_id, after={"certificate_no": certificate_no or None, "files": files})


def activate_transfer_in(session: Session, *, student_id: int, change_month: str, actor: User | None,
                         now: Any, instance_id: int | None = None) -> None:
    """确认入库 of a student from another county: the first period here opens at the change month."""
    student = students.get_student_unscoped(session, student_id)
    _refuse(month_problems(change_month, enrolled_month=student.enrolled_month))
    students.activate(session, student_id=student_id, actor=actor, now=now, instance_id=instance_id,
                      from_month=change_month)


def withdraw(session: Session, *, student_id: int, reason: str, actor: User | None, instance_id: int) -> None:
    """撤回: a 县外转入 drops its pending record; the other variants changed nothing yet."""
    student = students.get_student_unscoped(session, student_id)
    if student.status == StudentStatus.pending:
        students.void(session, student_id=student_id, reason=f"发起人撤回：{reason}", actor=actor,
                      instance_id=instance_id)


def initiating_school(actor: User, *, student: Student, receiving: OrgUnit | None) -> OrgUnit:
    """Either school's registrar may start a 县内转学: the sending school when the actor holds it
    (the transfer is then the sending school's submission), else the receiving school."""
    if holds(actor, Role.school_registrar, student.school):
        return student.school
    if receiving is not None and holds(actor, Role.school_registrar, receiving):
        return receiving
    if receiving is None:
        raise PermissionDenied(msg("只有学生所在学校的学籍管理员可以办理转出县外"))
    raise PermissionDenied(msg("只有转出学校或转入学校的学籍管理员可以发起县内转学"))
