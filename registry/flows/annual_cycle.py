"""annual_cycle (秋季学期实名制工作, Art. 13, 16, 17): started for each beneficiary school by the beat
(registry/annual_cycle.py `arm`), never by a user; it waits on its timer start event for the county's
start day. The rules: registry/annual_cycle.py."""

from typing import Any

from registry import annual_cycle
from registry.flows import Flow, ServiceContext


def _confirm_new_students(ctx: ServiceContext, workflow_data: dict[str, Any], form_data: dict[str, Any]) -> None:
    annual_cycle.confirm_new_students(ctx.session, actor=ctx.actor, instance_id=ctx.instance_id,
                                      comment=form_data.get("comment"))


def _check_roster(ctx: ServiceContext, workflow_data: dict[str, Any], form_data: dict[str, Any]) -> None:
    annual_cycle.check_roster_scan(ctx.session, actor=ctx.actor, instance_id=ctx.instance_id,
                                   scan_ids=list(form_data.get("scan") or []))


def _submit_report(ctx: ServiceContext, workflow_data: dict[str, Any], form_data: dict[str, Any]) -> None:
    annual_cycle.submit_report(ctx.session, actor=ctx.actor, instance_id=ctx.instance_id, now=ctx.now)


def _file_roster(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    annual_cycle.file_roster(ctx.session, actor=ctx.actor, instance_id=ctx.instance_id, now=ctx.now)
    return True


FLOW = Flow(
    process_id="annual_cycle",
    services={"file_cycle_roster": _file_roster},
    task_actions={"confirm_new_students": _confirm_new_students, "check_roster_scan": _check_roster,
                  "submit_cycle_report": _submit_report},
)
