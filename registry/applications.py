"""A guardian's written application (申请, Art. 14) filed in one step from the registrar's page.

The process starts, the scanned signed application is attached to the initiator's first step
(上传申请书), and that step is submitted — or, when anything is wrong, the caller rolls the whole
unit of work back and nothing has happened. Through the API the same takes three calls: start the
instance, POST the scan to its open task's attachments, complete the task with {"confirmed": true}.
"""

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from registry import attachments, workflows
from registry.access import holds
from registry.errors import Conflict, Message, RuleViolation, msg
from registry.file_store import FileStore
from registry.rules.findings import labelled
from registry.users import User
from registry.workflows import ProcessInstance, TaskStatus


def _refusal(parts: list[RuleViolation | dict[str, str]]) -> RuleViolation:
    details: list[dict[str, Any]] = []
    messages: list[str] = []
    for part in parts:
        if isinstance(part, RuleViolation):
            details += part.details or []
            messages.append(part.message)
        else:
            details.append(part)
            messages.append(part["message"])
    return RuleViolation("；".join(messages), details=details)


def file_with_scan(session: Session, *, actor: User, process_id: str, data: dict[str, Any], scan_name: str,
                   scan: bytes, confirmed: bool, store: FileStore, now: datetime | None = None) -> ProcessInstance:
    """Start `process_id` with `data`, attach `scan` to the initiator's first step and submit it.
    Every problem with the data, the scan and the confirmation is reported at once."""
    problems: list[RuleViolation | dict[str, str]] = []
    if not scan:
        problems.append({"field": "file", "message": msg("申请书扫描件：必填，请上传监护人签字的申请书（PDF、JPEG 或 PNG）")})
    else:
        try:
            attachments.check_file(scan)
        except RuleViolation as err:
            problems.append({"field": "file", "message": _relabelled(err.message, "申请书扫描件")})
    if not confirmed:
        problems.append({"field": "confirmed", "message": msg("请核对后勾选：附件是监护人签字的申请书，申请内容与之一致")})
    try:
        instance, _ = workflows.start_process(session, actor=actor, process_id=process_id, data=data, now=now)
    except RuleViolation as err:
        raise _refusal([err, *problems]) from None
    if problems:
        raise _refusal(problems)
    mine = [t for t in workflows.instance_tasks(session, instance)
            if t.status == TaskStatus.open and holds(actor, t.role, t.org_unit)]
    if len(mine) != 1:
        raise Conflict(msg("流程 {process_id} 的第一步不是发起人上传申请书，不能一步提交", process_id=process_id))
    attachments.attach(session, actor=actor, task_id=mine[0].id, file_name=scan_name, data=scan, store=store)
    workflows.complete_task(session, actor=actor, task_id=mine[0].id, data={"confirmed": True}, now=now)
    return instance


def _relabelled(message: str, label: str) -> str:
    """An attachment's refusal ("附件：文件是空的") said of the field it was uploaded in."""
    detail = message.params.get("detail") if isinstance(message, Message) else None
    return labelled(label, detail) if detail is not None else message
