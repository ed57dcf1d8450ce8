"""Every process's registry actions, gathered from registry/flows/ (one module per process).

Service and task-action names are global, as BPMN names them; two modules claiming one name is a
programming error caught at import.
"""

from collections.abc import Callable
from typing import Any

from registry.errors import RuleViolation
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

__all__ = ["SERVICES", "STARTERS", "TASK_ACTIONS", "WITHDRAWALS", "ServiceContext", "StartPlan", "starter_for"]

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


def starter_for(process_id: str) -> Callable[..., StartPlan]:
    starter = STARTERS.get(process_id)
    if starter is None:
        raise RuleViolation(f"流程 {process_id} 不能直接发起", details=[{"field": "process_id", "message": "不能直接发起"}])
    return starter
