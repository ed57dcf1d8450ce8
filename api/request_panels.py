"""What a task page shows beside the decision for a change request: for key_field_change each
requested field as recorded and as asked (with the county-wide check of a new ID number), for a
graduation list the listed students. Plus the values a revision form starts from."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from registry import graduation, key_field_requests
from registry.users import User
from registry.workflows import HumanTask


@dataclass(frozen=True)
class Panel:
    template: str
    context: dict[str, Any]
    form_values: dict[str, Any] | None = None


STATUS_FIELDS = ("to_status", "effective_month", "reason")


def panel_for(session: Session, *, task: HumanTask, user: User, data: dict[str, Any]) -> Panel | None:
    """The caller has checked that `user` may see the task; `data` is the open task's workflow data."""
    instance = task.instance
    if instance.process_id == "key_field_change":
        request = key_field_requests.for_instance(session, instance_id=instance.id)
        if request is None:
            return None
        revising = task.status == "open" and task.task_id == "revise_application"
        return Panel("_panel_key_field_change.html",
                     {"change": key_field_requests.review_of(session, request=request, actor=user)},
                     form_values=key_field_requests.form_values(request) if revising else None)
    if instance.process_id == "status_change" and instance.subject_type == "graduation_batch" and instance.subject_id:
        batch = graduation.get_batch(session, actor=user, batch_id=instance.subject_id)
        return Panel("_panel_graduation.html", {"graduation": graduation.to_read(session, batch, actor=user)})
    if instance.process_id == "status_change" and task.status == "open" and task.task_id == "revise_change":
        # No panel: the change is in the instructions; the revision form starts from it.
        return Panel("", {}, form_values={k: data[k] for k in STATUS_FIELDS if k in data})
    return None
