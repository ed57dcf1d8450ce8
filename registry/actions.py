"""Every process's registry actions, gathered from registry/flows/ (one module per process).

Service and task-action names are global, as BPMN names them; two modules claiming one name is a
programming error caught at import.
"""

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import steps as engine_steps
from engine.definitions import Definition
from registry.access import scope_clause
from registry.errors import PermissionDenied, RuleViolation, msg
from registry.flows import (
    Flow,
    Service,
    ServiceContext,
    StartPlan,
    TaskAction,
    Withdrawal,
    annual_cycle,
    batch_intake,
    common,
    data_release,
    key_field_change,
    spot_check,
    spot_check_school,
    status_change,
    student_intake,
    student_transfer,
)
from registry.forms import validate_form
from registry.org_units import OrgKind, OrgUnit
from registry.users import ROLE_LABELS, Role, User

__all__ = ["REGISTERED", "SERVICES", "STARTERS", "TASK_ACTIONS", "WITHDRAWALS", "ServiceContext", "StartPlan",
           "generic_plan", "starter_for", "starting_role", "starting_units"]

FLOWS: tuple[Flow, ...] = (common.FLOW, student_intake.FLOW, batch_intake.FLOW, student_transfer.FLOW,
                           key_field_change.FLOW, status_change.FLOW, data_release.FLOW,
                           spot_check.FLOW, spot_check_school.FLOW, annual_cycle.FLOW)


def _merged(kind: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for part in parts:
        clash = merged.keys() & part.keys()
        if clash:
            raise RuntimeError(f"{kind} defined twice: {sorted(clash)}")
        merged.update(part)
    return merged


SERVICES: dict[str, Service] = _merged("service", [flow.services for flow in FLOWS])
TASK_ACTIONS: dict[str, TaskAction] = _merged("task action", [flow.task_actions for flow in FLOWS])
STARTERS: dict[str, Callable[..., StartPlan]] = {f.process_id: f.starter for f in FLOWS if f.starter is not None}
WITHDRAWALS: dict[str, Withdrawal] = {f.process_id: f.withdraw for f in FLOWS if f.withdraw is not None}


# Processes a flow module speaks for: without a starter there, they are started by the system only.
REGISTERED: frozenset[str] = frozenset(f.process_id for f in FLOWS if f.process_id)


def starter_for(process_id: str) -> Callable[..., StartPlan] | None:
    """The registered starter of a process; None for one no flow module names (made in the modeler from a
    template or imported as a .bpmn file): `generic_plan` starts it."""
    starter = STARTERS.get(process_id)
    if starter is None and process_id in REGISTERED:
        raise RuleViolation(msg("流程 {process_id} 不能直接发起", process_id=process_id),
                            details=[{"field": "process_id", "message": msg("不能直接发起")}])
    return starter


def starting_role(definition: Definition) -> str | None:
    """Who starts a process without a registered starter: the role of the lane of its first user task
    after the start event (the person who starts it is the one who does that first step)."""
    first = engine_steps.first_human_task(definition)
    info = definition.user_tasks.get(first) if first else None
    return info.lane if info is not None and info.lane in Role.__members__ else None


def starting_units(session: Session, *, actor: User, role: str) -> list[OrgUnit]:
    """Where `actor` may start such a process: each unit at which they hold `role`, and the schools below it."""
    units = {g.org_unit.id: g.org_unit for g in actor.grants if g.role == role}
    if units:
        for school in session.scalars(select(OrgUnit).where(OrgUnit.kind == OrgKind.school,
                                                           scope_clause(actor, OrgUnit.path, roles=[role]))):
            units.setdefault(school.id, school)
    return sorted(units.values(), key=lambda u: (len(u.path), u.code))


def generic_plan(session: Session, *, actor: User, definition: Definition, data: dict[str, Any],
                 org_unit: str | None) -> StartPlan:
    """The start of a process no flow module names. The role is `starting_role`; the instance belongs to
    the starter's own unit, or to `org_unit` (a code) within their scope when they have several; the data
    must match the start event's form, or be empty when it names none. No subject: the workflow data holds
    what the start form asked."""
    role = starting_role(definition)
    if role is None:
        raise RuleViolation(msg("流程“{name}”开始后没有由人办理的环节，不能手工发起", name=definition.name),
                            details=[{"field": "process_id", "message": msg("不能手工发起")}])
    label = msg(ROLE_LABELS[Role(role)])
    units = starting_units(session, actor=actor, role=role)
    if not units:
        raise PermissionDenied(msg("只有{role}可以发起流程“{name}”", role=label, name=definition.name))
    code = (org_unit or "").strip()
    if code:
        chosen = next((u for u in units if u.code == code), None)
        if chosen is None:
            raise RuleViolation(msg("办理单位：{code} 不存在或不在您（{role}）的职责范围内", code=code, role=label),
                                details=[{"field": "org_unit", "message": msg("不在职责范围内")}])
    else:
        own = {g.org_unit.id: g.org_unit for g in actor.grants if g.role == role}
        if len(own) > 1:
            raise RuleViolation(msg("办理单位：您在多个单位担任{role}，请选择一个", role=label),
                                details=[{"field": "org_unit", "message": msg("请选择办理单位")}])
        chosen = next(iter(own.values()))
    if definition.start_form is not None:
        validate_form(definition.forms[definition.start_form], data)
    elif data:
        raise RuleViolation(msg("启动数据：此流程没有启动表单，不接受任何数据"),
                            details=[{"field": "data", "message": msg("此流程不接受启动数据")}])
    return StartPlan(subject=None, subject_type=None, subject_id=None, subject_label=definition.name,
                     org_unit=chosen, role=role, data=dict(data), warnings=[], generic=True)
