"""spot_check (抽查, Art. 25, 26): the auditor's check. See registry/spot_checks/ for the rules.

Start data (`POST /api/processes/spot_check/instances {"data": {...}}`, by a county auditor):
`{"school_codes": ["2152019901"]` or `"school_count": 3, "students_per_school": 10,
"focus": ["beneficiaries" | "boarders" | "boarding_allowance", ...], "meal_models": ["1"],
"month": "2026-11", "seed": "20261129", "title": "..."}`; `meal_models`, `month` (default this month),
`seed` (default a random one, recorded) and `title` are optional.

The service task 下发各校 starts one `spot_check_school` instance per sampled school inside this same
unit of work (same transaction, same actor: the auditor), so a failure anywhere leaves nothing behind.
"""

from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from registry.errors import DomainError, InvalidTransition, PermissionDenied, msg
from registry.flows import Flow, ServiceContext, StartPlan
from registry.spot_checks import draw, service
from registry.spot_checks.models import CheckStatus, SpotCheck
from registry.users import User


def _start(session: Session, *, actor: User, data: dict[str, Any], forms: dict[str, dict], today: date) -> StartPlan:
    request = draw.parse_start(session, actor=actor, data=data, today=today)
    check = SpotCheck(county_id=request.county.id, county=request.county, title=request.title, month=request.month,
                      seed=request.seed, params=request.params.as_record(), status=CheckStatus.running,
                      started_by_id=actor.id)
    session.add(check)
    session.flush()
    return StartPlan(subject=check, subject_type="spot_check", subject_id=check.id, subject_label=check.title[:100],
                     org_unit=request.county, role="auditor",
                     data={"spot_check_id": check.id, "county_code": request.county.code, "title": check.title,
                           "month": check.month},
                     warnings=[])


def _draw_sample(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    return draw.record_draw(ctx.session, check_id=int(params["spot_check_id"]), actor=ctx.actor,
                            instance_id=ctx.instance_id, now=ctx.now)


def _open_school_checks(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    # registry.workflows imports this module (through registry.actions): imported where it is used.
    from registry import workflows

    if ctx.actor is None:
        raise PermissionDenied(msg("各校抽查须由监督检查员发起"))
    check = ctx.session.get(SpotCheck, int(params["spot_check_id"]))
    assert check is not None
    opened = 0
    for part in check.parts:
        if part.instance_id is None:
            instance, _ = workflows.start_process(ctx.session, actor=ctx.actor, process_id="spot_check_school",
                                                  data={"check_school_id": part.id}, now=ctx.now)
            part.instance_id = instance.id
            opened += 1
    ctx.session.flush()
    return opened


def _conclude(ctx: ServiceContext, workflow_data: dict[str, Any], form_data: dict[str, Any]) -> None:
    if ctx.actor is None:
        raise PermissionDenied(msg("只有监督检查员可以审结抽查"))
    service.conclude(ctx.session, actor=ctx.actor, check_id=int(workflow_data["spot_check_id"]),
                     conclusion=form_data.get("conclusion"), now=ctx.now, instance_id=ctx.instance_id)


def _withdraw(ctx: ServiceContext, check_id: int, reason: str) -> None:
    """撤回 before any school has acted: the whole check, every school's instance with it."""
    from registry import workflows

    if ctx.actor is None:
        raise PermissionDenied(msg("只有发起人可以撤回"))
    check = service.mark_withdrawn(ctx.session, actor=ctx.actor, check_id=check_id, reason=reason,
                                   instance_id=ctx.instance_id)
    for part in check.parts:
        if part.instance_id is None:
            continue
        try:
            workflows.withdraw(ctx.session, actor=ctx.actor, instance_id=part.instance_id,
                               reason=f"抽查撤回：{reason}", now=ctx.now)
        except DomainError as err:
            raise InvalidTransition(msg("{name}已开始办理本次抽查，不能撤回整个抽查", name=part.school.name)) from err


FLOW = Flow(
    process_id="spot_check",
    services={"draw_spot_check_sample": _draw_sample, "open_spot_check_schools": _open_school_checks},
    task_actions={"conclude_spot_check": _conclude},
    starter=_start,
    withdraw=_withdraw,
)
