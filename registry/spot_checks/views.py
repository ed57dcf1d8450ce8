"""What pages and the JSON API show of a spot check, and the evidence page's saving of answers and scans.

Who sees what: the whole check (its report) is for the county roles that oversee the county
(auditor, 县营养办, 资助中心, 系统管理员); one sampled school's part is for whoever sees that school
(its own staff, its township, the county). Another school's part does not exist for a school (404).
ID numbers are shown in full only to the roles that read them in full (Art. 22-24).
"""

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from registry import attachments, workflows
from registry.access import mask_id_number, may_see_full_id, oversees, sees
from registry.audit import record
from registry.code_tables import load_code_tables
from registry.errors import (
    Conflict,
    InvalidTransition,
    Message,
    NotFound,
    PermissionDenied,
    RuleViolation,
    join_messages,
    msg,
)
from registry.file_store import FileStore
from registry.org_units import OrgUnit
from registry.schools import School
from registry.spot_checks import draw, service
from registry.spot_checks.models import (
    CHECK_STATUS_LABELS,
    FINDING_LABELS,
    FOCUS_LABELS,
    PART_STATUS_LABELS,
    VERIFICATION_LABELS,
    CheckStatus,
    FindingKind,
    Focus,
    PartStatus,
    SpotCheck,
    SpotCheckSchool,
    SpotCheckStudent,
)
from registry.users import User
from registry.workflows import HumanTask, TaskStatus

# The step of a school's instance that each page serves, by BPMN task id.
STEPS = {"provide_evidence": "evidence", "record_findings": "findings", "rectify": "rectification"}
STEP_LABELS = {"provide_evidence": "逐人填写抽查材料", "record_findings": "逐人记录核查结果", "rectify": "填写整改情况"}


def get_check(session: Session, *, actor: User, check_id: int) -> SpotCheck:
    check = session.get(SpotCheck, check_id)
    if check is None or not oversees(actor, check.county):
        raise NotFound(msg("找不到抽查 {check_id}", check_id=check_id))
    return check


def list_checks(session: Session, *, actor: User, limit: int = 200) -> list[SpotCheck]:
    """The checks of the counties the caller oversees, newest first."""
    rows = session.scalars(select(SpotCheck).options(selectinload(SpotCheck.parts))
                           .order_by(SpotCheck.id.desc()).limit(limit))
    return [c for c in rows if oversees(actor, c.county)]


def may_see_report(actor: User, part: SpotCheckSchool) -> bool:
    return oversees(actor, part.check.county)


def county_schools(session: Session, *, county: OrgUnit) -> list[dict[str, str]]:
    """The schools a check may name, with their 供餐模式, by code."""
    codes = load_code_tables()
    rows = session.scalars(select(School).join(School.org_unit).where(OrgUnit.path.startswith(county.path))
                           .order_by(OrgUnit.code))
    return [{"code": s.org_unit.code, "name": s.org_unit.name,
             "meal_model": codes.label("meal_model", s.meal_model or "") or "未登记"} for s in rows]


def get_part(session: Session, *, actor: User, part_id: int) -> SpotCheckSchool:
    part = session.get(SpotCheckSchool, part_id)
    if part is None or not sees(actor, part.school):
        raise NotFound(msg("找不到抽查学校 {part_id}", part_id=part_id))
    return part


def open_task(session: Session, part: SpotCheckSchool) -> HumanTask | None:
    if part.instance_id is None:
        return None
    return session.scalars(select(HumanTask).where(HumanTask.instance_id == part.instance_id,
                                                   HumanTask.status == TaskStatus.open)
                           .order_by(HumanTask.id).limit(1)).first()


def step_for(session: Session, *, actor: User, part: SpotCheckSchool) -> tuple[str, HumanTask] | None:
    """The step the caller may do now on the part's page (evidence, findings, rectification), with its task."""
    task = open_task(session, part)
    if task is None or task.task_id not in STEPS:
        return None
    try:
        workflows.check_may_act(actor, task)
    except (Conflict, PermissionDenied):
        return None
    if task.claimed_by_id not in (None, actor.id):
        return None
    return STEPS[task.task_id], task


def _name(user: User | None) -> str | None:
    return user.display_name if user is not None else None


def _student_row(row: SpotCheckStudent, *, full_id: bool, scans: dict[int, attachments.Attachment]) -> dict[str, Any]:
    student = row.student
    codes = load_code_tables()
    scan = scans.get(row.scan_id) if row.scan_id else None
    recorded = row.recorded or {}
    return {
        "student_id": row.student_id, "name": student.name, "recorded_name": recorded.get("name"),
        "id_number": student.id_number if full_id else mask_id_number(student.id_number),
        "student_number": student.student_number, "grade": recorded.get("grade", student.grade),
        "class_name": recorded.get("class_name", student.class_name),
        "class_label": _class_label(recorded.get("grade", student.grade), recorded.get("class_name", student.class_name)),
        "boarding": codes.label("boarding_mode", str(recorded.get("boarding_mode", student.boarding_mode))),
        "boarding_allowance": bool(recorded.get("boarding_allowance", student.boarding_allowance)),
        "matched": [FOCUS_LABELS[Focus(f)] for f in row.matched],
        "present": row.present, "evidence_note": row.evidence_note,
        "scan": {"id": scan.id, "file_name": scan.file_name, "url": f"/api/attachments/{scan.id}"} if scan else None,
        "finding": row.finding, "finding_label": FINDING_LABELS[FindingKind(row.finding)] if row.finding else None,
        "finding_note": row.finding_note,
    }


def _meal_model(session: Session, part: SpotCheckSchool) -> str:
    record_ = session.get(School, part.school_id)
    code = record_.meal_model if record_ is not None else None
    return (load_code_tables().label("meal_model", code) if code else None) or "未登记"


def _class_label(grade: int, class_name: str) -> str:
    """三年级（1）班 as it is; a class name without its grade (1班) gets the grade in front."""
    return class_name if "年级" in class_name else f"{grade}年级{class_name}"


def part_view(session: Session, *, actor: User, part: SpotCheckSchool) -> dict[str, Any]:
    """One school's part as the caller may see it: its students, evidence, findings and rectifications."""
    full_id = may_see_full_id(actor, part.school)
    scan_ids = [r.scan_id for r in part.students if r.scan_id]
    scans = {a.id: a for a in session.scalars(select(attachments.Attachment)
                                               .where(attachments.Attachment.id.in_(scan_ids)))} if scan_ids else {}
    rows = [_student_row(r, full_id=full_id, scans=scans) for r in part.students]
    names = {r["student_id"]: r for r in rows}
    tasks = workflows.instance_tasks(session, part.instance) if part.instance is not None else []
    rectify_tasks = [t for t in tasks if t.task_id == "rectify"]
    rounds = []
    for index, r in enumerate(part.rectifications):
        task = rectify_tasks[index] if index < len(rectify_tasks) else None
        rounds.append({
            "round": r.round, "report": r.report, "submitted_by": _name(r.submitted_by), "submitted_at": r.submitted_at,
            "due_at": task.due_at if task else None,
            "late": bool(task and task.due_at and r.submitted_at > task.due_at),
            "measures": [{"student_id": int(sid), "name": names[int(sid)]["name"] if int(sid) in names else sid,
                          "finding_label": names[int(sid)]["finding_label"] if int(sid) in names else None,
                          "measure": text} for sid, text in r.measures.items()],
            "decision": r.decision, "decision_label": VERIFICATION_LABELS.get(r.decision or ""),
            "comment": r.comment, "verified_by": _name(r.verified_by), "verified_at": r.verified_at})
    open_ = [t for t in tasks if t.status == TaskStatus.open]
    return {
        "id": part.id, "check_id": part.check_id, "title": part.check.title, "month": part.check.month,
        "school": part.school.as_ref(), "meal_model": _meal_model(session, part), "status": part.status,
        "status_label": PART_STATUS_LABELS[PartStatus(part.status)], "instance_id": part.instance_id,
        "eligible": part.eligible, "sampled": len(rows), "took_all": len(rows) == part.eligible,
        "evidence_by": _name(part.evidence_by), "evidence_at": part.evidence_at,
        "findings_by": _name(part.findings_by), "findings_at": part.findings_at,
        "findings_summary": part.findings_summary, "closed_at": part.closed_at,
        "findings": sum(1 for r in rows if r["finding"] not in (None, FindingKind.none)),
        "students": rows, "rectifications": rounds,
        "open_tasks": [{"id": t.id, "task_id": t.task_id, "title": t.title, "role": t.role, "due_at": t.due_at,
                        "overdue": t.overdue, "claimed_by": _name(t.claimed_by)} for t in open_],
        "overdue": [{"task_id": t.task_id, "title": t.title, "due_at": t.due_at, "status": t.status,
                     "completed_at": t.completed_at} for t in tasks if t.overdue],
    }


def report(session: Session, *, actor: User, check_id: int) -> dict[str, Any]:
    """The check's report: parameters, seed, sample, evidence, findings and rectifications, per school."""
    check = get_check(session, actor=actor, check_id=check_id)
    params = check.params
    codes = load_code_tables()
    schools = [part_view(session, actor=actor, part=p) for p in check.parts]
    students = [s for p in schools for s in p["students"]]
    by_kind: dict[str, int] = {}
    for s in students:
        if s["finding"] and s["finding"] != FindingKind.none:
            by_kind[s["finding_label"]] = by_kind.get(s["finding_label"], 0) + 1
    return {
        "id": check.id, "title": check.title, "status": check.status,
        "status_label": CHECK_STATUS_LABELS[CheckStatus(check.status)], "county": check.county.as_ref(),
        "month": check.month, "seed": str(check.seed), "instance_id": check.instance_id,
        "params": {**params, "focus_labels": [FOCUS_LABELS[Focus(f)] for f in params["focus"]],
                   "meal_model_labels": [codes.label("meal_model", m) or m for m in params.get("meal_models") or []]},
        "notes": check.notes, "eligible_schools": len(check.eligible_schools),
        "named_schools": [f"{p['school']['name']}（{p['school']['code']}）" for p in schools]
        if params.get("school_codes") else [],
        "started_by": _name(check.started_by), "started_at": check.started_at,
        "conclusion": check.conclusion, "concluded_by": _name(check.concluded_by), "concluded_at": check.concluded_at,
        "reproducible": reproducible(check), "schools": schools,
        "totals": {"schools": len(schools), "students": len(students),
                   "present": sum(1 for s in students if s["present"] is True),
                   "absent": sum(1 for s in students if s["present"] is False),
                   "with_findings": sum(by_kind.values()), "findings_by_kind": by_kind,
                   "schools_with_findings": sum(1 for p in schools if p["findings"]),
                   "closed": sum(1 for p in schools if p["status"] == PartStatus.closed)},
    }


def print_report(session: Session, *, actor: User, check_id: int) -> dict[str, Any]:
    """The report for printing: a copy of student data leaving the screen is on record (Art. 24)."""
    shown = report(session, actor=actor, check_id=check_id)
    record(session, actor=actor, action="spot_check.print", object_type="spot_check", object_id=check_id,
           instance_id=shown["instance_id"])
    return shown


def reproducible(check: SpotCheck) -> bool:
    """Re-running the draw from the check's own record (seed, schools chosen among, candidates) gives its sample."""
    if not check.parts:
        return False
    try:
        again = draw.redraw(check)
    except (KeyError, ValueError):
        return False
    return {s.code: s.student_ids for s in again.schools} == draw.recorded_sample(check)


def check_summary(check: SpotCheck) -> dict[str, Any]:
    return {"id": check.id, "title": check.title, "status": check.status,
            "status_label": CHECK_STATUS_LABELS[CheckStatus(check.status)], "month": check.month,
            "seed": str(check.seed), "county": check.county.as_ref(), "started_at": check.started_at,
            "schools": len(check.parts), "closed": sum(1 for p in check.parts if p.status == PartStatus.closed),
            "instance_id": check.instance_id}


def save_evidence(session: Session, *, actor: User, part_id: int, answers: list[dict[str, Any]],
                  scans: dict[int, tuple[str, bytes]], store: FileStore, now: datetime | None = None) -> SpotCheckSchool:
    """The evidence page's 保存 (and the first half of its 提交): new scans become attachments of the
    school's instance, answers are kept on the sampled students. Every scan is checked before any is
    stored: a bad one leaves everything as it was (RuleViolation naming that student's scan)."""
    part = service.locked_part(session, part_id)
    if not sees(actor, part.school):
        raise NotFound(msg("找不到抽查学校 {part_id}", part_id=part_id))
    task = open_task(session, part)
    if task is None or task.task_id != "provide_evidence":
        raise InvalidTransition(msg("学校提供材料环节已结束"))
    workflows.check_may_act(actor, task)
    if task.claimed_by_id not in (None, actor.id):
        raise Conflict(msg("任务已被他人认领"))
    listed = {r.student_id: r for r in part.students}
    problems = []
    for student_id, (_, data) in sorted(scans.items()):
        if student_id not in listed:
            raise RuleViolation(msg("学生 {student_id} 不在本校的抽查名单中", student_id=student_id),
                                details=[{"field": "students", "message": msg("不在名单中")}])
        try:
            attachments.check_file(data)
        except RuleViolation as err:
            name = listed[student_id].recorded.get("name") or student_id
            problems.append({"field": f"scan_{student_id}", "message": msg("{name}：{problem}",
                                                                           name=name, problem=_detail_of(err.message))})
    if problems:
        raise RuleViolation(msg("扫描件有误：{problems}", problems=join_messages(p["message"] for p in problems)),
                            details=problems)
    answers = [dict(a) for a in answers]
    by_student = {a["student_id"]: a for a in answers}
    for student_id, (file_name, data) in sorted(scans.items()):
        attachment = attachments.attach(session, actor=actor, task_id=task.id, file_name=file_name, data=data,
                                        store=store)
        by_student.setdefault(student_id, {"student_id": student_id})["scan_attachment_id"] = attachment.id
    service.apply_evidence(session, part=part, answers=list(by_student.values()))
    session.flush()
    record(session, actor=actor, action="spot_check.evidence_save", object_type="spot_check_school", object_id=part.id,
           org_unit_id=part.school_id, instance_id=part.instance_id,
           after={str(r.student_id): {"present": r.present, "scan": r.scan_id, "note": r.evidence_note}
                  for r in part.students})
    return part


def evidence_payload(part: SpotCheckSchool) -> dict[str, Any]:
    """The saved answers as the evidence task takes them: {"spot_check_evidence": {"students": [...]}}."""
    students = []
    for row in part.students:
        entry: dict[str, Any] = {"student_id": row.student_id}
        if row.present is not None:
            entry["present"] = row.present
        if row.evidence_note:
            entry["note"] = row.evidence_note
        if row.scan_id:
            entry["scan_attachment_id"] = row.scan_id
        students.append(entry)
    return {"spot_check_evidence": {"students": students}}


def _detail_of(message: str) -> str:
    """What an attachment's refusal ("附件：文件是空的") says, without its label."""
    if isinstance(message, Message) and "detail" in message.params:
        return message.params["detail"]
    return message.removeprefix("附件：")
