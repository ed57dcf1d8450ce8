"""Bulk student lists (Art. 13): upload, progress and row report, discard. Submitting is starting
batch_intake: POST /api/processes/batch_intake/instances {"data": {"batch_id": N}}."""

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request, Response, UploadFile

from api.deps import CurrentUser, DbSession, Offset, RowId
from registry import imports

router = APIRouter(prefix="/api", tags=["imports"])


@router.post("/imports", status_code=202)
def upload_import(request: Request, response: Response, session: DbSession, user: CurrentUser, file: UploadFile,
                  school_code: str = Form(..., max_length=10)) -> dict[str, Any]:
    """202 with the queued batch; the same file again for the same school gives 200 and the batch that has it."""
    # One byte past the limit is enough to refuse an oversize file without holding all of it.
    data = file.file.read(imports.MAX_UPLOAD_BYTES + 1)
    batch, created = imports.upload(session, actor=user, school_code=school_code, file_name=file.filename or "upload",
                                    data=data, store=request.app.state.files)
    session.commit()
    if not created:
        response.status_code = 200
    return {**imports.to_read(batch), "created": created}


@router.get("/imports")
def list_imports(session: DbSession, user: CurrentUser, limit: int = Query(50, ge=1, le=200),
                 offset: Offset = 0) -> dict[str, Any]:
    batches, total = imports.list_batches(session, actor=user, limit=limit, offset=offset)
    return {"items": [imports.to_read(b) for b in batches], "total": total}


@router.get("/imports/{batch_id}")
def get_import(batch_id: RowId, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    """Progress while a worker checks the file; then the counts and the rows that need attention."""
    batch = imports.get_batch(session, actor=user, batch_id=batch_id)
    rows, total = imports.batch_rows(session, actor=user, batch=batch, problems_only=True)
    return {**imports.to_read(batch), "rows": {"items": rows, "total": total}}


@router.get("/imports/{batch_id}/rows")
def import_rows(batch_id: RowId, session: DbSession, user: CurrentUser,
                outcome: imports.RowOutcome | None = None, limit: int = Query(100, ge=1, le=1000),
                offset: Offset = 0) -> dict[str, Any]:
    batch = imports.get_batch(session, actor=user, batch_id=batch_id)
    rows, total = imports.batch_rows(session, actor=user, batch=batch, outcome=outcome, limit=limit, offset=offset)
    return {"items": rows, "total": total}


@router.get("/imports/{batch_id}/report.xlsx")
def import_report(batch_id: RowId, request: Request, session: DbSession, user: CurrentUser) -> Response:
    """Every row with its errors and warnings: fix them in this file and upload it again."""
    batch, data = imports.report_of(session, actor=user, batch_id=batch_id, store=request.app.state.files)
    session.commit()
    name = f"校验结果-{batch.id}-{batch.file_name.rsplit('.', 1)[0]}.xlsx"
    return Response(data, media_type=imports.XLSX,
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"})


@router.post("/imports/{batch_id}/discard")
def discard_import(batch_id: RowId, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    batch = imports.discard(session, actor=user, batch_id=batch_id)
    session.commit()
    return imports.to_read(batch)
