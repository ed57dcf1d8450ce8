"""What a task page shows beside the decision for a change request: for key_field_change each
requested field as recorded and as asked (with the county-wide check of a new ID number), for a
graduation list the listed students, for a data release the request. Plus the values a revision form
starts from, or the page a revision is done on."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from registry import annual_cycle, data_releases, graduation, key_field_requests
from registry.db import utcnow
from registry.spot_checks import views as spot_checks
from registry.users import User
from registry.workflows import HumanTask


@dataclass(frozen=True)
class Panel:
    template: str
    context: dict[str, Any]
    form_values: dict[str, Any] | None = None
    # A step whose form the generic page cannot draw (lists of choices) is done on its own page.
    form_url: str | None = None
    form_label: str = "修改申请"


STATUS_FIELDS = ("to_status", "boarding_mode", "boarding_allowance", "effective_month", "reason")


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
    if instance.process_id == data_releases.PROCESS_ID:
        release = data_releases.for_instance(session, instance_id=instance.id)
        if release is None:
            return None
        revising = task.status == "open" and task.task_id in data_releases.REVISION_TASKS
        return Panel("_panel_data_release.html",
                     {"release": data_releases.to_read(session, release, actor=user, now=utcnow())},
                     form_url=f"/releases/{release.id}/revise" if revising else None)
    if instance.process_id == annual_cycle.PROCESS_ID:
        cycle = annual_cycle.cycle_of(session, instance_id=instance.id)
        if cycle is None:
            return None
        return Panel("_panel_annual_cycle.html", {"school_code": instance.org_unit.code,
                                                  "school_name": instance.org_unit.name, "year": cycle.school_year,
                                                  "cycle": cycle,
                                                  "new_students": annual_cycle.new_student_counts(
                                                      session, school_id=cycle.school_id, year=cycle.school_year)})
    if instance.process_id in ("spot_check", "spot_check_school") and instance.subject_id:
        return _spot_check_panel(session, task=task, user=user)
    if instance.process_id == "status_change" and instance.subject_type == "graduation_batch" and instance.subject_id:
        batch = graduation.get_batch(session, actor=user, batch_id=instance.subject_id)
        return Panel("_panel_graduation.html", {"graduation": graduation.to_read(session, batch, actor=user)})
    if instance.process_id == "status_change" and task.status == "open" and task.task_id in ("revise_change",
                                                                                              "revise_boarding"):
        # No panel: the change is in the instructions; the revision form starts from it.
        return Panel("", {}, form_values={k: data[k] for k in STATUS_FIELDS if k in data})
    return None


def _spot_check_panel(session: Session, *, task: HumanTask, user: User) -> Panel:
    """A check's progress beside 审结; a school's sample beside its steps, whose per-student forms are on its own page."""
    instance = task.instance
    if instance.process_id == "spot_check":
        check = spot_checks.get_check(session, actor=user, check_id=instance.subject_id)  # type: ignore[arg-type]
        return Panel("_panel_spot_check.html", {"check": spot_checks.check_summary(check)})
    part = spot_checks.get_part(session, actor=user, part_id=instance.subject_id)  # type: ignore[arg-type]
    own_page = task.status == "open" and task.task_id in spot_checks.STEPS
    return Panel("_panel_spot_check.html", {"part": spot_checks.part_view(session, actor=user, part=part),
                                            "task_id": task.task_id},
                 form_url=f"/spot-checks/schools/{part.id}" if own_page else None,
                 form_label=spot_checks.STEP_LABELS.get(task.task_id, "办理"))
