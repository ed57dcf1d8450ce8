"""Service-task actions any process may use."""

from typing import Any

from registry.flows import Flow, ServiceContext


def _mark_overdue(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    """A deadline timer fired: flag the named open task overdue (the inbox shows it)."""
    ctx.overdue_task_ids.add(str(params["task_id"]))
    return True


FLOW = Flow(process_id="", services={"mark_overdue": _mark_overdue})
