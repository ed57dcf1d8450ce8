"""student_transfer (转学, Art. 15): in the county, out of it, and into it (registry/transfers.py).

Start data (`POST /api/processes/student_transfer/instances {"data": {...}}`), by kind:
- in_county, by the sending or the receiving school's registrar:
  `{"kind": "in_county", "student_id": 12, "receiving_school_code": "2152019902", "change_month": "2025-03",
  "reason": "随父母迁居"}`; the receiving school, which cannot see the record yet, names the student by
  `"id_number"` (and `"student_number_aux"` for siblings under one ID) instead of `student_id`;
- out_of_county, by the sending school's registrar:
  `{"kind": "out_of_county", "student_id": 12, "destination_school": "某省某县某小学", "change_month": "2025-03"}`;
- into_county, by the receiving school's registrar: `{"kind": "into_county", "student": {<student fields>},
  "origin_school": "原就读学校（县外）", "change_month": "2025-03"}`; the first task asks for the
  transfer certificate as an attachment.
`reason`, `destination_school` and `origin_school` are optional.
"""

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import process_guards, students, transfers
from registry.errors import RuleViolation, msg
from registry.flows import Flow, ServiceContext, StartPlan
from registry.forms import validate_form, wrapped
from registry.org_units import county_of
from registry.students import Student, StudentStatus
from registry.transfers import TransferKind
from registry.users import User

# registry.attachments imports registry.workflows, which imports this module (through registry.actions):
# the attachment model is imported where it is used.

_TEXT = {"type": "string", "maxLength": 200}
START_FORM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "kind": {"title": "转学类型", "type": "string", "enum": list(TransferKind)},
        "student_id": {"title": "学生", "type": "integer", "minimum": 1},
        "id_number": {"title": "身份证件号", "type": "string", "minLength": 1, "maxLength": 30},
        "student_number_aux": {"title": "学籍辅号", "type": "string", "maxLength": 30},
        "receiving_school_code": {"title": "转入学校", "type": "string", "minLength": 1, "maxLength": 20},
        "destination_school": {**_TEXT, "title": "转入学校（县外）"},
        "origin_school": {**_TEXT, "title": "原就读学校（县外）"},
        "change_month": {"title": "转学年月", "type": "string"},
        "reason": {"title": "转学原因", "type": "string", "maxLength": 500},
        "student": {"title": "学生信息", "type": "object"},
    },
    "required": ["kind", "change_month"],
    "additionalProperties": False,
}


def _locked_student(session: Session, actor: User, data: dict[str, Any]) -> Student:
    if "student_id" in data:
        student = students.get_student(session, actor=actor, student_id=data["student_id"])
    elif "id_number" in data:
        student = transfers.find_by_id_number(session, actor=actor, id_number=data["id_number"],
                                              aux=data.get("student_number_aux"))
    else:
        raise RuleViolation(msg("学生：请指定 student_id，或由转入学校填写身份证件号"),
                            details=[{"field": "id_number", "message": msg("身份证件号：必填")}])
    # Locked while the instance starts: a second transfer of the same child waits, then sees this one.
    locked = session.get(Student, student.id, with_for_update={"of": Student}, populate_existing=True)
    assert locked is not None
    return locked


def _start(session: Session, *, actor: User, data: dict[str, Any], forms: dict[str, dict], today: date) -> StartPlan:
    validate_form(START_FORM, data)
    kind = TransferKind(data["kind"])
    if kind == TransferKind.into_county:
        return _start_into_county(session, actor=actor, data=data, forms=forms, today=today)
    student = _locked_student(session, actor, data)
    receiving = None
    if kind == TransferKind.in_county:
        receiving = transfers.receiving_school(session, student=student, code=data.get("receiving_school_code"))
    initiator = transfers.initiating_school(actor, student=student, receiving=receiving)
    process_guards.refuse_if_open_request(session, student=student)
    transfers.check_request(session, student_id=student.id, kind=kind, change_month=data["change_month"],
                            receiving_school_code=receiving.code if receiving else None)
    county = county_of(session, student.school)
    # Codes and names only: the lanes' org units and the instructions; the child's data stays in the tables.
    plan_data = {
        "kind": str(kind), "student_id": student.id, "change_month": data["change_month"],
        "reason": data.get("reason") or "", "county_code": county.code,
        "sending_school_code": student.school.code, "sending_school_name": student.school.name,
        "receiving_school_code": receiving.code if receiving else None,
        # Out of the county: where the child goes, as the school wrote it (no org unit of ours).
        "receiving_school_name": receiving.name if receiving else (data.get("destination_school") or "县外"),
        "initiated_by": "sending" if initiator.id == student.school_id else "receiving",
    }
    return StartPlan(subject=student, subject_type="student", subject_id=student.id, subject_label=student.name,
                     org_unit=initiator, role="school_registrar", data=plan_data, warnings=[])


def _start_into_county(session: Session, *, actor: User, data: dict[str, Any], forms: dict[str, dict],
                       today: date) -> StartPlan:
    validate_form(wrapped("student", forms["student"]), {"student": data.get("student")})
    transfers.check_transfer_in(data["change_month"], student=data["student"])
    student, warnings = students.register_pending(session, actor=actor, data=data["student"], today=today)
    county = county_of(session, student.school)
    plan_data = {
        "kind": str(TransferKind.into_county), "student_id": student.id, "change_month": data["change_month"],
        "reason": data.get("reason") or "", "county_code": county.code,
        "sending_school_name": data.get("origin_school") or "县外",
        "receiving_school_code": student.school.code, "receiving_school_name": student.school.name,
        "initiated_by": "receiving",
    }
    return StartPlan(subject=student, subject_type="student", subject_id=student.id, subject_label=student.name,
                     org_unit=student.school, role="school_registrar", data=plan_data, warnings=warnings)


def _check_transfer(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    """After a revision: a bad month refuses the submission itself, so nothing moves on."""
    transfers.check_request(ctx.session, student_id=int(params["student_id"]), kind=str(params["kind"]),
                            change_month=params["change_month"], receiving_school_code=params.get("receiving_school_code"))
    return True


# `sending_school_code`: the school the request was filed at. An instance of an older definition passes
# none and is not checked; migrated to the current one it passes it (its data always held the code).
def _transfer_student(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    transfers.move_within_county(ctx.session, student_id=int(params["student_id"]),
                                 to_school_code=str(params["receiving_school_code"]),
                                 change_month=str(params["change_month"]), actor=ctx.actor,
                                 instance_id=ctx.instance_id, reason=params.get("reason") or None,
                                 from_school_code=params.get("sending_school_code"))
    return "transferred"


def _transfer_out(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    transfers.move_out_of_county(ctx.session, student_id=int(params["student_id"]),
                                 change_month=str(params["change_month"]), destination=params.get("destination"),
                                 reason=params.get("reason") or None, actor=ctx.actor, instance_id=ctx.instance_id,
                                 from_school_code=params.get("sending_school_code"))
    return str(StudentStatus.transferred_out)


def _activate_transfer_in(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    transfers.activate_transfer_in(ctx.session, student_id=int(params["student_id"]),
                                   change_month=str(params["change_month"]), actor=ctx.actor, now=ctx.now,
                                   instance_id=ctx.instance_id)
    return str(StudentStatus.active)


def _check_certificate(ctx: ServiceContext, workflow_data: dict[str, Any], form_data: dict[str, Any]) -> None:
    from registry.attachments import Attachment

    files = list(ctx.session.scalars(select(Attachment.file_name).where(Attachment.instance_id == ctx.instance_id)
                                     .order_by(Attachment.id)))
    transfers.record_certificate(ctx.session, student_id=int(workflow_data["student_id"]),
                                 certificate_no=form_data.get("certificate_no"), files=files, actor=ctx.actor,
                                 instance_id=ctx.instance_id)


def _revise_transfer_in(ctx: ServiceContext, workflow_data: dict[str, Any], form_data: dict[str, Any]) -> None:
    """The registrar's corrections of a 县外转入; the change month still may not precede the enrolment month."""
    transfers.check_revised_transfer_in(workflow_data["change_month"], student=form_data)
    ctx.warnings = students.revise(ctx.session, actor=ctx.actor, student_id=int(workflow_data["student_id"]),
                                   data=form_data, today=ctx.today, instance_id=ctx.instance_id)
    ctx.subject_label = form_data["name"]


def _withdraw(ctx: ServiceContext, student_id: int, reason: str) -> None:
    transfers.withdraw(ctx.session, student_id=student_id, reason=reason, actor=ctx.actor, instance_id=ctx.instance_id)


FLOW = Flow(
    process_id="student_transfer",
    services={"check_transfer": _check_transfer, "transfer_student": _transfer_student,
              "transfer_out": _transfer_out, "activate_transfer_in": _activate_transfer_in},
    task_actions={"check_transfer_certificate": _check_certificate, "revise_transfer_in": _revise_transfer_in},
    starter=_start,
    withdraw=_withdraw,
)
