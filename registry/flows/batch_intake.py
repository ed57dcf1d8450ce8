"""batch_intake (批量录入, Art. 13): a school's whole list, checked by a worker, confirmed by the county."""

from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from registry import imports
from registry.errors import RuleViolation, msg
from registry.flows import Flow, ServiceContext, StartPlan
from registry.users import User


def _import_batch(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    return imports.confirm(ctx.session, batch_id=int(params["batch_id"]), excluded_rows=params.get("excluded_rows"),
                           actor=ctx.actor, now=ctx.now, instance_id=ctx.instance_id)


def _close_batch(ctx: ServiceContext, params: dict[str, Any]) -> Any:
    imports.close(ctx.session, batch_id=int(params["batch_id"]), decision=str(params["decision"]),
                  comment=params.get("comment"), actor=ctx.actor, instance_id=ctx.instance_id)
    return str(params["decision"])


def _start(session: Session, *, actor: User, data: dict[str, Any], forms: dict[str, dict], today: date) -> StartPlan:
    batch_id = data.get("batch_id")
    if not isinstance(batch_id, int) or isinstance(batch_id, bool):
        raise RuleViolation(msg("batch_id：请指定已校验的导入批次编号"), details=[{"field": "batch_id", "message": msg("必填，整数")}])
    batch = imports.submit(session, actor=actor, batch_id=batch_id)
    counts = batch.counts or {}
    # Counts and the file name for the tasks' instructions; the rows stay in import_row.
    return StartPlan(subject=batch, subject_type="import_batch", subject_id=batch.id,
                     subject_label=f"{batch.school.name} 名单 {counts.get('new', 0)} 人", org_unit=batch.school,
                     role="school_registrar", warnings=[],
                     data={"batch_id": batch.id, "file_name": batch.file_name, "rows_total": batch.rows_total,
                           **{f"rows_{outcome}": count for outcome, count in counts.items()}})


def _withdraw(ctx: ServiceContext, batch_id: int, reason: str) -> None:
    imports.withdraw(ctx.session, batch_id=batch_id, reason=reason, actor=ctx.actor, instance_id=ctx.instance_id)


FLOW = Flow(
    process_id="batch_intake",
    services={"import_batch": _import_batch, "close_batch": _close_batch},
    starter=_start,
    withdraw=_withdraw,
)
