"""Guardians' applications to change a locked record's key fields (Art. 14 到期即锁).

Once the key fields (name, sex, birth date, ID type and number) lock, they change only when the student
or guardian applies, the school reviews and the county approves. The registrar files the application
on the guardian's behalf with the signed paper application scanned; the key_field_change process
decides who acts next; this module holds what was asked and why, checks it each time someone submits
it, and applies it through `students.apply_key_field_change` once the county approves.

The requested values are a child's personal data: they live here, not in the workflow state, which
keeps only the request's id (DESIGN, engine facts).
"""

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, String, Text, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from registry import process_guards, students
from registry.access import holds, mask_id_number, may_see_full_id
from registry.audit import record
from registry.code_tables import load_code_tables
from registry.db import Base, JSONType, UTCDateTime, utcnow
from registry.errors import InvalidTransition, NotFound, PermissionDenied, RuleViolation, join_messages, msg
from registry.rules.student import FIELD_LABELS
from registry.students import KEY_FIELDS, STATUS_LABELS, Student, StudentStatus
from registry.users import Role, User

# 学籍辅号 goes with the ID number: siblings under one guardian's ID are told apart by it (Art. 10).
CHANGEABLE = (*KEY_FIELDS, "student_number_aux")
REASON_MAX = 500


class RequestStatus(StrEnum):
    open = "open"
    applied = "applied"
    rejected = "rejected"
    withdrawn = "withdrawn"


REQUEST_STATUS_LABELS = {RequestStatus.open: "办理中", RequestStatus.applied: "已变更",
                         RequestStatus.rejected: "已驳回", RequestStatus.withdrawn: "已撤回"}


class KeyFieldRequest(Base):
    __tablename__ = "key_field_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    student_id: Mapped[int] = mapped_column(ForeignKey("student.id"), index=True)
    # Set by the process's first step: the request is filed before its instance exists.
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"), index=True)
    changes: Mapped[dict[str, Any]] = mapped_column(JSONType)  # field → requested value, normalised
    before: Mapped[dict[str, Any]] = mapped_column(JSONType)  # the same fields as recorded when filed or revised
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default=RequestStatus.open)
    filed_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    filed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    close_comment: Mapped[str | None] = mapped_column(Text)

    student: Mapped[Student] = relationship()


def _checked(student: Student, changes: Any, reason: Any, *, today: date) -> tuple[dict[str, Any], str]:
    """The fields that really change, normalised, and the reason; every problem named at once."""
    problems: list[dict[str, str]] = []
    clean_reason = reason.strip() if isinstance(reason, str) else ""
    if not clean_reason:
        problems.append({"field": "reason", "message": msg("申请理由：必填")})
    elif len(clean_reason) > REASON_MAX:
        problems.append({"field": "reason", "message": msg("申请理由：不能超过 {reason_max} 字", reason_max=REASON_MAX)})
    if not isinstance(changes, dict) or not changes:
        problems.append({"field": "changes", "message": msg("变更内容：请至少填写一项要变更的关键信息")})
        raise RuleViolation(msg("关键信息变更申请有误：{problems}", problems=join_messages(p["message"] for p in problems)),
                            details=problems)
    other = [k for k in changes if k not in CHANGEABLE]
    if other:
        problems += [{"field": k, "message": msg("{field}：不是关键信息，请在学生信息“修改”页面更正", field=msg(FIELD_LABELS[k]))
                      if k in FIELD_LABELS else msg("{field}：不是学生信息的字段", field=k)} for k in other]
        raise RuleViolation(msg("关键信息变更只能更改姓名、性别、出生日期、身份证件类型、身份证件号和学籍辅号"),
                            details=problems)
    current = student.fields()
    try:
        clean, _ = students.validate_student({**current, **changes}, today=today)
    except RuleViolation as err:
        raise RuleViolation(join_messages([err.message, *(p["message"] for p in problems)]),
                            details=[*(err.details or []), *problems]) from None
    changed = {k: clean.get(k) for k in changes if clean.get(k) != current.get(k)}
    if not changed:
        problems += [{"field": k, "message": msg("{field}：与现有信息相同", field=msg(FIELD_LABELS[k]))} for k in changes]
    if problems:
        raise RuleViolation(msg("关键信息变更申请有误：{problems}", problems=join_messages(p["message"] for p in problems)),
                            details=problems)
    return changed, clean_reason


def filing_check(session: Session, *, actor: User, student_id: int, today: date) -> Student:
    """The student, if `actor` may file an application for them now; raises why not (the start page asks first)."""
    student = students.get_student(session, actor=actor, student_id=student_id)
    if not holds(actor, Role.school_registrar, student.school):
        raise PermissionDenied(msg("只有本校学籍管理员可以代监护人提交关键信息变更申请"))
    if student.status == StudentStatus.pending:
        raise InvalidTransition(msg("待审核的学生请在录入流程的“退回修改”任务中修改"))
    if student.status != StudentStatus.active:
        raise InvalidTransition(msg("{status}的学生不能变更关键信息", status=msg(STATUS_LABELS[StudentStatus(student.status)])))
    lock = students.key_fields_lock_date(session, student)
    if lock is None or today < lock:
        # Before the lock the registrar corrects the record directly: no application, no county step.
        raise InvalidTransition(msg("该生关键信息尚未锁定（将于 {lock} 锁定），请在学生信息“修改”页面直接更正（/students/{id}/edit）",
                                    lock=lock, id=student.id),
                                details=[{"field": "student_id", "message": msg("关键信息尚未锁定，可直接修改")}])
    return student


def file_request(session: Session, *, actor: User, student_id: int, changes: Any, reason: Any,
                 today: date) -> KeyFieldRequest:
    """The registrar files the guardian's application for a locked, active record of their school."""
    student = filing_check(session, actor=actor, student_id=student_id, today=today)
    changed, clean_reason = _checked(student, changes, reason, today=today)
    process_guards.refuse_if_open_request(session, student=student)
    current = student.fields()
    request = KeyFieldRequest(student_id=student.id, student=student, changes=changed,
                              before={k: current[k] for k in changed}, reason=clean_reason,
                              status=RequestStatus.open, filed_by_id=actor.id, filed_at=utcnow())
    session.add(request)
    session.flush()
    record(session, actor=actor, action="student.key_field_request", object_type="student", object_id=student.id,
           org_unit_id=student.school_id, reason=clean_reason, before=request.before,
           after={"request_id": request.id, **changed})
    return request


def _open_request(session: Session, request_id: int) -> KeyFieldRequest:
    request = session.get(KeyFieldRequest, request_id, with_for_update={"of": KeyFieldRequest})
    if request is None:
        raise NotFound(msg("找不到关键信息变更申请 {request_id}", request_id=request_id))
    if request.status != RequestStatus.open:
        raise InvalidTransition(msg("该申请{request_status}，不能再办理",
                                    request_status=msg(REQUEST_STATUS_LABELS[RequestStatus(request.status)])))
    return request


def link(session: Session, *, request_id: int, instance_id: int) -> None:
    """The process instance that carries the request, recorded as it starts."""
    request = _open_request(session, request_id)
    if request.instance_id is None:
        request.instance_id = instance_id


def for_instance(session: Session, *, instance_id: int) -> KeyFieldRequest | None:
    return session.scalars(select(KeyFieldRequest).where(KeyFieldRequest.instance_id == instance_id)).one_or_none()


def _scans(session: Session, instance_id: int | None) -> int:
    # registry.attachments reaches registry.workflows, which gathers the flows that call this
    # module: imported on use, not at load, to keep the import graph acyclic.
    from registry.attachments import Attachment

    if instance_id is None:
        return 0
    return session.scalar(select(func.count()).select_from(Attachment)
                          .where(Attachment.instance_id == instance_id)) or 0


def _require_scan(session: Session, request: KeyFieldRequest) -> None:
    if not _scans(session, request.instance_id):
        raise RuleViolation(msg("请先上传监护人签字的申请书扫描件（PDF、JPEG 或 PNG），再提交"),
                            details=[{"field": "file", "message": msg("缺少申请书扫描件")}])


def check_ready(session: Session, *, request_id: int, today: date) -> dict[str, Any]:
    """What the school reviews must be complete: the signed scan attached, the values still valid
    against the record as it is now (it may have been edited meanwhile)."""
    request = _open_request(session, request_id)
    _require_scan(session, request)
    _checked(request.student, request.changes, request.reason, today=today)
    return {"fields": list(request.changes), "id_change": _touches_id(request)}


def revise_request(session: Session, *, actor: User | None, request_id: int, data: dict[str, Any],
                   today: date) -> KeyFieldRequest:
    """Returned for revision: the registrar corrects the application (form fields left blank are not changed)."""
    request = _open_request(session, request_id)
    changes = {k: data[k] for k in CHANGEABLE if data.get(k) not in (None, "")}
    changed, clean_reason = _checked(request.student, changes, data.get("reason"), today=today)
    asked_before = request.changes
    current = request.student.fields()
    request.changes, request.reason = changed, clean_reason
    request.before = {k: current[k] for k in changed}
    # Flat field → value, as every student entry, so the history masks ID numbers the same way.
    record(session, actor=actor, action="student.key_field_request_revise", object_type="student",
           object_id=request.student_id, org_unit_id=request.student.school_id, instance_id=request.instance_id,
           reason=clean_reason, before={"request_id": request.id, **asked_before},
           after={"request_id": request.id, **changed})
    return request


def _touches_id(request: KeyFieldRequest) -> bool:
    return bool({"id_number", "id_type", "student_number_aux"} & set(request.changes))


def check_id_number(session: Session, *, request_id: int) -> dict[str, Any]:
    """Art. 7 一人一号: a new ID number checked county-wide again, right before the county decides."""
    request = _open_request(session, request_id)
    if not _touches_id(request):
        return {"id_change": False, "conflict": False, "matches": []}
    student = request.student
    matches = students.live_records_with_id(
        session, student=student, id_number=request.changes.get("id_number", student.id_number),
        aux=request.changes.get("student_number_aux", student.student_number_aux))
    return {"id_change": True, "conflict": bool(matches), "matches": matches}


def apply(session: Session, *, request_id: int, actor: User | None, today: date, instance_id: int) -> list[str]:
    """The county approved: the record changes, before and after in its history with the instance."""
    request = _open_request(session, request_id)
    _require_scan(session, request)  # never without the guardian's signed application on file
    students.apply_key_field_change(session, student_id=request.student_id, changes=request.changes,
                                    reason=request.reason, actor=actor, today=today, instance_id=instance_id)
    request.status, request.closed_at = RequestStatus.applied, utcnow()
    return list(request.changes)


def reject(session: Session, *, request_id: int, comment: str | None, actor: User | None,
           instance_id: int) -> None:
    request = _open_request(session, request_id)
    request.status, request.closed_at, request.close_comment = RequestStatus.rejected, utcnow(), comment
    record(session, actor=actor, action="student.key_field_request_rejected", object_type="student",
           object_id=request.student_id, org_unit_id=request.student.school_id, instance_id=instance_id,
           reason=comment, after={"request_id": request.id, "status": RequestStatus.rejected})


def withdraw(session: Session, *, instance_id: int, reason: str, actor: User | None) -> None:
    request = for_instance(session, instance_id=instance_id)
    if request is None or request.status != RequestStatus.open:
        return
    request.status, request.closed_at, request.close_comment = RequestStatus.withdrawn, utcnow(), reason
    record(session, actor=actor, action="student.key_field_request_withdrawn", object_type="student",
           object_id=request.student_id, org_unit_id=request.student.school_id, instance_id=instance_id,
           reason=reason, after={"request_id": request.id, "status": RequestStatus.withdrawn})


def _shown(field: str, value: Any, *, full_id: bool) -> str:
    if value is None or value == "":
        return "—"
    if field == "id_number" and not full_id:
        return mask_id_number(str(value)) or ""
    label = load_code_tables().label(field, str(value)) if field in ("sex", "id_type") else None
    return f"{value} {label}" if label else str(value)


def review_of(session: Session, *, request: KeyFieldRequest, actor: User) -> dict[str, Any]:
    """What the reviewers see beside their decision: each requested field, as recorded and as asked,
    and for a new ID number the other live records of the county under it (Art. 7)."""
    student = request.student
    full_id = may_see_full_id(actor, student.school)
    # While open, the record as it is now; once closed, as it was when filed (applied, it holds the new values).
    current = student.fields() if request.status == RequestStatus.open else request.before
    rows = [{"field": f, "label": FIELD_LABELS[f], "current": _shown(f, current.get(f), full_id=full_id),
             "requested": _shown(f, value, full_id=full_id)} for f, value in request.changes.items()]
    duplicates: list[dict[str, str]] = []
    id_check = None
    if request.status == RequestStatus.open and _touches_id(request):
        id_check = check_id_number(session, request_id=request.id)
        for other_id in id_check["matches"]:
            other = session.get(Student, other_id)
            if other is not None:
                duplicates.append({"school": other.school.name, "name": other.name,
                                   "status_label": STATUS_LABELS[StudentStatus(other.status)],
                                   "id_number": _shown("id_number", other.id_number,
                                                       full_id=may_see_full_id(actor, other.school))})
    return {"id": request.id, "rows": rows, "reason": request.reason, "status": request.status,
            "status_label": REQUEST_STATUS_LABELS[RequestStatus(request.status)],
            "close_comment": request.close_comment, "id_check": id_check, "duplicates": duplicates}


def form_values(request: KeyFieldRequest) -> dict[str, Any]:
    """The revision form filled with the application as it stands."""
    return {"key_field_change": {**request.changes, "reason": request.reason}}
