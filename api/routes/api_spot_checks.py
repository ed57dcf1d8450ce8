"""Spot checks (抽查) as JSON: the list, a check's report, one sampled school's part.

A check is started with `POST /api/processes/spot_check/instances` and its steps are done with the task
API (`POST /api/tasks/{id}/attachments` for a scan, then `POST /api/tasks/{id}/complete`), as any process.
"""

from typing import Any

from fastapi import APIRouter

from api.deps import CurrentUser, DbSession, RowId
from registry.spot_checks import views

router = APIRouter(prefix="/api", tags=["spot checks"])


@router.get("/spot-checks")
def list_checks(session: DbSession, user: CurrentUser) -> dict[str, Any]:
    items = [views.check_summary(c) for c in views.list_checks(session, actor=user)]
    return {"items": items, "total": len(items)}


@router.get("/spot-checks/{check_id}")
def get_report(check_id: RowId, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    """Parameters, seed, the sample school by school with each student's evidence and finding, the rectification
    rounds with their deadlines and verdicts, and whether the draw re-runs to the same sample from the record."""
    return views.report(session, actor=user, check_id=check_id)


@router.get("/spot-checks/schools/{part_id}")
def get_part(part_id: RowId, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    part = views.get_part(session, actor=user, part_id=part_id)
    return views.part_view(session, actor=user, part=part)
