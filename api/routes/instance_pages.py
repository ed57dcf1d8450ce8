"""The page of one process instance (steps, history, 撤回) and its printable approval sheet (审批表)."""

from typing import Annotated, Any

import segno
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from api.deps import DbSession, RowId
from api.page_support import PageUser, check_csrf, render
from registry import imports, students, workflows
from registry.access import holds
from registry.approval_sheets import PRINTABLE, print_sheet
from registry.errors import DomainError, InvalidTransition
from registry.users import User

router = APIRouter(include_in_schema=False)


def _context(session: DbSession, user: User, instance_id: int, *, reason: str = "",
             withdraw_error: str | None = None, message: str | None = None) -> dict[str, Any]:
    instance = workflows.get_instance(session, actor=user, instance_id=instance_id)
    tasks = workflows.instance_tasks(session, instance)
    student = batch = None
    if instance.subject_type == "student" and instance.subject_id:
        student = students.to_read(students.get_student_unscoped(session, instance.subject_id), actor=user)
    elif instance.subject_type == "import_batch" and instance.subject_id:
        batch = imports.to_read(imports.get_batch(session, actor=user, batch_id=instance.subject_id))
    return {"user": user, "instance": instance, "tasks": tasks, "student": student, "batch": batch,
            "tasks_by_id": {str(t.id): t for t in tasks},
            "history": workflows.instance_history(session, instance),
            "actionable": {t.id for t in tasks if t.status == "open" and holds(user, t.role, t.org_unit)},
            "may_withdraw": workflows.may_withdraw(session, actor=user, instance=instance),
            "printable": instance.status in PRINTABLE, "reason": reason, "withdraw_error": withdraw_error,
            "message": message}


@router.get("/instances/{instance_id}")
def instance_page(request: Request, instance_id: RowId, session: DbSession, user: PageUser) -> Response:
    return render(request, "instance.html", _context(session, user, instance_id))


@router.post("/instances/{instance_id}/withdraw")
def withdraw_page(request: Request, instance_id: RowId, session: DbSession, user: PageUser,
                  reason: Annotated[str, Form(max_length=500)] = "",
                  csrf: Annotated[str, Form(alias="csrf_token")] = "") -> Response:
    check_csrf(request, csrf)
    try:
        workflows.withdraw(session, actor=user, instance_id=instance_id, reason=reason)
    except DomainError as err:
        session.rollback()
        context = _context(session, user, instance_id, reason=reason, withdraw_error=err.message)
        return render(request, "instance.html", context, status_code=err.status)
    session.commit()
    return RedirectResponse(f"/instances/{instance_id}?withdrawn=1", status_code=303)


def qr_svg(url: str) -> Markup:
    """The URL as an inline SVG QR code, sized by CSS (no width/height of its own); made here, no script or CDN."""
    return Markup(segno.make_qr(url, error="m").svg_inline(scale=1, border=4, omitsize=True, title=url))


@router.get("/instances/{instance_id}/sheet")
def sheet_page(request: Request, instance_id: RowId, session: DbSession, user: PageUser) -> Response:
    try:
        sheet = print_sheet(session, actor=user, instance_id=instance_id)
    except InvalidTransition as err:  # still running: say so on the instance's own page
        session.rollback()
        return render(request, "instance.html", _context(session, user, instance_id, message=err.message),
                       status_code=err.status)
    session.commit()
    url = str(request.url_for("instance_page", instance_id=instance_id))
    return render(request, "instance_sheet.html", {"user": user, "sheet": sheet, "url": url, "qr": qr_svg(url)})
