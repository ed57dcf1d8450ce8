"""The approval sheet (审批表) of a finished instance: what it shows, and the record that it was printed."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import imports, students, workflows
from registry.access import may_see_full_id
from registry.audit import AuditEntry, record
from registry.code_tables import load_code_tables
from registry.db import utcnow
from registry.errors import InvalidTransition, msg
from registry.org_units import OrgKind, OrgUnit, county_of
from registry.users import User
from registry.workflows import DECISION_LABELS, InstanceStatus, ProcessInstance, TaskStatus

PRINTABLE = (InstanceStatus.completed, InstanceStatus.withdrawn)
STATUS_WORDS = {InstanceStatus.running: "进行中", InstanceStatus.suspended: "已暂停", InstanceStatus.error: "出错"}


@dataclass(frozen=True)
class SheetStep:
    title: str
    role: str | None
    actor: str
    opinion: str
    at: datetime | None


@dataclass(frozen=True)
class ApprovalSheet:
    instance: ProcessInstance
    process_name: str
    county: OrgUnit
    school: OrgUnit | None
    subject: list[tuple[str, str]]  # (label, value) in the order printed
    steps: list[SheetStep]
    printed_at: datetime
    full_id: bool


def print_sheet(session: Session, *, actor: User, instance_id: int, now: datetime | None = None) -> ApprovalSheet:
    """The sheet of a completed or withdrawn instance, as the caller may see it (ID numbers masked
    unless their role reads them in full). A running one has no final opinions to sign yet: 409."""
    instance = workflows.get_instance(session, actor=actor, instance_id=instance_id)
    if instance.status not in PRINTABLE:
        raise InvalidTransition(msg("该流程{status}，尚未办结：办结或撤回后才能打印审批表",
                                    status=msg(STATUS_WORDS.get(InstanceStatus(instance.status), ''))))
    full_id = may_see_full_id(actor, instance.org_unit)
    sheet = ApprovalSheet(
        instance=instance, process_name=instance.version.name, county=county_of(session, instance.org_unit),
        school=instance.org_unit if instance.org_unit.kind == OrgKind.school else None,
        subject=_subject(session, actor, instance), steps=_steps(session, instance), printed_at=now or utcnow(),
        full_id=full_id)
    # Art. 24: a printed sheet carries a child's data off the screen; who printed which sheet is on record.
    record(session, actor=actor, action="instance.print", object_type="process_instance", object_id=instance.id,
           org_unit_id=instance.org_unit_id, instance_id=instance.id,
           after={"subject_type": instance.subject_type, "subject_id": instance.subject_id, "full_id": full_id})
    return sheet


def _subject(session: Session, actor: User, instance: ProcessInstance) -> list[tuple[str, str]]:
    if instance.subject_type == "student" and instance.subject_id:
        s = students.to_read(students.get_student_unscoped(session, instance.subject_id), actor=actor)
        return [("姓名", s["name"]), ("性别", load_code_tables().label("sex", s["sex"]) or s["sex"]),
                ("出生日期", str(s["birth_date"])), ("身份证件号", s["id_number"] or ""),
                ("学校", s["school"]["name"]), ("年级班级", f"{s['grade']} 年级 {s['class_name']}"),
                ("入学年月", s["enrolled_month"] or ""), ("学籍状态", s["status_label"])]
    if instance.subject_type == "import_batch" and instance.subject_id:
        b = imports.to_read(imports.get_batch(session, actor=actor, batch_id=instance.subject_id))
        counts: dict[str, Any] = b["counts"]
        rows = [("文件名", b["file_name"]), ("学校", b["school"]["name"]), ("总行数", str(b["rows_total"])),
                ("名单状态", b["status_label"])]
        for outcome, text in (("new", "待入库"), ("imported", "已入库"), ("excluded", "县级排除"),
                              ("invalid", "有错误（不入库）"), ("conflict", "县内重复（不入库）"),
                              ("existing", "已在册（跳过）")):
            if outcome in counts:
                rows.append((text, str(counts[outcome])))
        return rows
    return [("事项", instance.subject_label or "")]


def _steps(session: Session, instance: ProcessInstance) -> list[SheetStep]:
    """The start, every step someone completed, and a withdrawal: one row (and one signature) each."""
    starter = instance.started_by
    role = next((g.role for g in starter.grants if g.org_unit.covers(instance.org_unit)), None) if starter else None
    rows = [SheetStep(title="发起", role=role, actor=starter.display_name if starter else "", opinion="提交",
                      at=instance.started_at)]
    for task in workflows.instance_tasks(session, instance):
        if task.status != TaskStatus.completed:
            continue
        outcome = DECISION_LABELS.get(task.outcome or "", "已提交")
        rows.append(SheetStep(title=task.title, role=task.role,
                              actor=task.completed_by.display_name if task.completed_by else "",
                              opinion=f"{outcome}：{task.comment}" if task.comment else outcome, at=task.completed_at))
    if instance.status == InstanceStatus.withdrawn:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.instance_id == instance.id,
                                                         AuditEntry.action == "process.withdraw")
                                .order_by(AuditEntry.id.desc()).limit(1)).first()
        rows.append(SheetStep(title="撤回", role=role, actor=entry.actor.display_name if entry and entry.actor else "",
                              opinion=f"撤回：{entry.reason}" if entry and entry.reason else "撤回",
                              at=entry.at if entry else instance.ended_at))
    return rows
