"""Service-task actions any process may use."""

from typing import Any

from registry import notifications
from registry.flows import Flow, ServiceContext


def _mark_overdue(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    """A deadline timer fired: flag the named open task overdue (the inbox shows it)."""
    ctx.overdue_task_ids.add(str(params["task_id"]))
    return True


def _notify_initiator(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    """Tell whoever started the instance how it ended: `message` is the Chinese sentence to send."""
    message = str(params.get("message") or "").strip()
    if not message:
        raise ValueError("notify_initiator needs a message")
    notifications.notify_initiator(ctx.session, instance_id=ctx.instance_id, message=message, now=ctx.now)
    return True


FLOW = Flow(process_id="", services={"mark_overdue": _mark_overdue, "notify_initiator": _notify_initiator})
