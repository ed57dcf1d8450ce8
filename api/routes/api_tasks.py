from typing import Any

from fastapi import APIRouter, Query

from api.deps import CurrentUser, DbSession, Offset, RowId
from api.schemas import DataBody, findings, task_read
from registry import workflows

router = APIRouter(prefix="/api/tasks", tags=["tasks"])


@router.get("")
def list_tasks(session: DbSession, user: CurrentUser, status: str = Query("open", pattern="^(open|completed)$"),
               limit: int = Query(100, ge=1, le=500), offset: Offset = 0) -> dict[str, Any]:
    rows, total = workflows.list_tasks(session, actor=user, status=status, limit=limit, offset=offset)
    return {"items": [task_read(t) for t in rows], "total": total}


@router.get("/{task_id}")
def get_task(task_id: RowId, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    task = workflows.get_task(session, actor=user, task_id=task_id)
    form = workflows.task_form(session, task)
    data, instructions = workflows.task_view(session, task)
    return {**task_read(task), "form": form, "data": data, "instructions": instructions,
            "actions": workflows.task_actions(form)}


@router.post("/{task_id}/claim")
def claim(task_id: RowId, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    task = workflows.claim_task(session, actor=user, task_id=task_id)
    session.commit()
    return task_read(task)


@router.post("/{task_id}/unclaim")
def unclaim(task_id: RowId, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    task = workflows.unclaim_task(session, actor=user, task_id=task_id)
    session.commit()
    return task_read(task)


@router.post("/{task_id}/complete")
def complete(task_id: RowId, body: DataBody, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    task, warnings = workflows.complete_task(session, actor=user, task_id=task_id, data=body.data)
    session.commit()
    return {**task_read(task), "warnings": findings(warnings)}
