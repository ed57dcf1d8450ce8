"""JSON shapes of the API (DESIGN.md "Contracts")."""

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from api.i18n import translated
from registry.access import mask_id_number, mask_phone
from registry.audit import AuditEntry
from registry.rules.findings import Finding
from registry.settings import get_settings
from registry.students import Student, to_read
from registry.users import User
from registry.workflows import HumanTask, ProcessInstance


class StrictBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataBody(StrictBody):
    data: dict[str, Any] = {}


def local_today() -> date:
    """Today where the county is: a date rule (到期即锁, future birth dates) follows the local calendar."""
    return datetime.now(ZoneInfo(get_settings().display_timezone)).date()


def findings(items: list[Finding]) -> list[dict[str, str]]:
    # Warnings in the request's language, like error messages (registry/errors.py).
    return [{"field": f.field, "code": f.code, "message": translated(f.message), "severity": f.severity} for f in items]


def task_read(task: HumanTask) -> dict[str, Any]:
    return {
        "id": task.id,
        "process_id": task.process_id,
        "task_id": task.task_id,
        "title": task.title,
        "role": task.role,
        "org_unit": task.org_unit.as_ref(),
        "due_at": task.due_at.isoformat() if task.due_at else None,
        "overdue": task.overdue,
        "status": task.status,
        "claimed_by": task.claimed_by.username if task.claimed_by else None,
        "instance_id": task.instance_id,
        "subject": {"type": task.instance.subject_type, "id": task.instance.subject_id,
                    "label": task.instance.subject_label},
        "created_at": task.created_at.isoformat(),
        "completed_at": task.completed_at.isoformat() if task.completed_at else None,
        "outcome": task.outcome,
    }


def instance_read(instance: ProcessInstance) -> dict[str, Any]:
    return {
        "id": instance.id,
        "process_id": instance.process_id,
        "version": instance.version.version,
        "status": instance.status,
        "subject": {"type": instance.subject_type, "id": instance.subject_id, "label": instance.subject_label},
        "org_unit": instance.org_unit.as_ref(),
        "started_at": instance.started_at.isoformat(),
        "ended_at": instance.ended_at.isoformat() if instance.ended_at else None,
    }


def history_read(entry: AuditEntry, *, mask: bool = False) -> dict[str, Any]:
    """One change: who, when, what (before/after) and why; ID numbers masked unless the reader may see them."""
    def masked(values: Any) -> Any:
        if not (mask and isinstance(values, dict)):
            return values
        def one(key: str, value: Any) -> Any:
            if not isinstance(value, str):
                return value
            if key in ("id_number", "student_number", "national_student_number"):
                return mask_id_number(value)
            return mask_phone(value) if key == "guardian_phone" else value

        return {k: one(k, v) for k, v in values.items()}

    return {"at": entry.at.isoformat(), "action": entry.action, "actor": entry.actor.username if entry.actor else None,
            "before": masked(entry.before), "after": masked(entry.after), "reason": entry.reason,
            "instance_id": entry.instance_id}


def me_read(user: User) -> dict[str, Any]:
    return {"username": user.username, "display_name": user.display_name,
            "roles": [{"role": g.role, "org_unit": g.org_unit.as_ref()} for g in user.grants]}


def student_read(student: Student, user: User) -> dict[str, Any]:
    return to_read(student, actor=user)
