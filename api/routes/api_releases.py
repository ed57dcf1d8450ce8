"""Data releases (信息提供审批, Art. 24) over JSON: read requests and download an approved file.

A request starts like any process, `POST /api/processes/data_release/instances {"data": {...}}`; the
shape of `data` and the rules are in registry/data_releases.py.
"""

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response

from api.deps import CurrentUser, DbSession, Offset, RowId
from registry import data_releases
from registry.db import utcnow
from registry.errors import DomainError

router = APIRouter(prefix="/api", tags=["releases"])


@router.get("/releases")
def list_releases(session: DbSession, user: CurrentUser, scope: str = Query("mine", pattern="^(mine|all)$"),
                  limit: int = Query(50, ge=1, le=200), offset: Offset = 0) -> dict[str, Any]:
    """My requests, or (`scope=all`) every request in the units I oversee (county reviewers, auditors)."""
    rows, total = data_releases.list_releases(session, actor=user, mine=scope == "mine", limit=limit, offset=offset)
    now = utcnow()
    return {"items": [data_releases.to_read(session, r, actor=user, now=now) for r in rows], "total": total}


@router.get("/releases/{release_id}")
def get_release(release_id: RowId, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    release = data_releases.get_release(session, actor=user, release_id=release_id)
    return data_releases.to_read(session, release, actor=user, now=utcnow())


@router.get("/releases/{release_id}/download")
def download(release_id: RowId, request: Request, session: DbSession, user: CurrentUser) -> Response:
    """The approved file, for its requester only; each download counts against the limit and is logged."""
    try:
        release, data = data_releases.download(
            session, actor=user, now=utcnow(), store=request.app.state.files, release_id=release_id,
            ip=request.client.host if request.client else None, user_agent=request.headers.get("user-agent"))
    except DomainError:
        session.commit()  # the refused attempt stays on record
        raise
    session.commit()
    return attachment(data, data_releases.file_name(release))


def attachment(data: bytes, name: str) -> Response:
    return Response(data, media_type=data_releases.XLSX, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}", "Cache-Control": "no-store"})
