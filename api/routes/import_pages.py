"""Pages for bulk student lists: upload, the checking progress, the row report, submitting."""

from typing import Annotated

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from api.deps import DbSession, RowId
from api.page_support import PageUser, check_csrf, render
from registry import imports, workflows
from registry.access import holds
from registry.errors import DomainError
from registry.users import Role, User

router = APIRouter(include_in_schema=False)


def _upload_schools(user: User) -> list[dict[str, str]]:
    """The schools this user may upload for: where they are the registrar."""
    units = {g.org_unit.code: g.org_unit for g in user.grants
             if g.role == Role.school_registrar and g.org_unit.kind == "school"}
    return [{"code": code, "name": unit.name} for code, unit in sorted(units.items())]


def _list_page(request: Request, session: DbSession, user: User, *, error: str | None = None,
               status_code: int = 200) -> Response:
    batches, total = imports.list_batches(session, actor=user, limit=100)
    return render(request, "imports.html", {"user": user, "batches": batches, "total": total, "error": error,
                                             "schools": _upload_schools(user), "labels": imports.BATCH_STATUS_LABELS},
                   status_code=status_code)


@router.get("/imports")
def imports_page(request: Request, session: DbSession, user: PageUser) -> Response:
    return _list_page(request, session, user)


@router.post("/imports")
def upload_page(request: Request, session: DbSession, user: PageUser, file: UploadFile | None = None,
                school_code: Annotated[str, Form(max_length=10)] = "",
                csrf: Annotated[str, Form(alias="csrf_token")] = "") -> Response:
    check_csrf(request, csrf)
    if file is None or not file.filename:
        return _list_page(request, session, user, error="请选择要上传的学生名单文件（XLSX 或 CSV）", status_code=422)
    data = file.file.read(imports.MAX_UPLOAD_BYTES + 1)
    try:
        batch, _ = imports.upload(session, actor=user, school_code=school_code, file_name=file.filename, data=data,
                                  store=request.app.state.files)
    except DomainError as err:
        session.rollback()
        return _list_page(request, session, user, error=err.message, status_code=err.status)
    session.commit()
    return RedirectResponse(f"/imports/{batch.id}", status_code=303)


def _detail(request: Request, session: DbSession, user: User, batch_id: int, *, error: str | None = None,
            status_code: int = 200) -> Response:
    batch = imports.get_batch(session, actor=user, batch_id=batch_id)
    rows, rows_total = imports.batch_rows(session, actor=user, batch=batch, problems_only=True)
    instance = workflows.instance_for(session, subject_type="import_batch", subject_id=batch.id)
    tasks = workflows.instance_tasks(session, instance) if instance is not None else []
    return render(request, "import.html", {
        "user": user, "batch": batch, "view": imports.to_read(batch), "rows": rows, "rows_total": rows_total,
        "error": error, "tasks": tasks, "instance": instance, "is_registrar": holds(user, Role.school_registrar, batch.school),
        "working": batch.status in (imports.BatchStatus.queued, imports.BatchStatus.validating),
        "submitted": request.query_params.get("submitted") == "1"}, status_code=status_code)


@router.get("/imports/{batch_id}")
def import_page(request: Request, batch_id: RowId, session: DbSession, user: PageUser) -> Response:
    return _detail(request, session, user, batch_id)


@router.post("/imports/{batch_id}/submit")
def submit_page(request: Request, batch_id: RowId, session: DbSession, user: PageUser,
                csrf: Annotated[str, Form(alias="csrf_token")] = "") -> Response:
    check_csrf(request, csrf)
    try:
        workflows.start_process(session, actor=user, process_id="batch_intake", data={"batch_id": batch_id})
    except DomainError as err:
        session.rollback()
        return _detail(request, session, user, batch_id, error=err.message, status_code=err.status)
    session.commit()
    return RedirectResponse(f"/imports/{batch_id}?submitted=1", status_code=303)


@router.post("/imports/{batch_id}/discard")
def discard_page(request: Request, batch_id: RowId, session: DbSession, user: PageUser,
                 csrf: Annotated[str, Form(alias="csrf_token")] = "") -> Response:
    check_csrf(request, csrf)
    try:
        imports.discard(session, actor=user, batch_id=batch_id)
    except DomainError as err:
        session.rollback()
        return _detail(request, session, user, batch_id, error=err.message, status_code=err.status)
    session.commit()
    return RedirectResponse("/imports", status_code=303)
