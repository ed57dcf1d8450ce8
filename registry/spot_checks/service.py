"""What each step of a spot check writes: the school's evidence, the auditor's findings, a round of
rectification and its verification, closing a school and concluding the check, withdrawing it.

Who may act is decided by the BPMN lanes (the steps run inside `workflows.complete_task`, which has
checked the lane); these functions check the state and the content, write, and record the audit entry.

Rules:
- Evidence, per sampled student: 在校 yes/no; a scan of the child's paper file (纸质档案, Art. 26 核对
  电子与纸质档案材料) or a note saying why there is none; a note when the child is not at school.
- Findings, per student: 无问题 or one of 不在校 / 信息不符 / 不应享受 / 其他, each with a note saying
  what is wrong (the school has to act on it). Any finding sends the school to rectification.
- Rectification: a report, and for every student with a finding the measure taken. The auditor
  accepts it or returns it with a comment; each return opens another round with a fresh deadline.
- A check is concluded (审结) by the auditor once every sampled school is closed.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.audit import record
from registry.errors import InvalidTransition, NotFound, RuleViolation, join_messages, msg
from registry.spot_checks.models import (
    FINDING_LABELS,
    PART_STATUS_LABELS,
    CheckStatus,
    FindingKind,
    PartStatus,
    SpotCheck,
    SpotCheckRectification,
    SpotCheckSchool,
    SpotCheckStudent,
)
from registry.users import User

NOTE_MAX = 500
REPORT_MAX = 2000


def locked_part(session: Session, part_id: int) -> SpotCheckSchool:
    part = session.get(SpotCheckSchool, part_id, with_for_update={"of": SpotCheckSchool}, populate_existing=True)
    if part is None:
        raise NotFound(msg("找不到抽查学校 {part_id}", part_id=part_id))
    return part


def _expect(part: SpotCheckSchool, *statuses: PartStatus) -> None:
    if part.status not in statuses:
        raise InvalidTransition(msg("抽查已进入其他环节，请刷新页面"))


def _problem(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def _refuse(what: str, problems: list[dict[str, str]]) -> RuleViolation:
    return RuleViolation(msg("{what}有误：{problems}", what=what, problems=join_messages(p["message"] for p in problems)),
                         details=problems)


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _by_student(part: SpotCheckSchool, entries: list[dict[str, Any]], what: str) -> dict[SpotCheckStudent, dict[str, Any]]:
    rows = {row.student_id: row for row in part.students}
    out: dict[SpotCheckStudent, dict[str, Any]] = {}
    for entry in entries:
        row = rows.get(entry.get("student_id"))  # type: ignore[arg-type]
        if row is None:
            raise RuleViolation(msg("{what}：学生 {student_id} 不在本校的抽查名单中", what=what, student_id=entry.get('student_id')),
                                details=[_problem("students", msg("学生不在抽查名单中"))])
        out[row] = entry
    return out


def _name(row: SpotCheckStudent) -> str:
    return str(row.recorded.get("name") or row.student_id)


# Evidence ---------------------------------------------------------------------------------------------

def apply_evidence(session: Session, *, part: SpotCheckSchool, answers: list[dict[str, Any]]) -> None:
    """Answers as typed so far, kept until submitted: present (bool or None), note, scan_attachment_id.
    A scan must be an attachment of the school's own instance."""
    from registry.attachments import Attachment  # attachments → workflows → actions → flows → this module

    _expect(part, PartStatus.evidence)
    given = _by_student(part, answers, "学校提供的材料")
    wanted = {e["scan_attachment_id"] for e in answers if e.get("scan_attachment_id")}
    owned = set(session.scalars(select(Attachment.id).where(Attachment.id.in_(wanted),
                                                            Attachment.instance_id == part.instance_id))) if wanted else set()
    problems = [_problem(f"scan_{row.student_id}", msg("{row}：附件 {scan_attachment_id} 不是本次抽查上传的扫描件",
                                                       row=_name(row), scan_attachment_id=entry['scan_attachment_id']))
                for row, entry in given.items()
                if entry.get("scan_attachment_id") and entry["scan_attachment_id"] not in owned]
    if problems:
        raise _refuse(msg("学校提供的材料"), problems)
    for row, entry in given.items():
        if "present" in entry:
            row.present = entry["present"] if isinstance(entry["present"], bool) else None
        if "note" in entry:
            row.evidence_note = _text(entry["note"])
        if entry.get("scan_attachment_id"):
            row.scan_id = entry["scan_attachment_id"]


def evidence_problems(part: SpotCheckSchool) -> list[dict[str, str]]:
    problems = []
    for row in part.students:
        if row.present is None:
            problems.append(_problem(f"present_{row.student_id}", msg("{row}：请确认是否在校", row=_name(row))))
        if row.present is False and not row.evidence_note:
            problems.append(_problem(f"note_{row.student_id}", msg("{row}：不在校，请在说明中写明去向或原因", row=_name(row))))
        if row.scan_id is None and not row.evidence_note:
            problems.append(_problem(f"scan_{row.student_id}", msg("{row}：请上传纸质档案扫描件，没有纸质档案的请在说明中写明原因",
                                                                   row=_name(row))))
    return problems


def submit_evidence(session: Session, *, actor: User | None, part_id: int, answers: list[dict[str, Any]],
                    now: datetime, instance_id: int) -> None:
    part = locked_part(session, part_id)
    apply_evidence(session, part=part, answers=answers)
    problems = evidence_problems(part)
    if problems:
        raise _refuse(msg("学校提供的材料"), problems)
    part.status = PartStatus.findings
    part.evidence_by_id, part.evidence_at = (actor.id if actor else None), now
    session.flush()
    record(session, actor=actor, action="spot_check.evidence", object_type="spot_check_school", object_id=part.id,
           org_unit_id=part.school_id, instance_id=instance_id,
           after={str(r.student_id): {"present": r.present, "scan": r.scan_id, "note": r.evidence_note}
                  for r in part.students})


# Findings ---------------------------------------------------------------------------------------------

def record_findings(session: Session, *, actor: User | None, part_id: int, entries: list[dict[str, Any]],
                    summary: str | None, now: datetime, instance_id: int) -> None:
    part = locked_part(session, part_id)
    _expect(part, PartStatus.findings)
    given = _by_student(part, entries, "核查结果")
    problems = []
    for row in part.students:
        entry = given.get(row) or {}
        kind, note = entry.get("finding"), _text(entry.get("note"))
        if kind not in FindingKind.__members__:
            problems.append(_problem(f"finding_{row.student_id}", msg("{row}：请选择核查结果", row=_name(row))))
        elif kind != FindingKind.none and not note:
            problems.append(_problem(f"finding_note_{row.student_id}",
                                     msg("{row}：{finding}，请说明发现的问题",
                                         row=_name(row), finding=msg(FINDING_LABELS[FindingKind(kind)]))))
    if problems:
        raise _refuse(msg("核查结果"), problems)
    for row in part.students:
        row.finding, row.finding_note = given[row]["finding"], _text(given[row].get("note"))
    part.findings_summary = _text(summary)
    part.findings_by_id, part.findings_at = (actor.id if actor else None), now
    if any(row.finding != FindingKind.none for row in part.students):
        part.status = PartStatus.rectification
    session.flush()
    record(session, actor=actor, action="spot_check.findings", object_type="spot_check_school", object_id=part.id,
           org_unit_id=part.school_id, instance_id=instance_id, reason=part.findings_summary,
           after={str(r.student_id): {"finding": r.finding, "note": r.finding_note} for r in part.students})


def findings_count(session: Session, *, part_id: int) -> int:
    return session.scalar(select(func.count()).select_from(SpotCheckStudent).where(
        SpotCheckStudent.part_id == part_id, SpotCheckStudent.finding.is_not(None),
        SpotCheckStudent.finding != FindingKind.none)) or 0


# Rectification ----------------------------------------------------------------------------------------

def submit_rectification(session: Session, *, actor: User, part_id: int, report: str | None,
                         measures: list[dict[str, Any]], now: datetime, instance_id: int) -> SpotCheckRectification:
    part = locked_part(session, part_id)
    _expect(part, PartStatus.rectification)
    given = _by_student(part, measures, "整改情况")
    problems = []
    if not _text(report):
        problems.append(_problem("report", msg("整改报告：必填，请写明整改情况")))
    flagged = [row for row in part.students if row.finding not in (None, FindingKind.none)]
    for row in flagged:
        if not _text((given.get(row) or {}).get("measure")):
            problems.append(_problem(f"measure_{row.student_id}", msg("{row}：请写明针对“{finding}”采取的整改措施",
                                                                      row=_name(row), finding=msg(FINDING_LABELS[FindingKind(row.finding)]))))
    if problems:
        raise _refuse(msg("整改情况"), problems)
    round_ = len(part.rectifications) + 1
    rectification = SpotCheckRectification(
        part=part, round=round_, report=_text(report), submitted_by_id=actor.id, submitted_at=now,
        measures={str(row.student_id): _text(given[row]["measure"]) for row in flagged})
    session.add(rectification)
    part.status = PartStatus.verification
    session.flush()
    record(session, actor=actor, action="spot_check.rectification", object_type="spot_check_school",
           object_id=part.id, org_unit_id=part.school_id, instance_id=instance_id,
           after={"round": round_, "report": rectification.report, "measures": rectification.measures})
    return rectification


def record_verification(session: Session, *, actor: User | None, part_id: int, decision: str, comment: str | None,
                        now: datetime, instance_id: int) -> None:
    part = locked_part(session, part_id)
    _expect(part, PartStatus.verification)
    latest = part.rectifications[-1]
    latest.decision, latest.comment = decision, _text(comment)
    latest.verified_by_id, latest.verified_at = (actor.id if actor else None), now
    part.status = PartStatus.rectification if decision == "return" else PartStatus.verification
    session.flush()
    record(session, actor=actor, action="spot_check.verification", object_type="spot_check_school",
           object_id=part.id, org_unit_id=part.school_id, instance_id=instance_id, reason=latest.comment,
           after={"round": latest.round, "decision": decision})


def close_part(session: Session, *, actor: User | None, part_id: int, now: datetime, instance_id: int) -> None:
    part = locked_part(session, part_id)
    _expect(part, PartStatus.findings, PartStatus.verification)
    part.status, part.closed_at = PartStatus.closed, now
    session.flush()
    record(session, actor=actor, action="spot_check.school_closed", object_type="spot_check_school",
           object_id=part.id, org_unit_id=part.school_id, instance_id=instance_id,
           after={"findings": findings_count(session, part_id=part.id), "rounds": len(part.rectifications)})


# The check as a whole ---------------------------------------------------------------------------------

def conclude(session: Session, *, actor: User, check_id: int, conclusion: str | None, now: datetime,
             instance_id: int) -> None:
    """审结: the auditor's conclusion, once every sampled school is closed."""
    check = session.get(SpotCheck, check_id, with_for_update={"of": SpotCheck}, populate_existing=True)
    if check is None:
        raise NotFound(msg("找不到抽查 {check_id}", check_id=check_id))
    if check.status != CheckStatus.running:
        raise InvalidTransition(msg("抽查已审结或已撤回"))
    open_parts = [p for p in check.parts if p.status != PartStatus.closed]
    if open_parts:
        names = "、".join(f"{p.school.name}（{PART_STATUS_LABELS[PartStatus(p.status)]}）" for p in open_parts)
        raise RuleViolation(msg("还有 {count} 所学校未办结：{names}；全部办结后才能审结",
                                count=len(open_parts), names=names),
                            details=[_problem("conclusion", msg("还有学校未办结"))])
    if not _text(conclusion):
        raise RuleViolation(msg("抽查结论：必填"), details=[_problem("conclusion", msg("抽查结论：必填"))])
    check.status, check.conclusion = CheckStatus.concluded, _text(conclusion)
    check.concluded_by_id, check.concluded_at = actor.id, now
    session.flush()
    record(session, actor=actor, action="spot_check.conclude", object_type="spot_check", object_id=check.id,
           org_unit_id=check.county_id, instance_id=instance_id, reason=check.conclusion)


def mark_withdrawn(session: Session, *, actor: User | None, check_id: int, reason: str, instance_id: int) -> SpotCheck:
    check = session.get(SpotCheck, check_id, with_for_update={"of": SpotCheck}, populate_existing=True)
    if check is None or check.status != CheckStatus.running:
        raise InvalidTransition(msg("抽查已审结或已撤回"))
    check.status = CheckStatus.withdrawn
    for part in check.parts:
        part.status = PartStatus.withdrawn
    session.flush()
    record(session, actor=actor, action="spot_check.withdraw", object_type="spot_check", object_id=check.id,
           org_unit_id=check.county_id, instance_id=instance_id, reason=reason)
    return check
