"""Pages that start a change of a student's record: a key-field change filed for the guardian with the
signed application scanned (关键信息变更, Art. 14), one student's 学籍异动 (休学, 复学, 辍学, 死亡, or
就读方式/一补变更), and a school's graduation list (毕业, Art. 15). The processes and their rules: registry/flows/
key_field_change.py and status_change.py."""

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from api.deps import DbSession, RowId
from api.page_support import PageUser, check_csrf, render
from api.schemas import local_today
from registry import (
    applications,
    attachments,
    graduation,
    key_field_requests,
    process_guards,
    status_changes,
    students,
    workflows,
)
from registry.code_tables import load_code_tables
from registry.errors import Conflict, DomainError, InvalidTransition, PermissionDenied, RuleViolation, msg
from registry.org_units import OrgKind, OrgUnit
from registry.rules.student import FIELD_LABELS
from registry.users import Role, User

router = APIRouter(include_in_schema=False)

Text = Annotated[str, Form(max_length=600)]
Short = Annotated[str, Form(max_length=60)]
Csrf = Annotated[str, Form(alias="csrf_token")]


def _errors(err: DomainError) -> dict[str, str]:
    """Details by field, for the message beside each input (the first one where a field has several)."""
    out: dict[str, str] = {}
    for detail in err.details or []:
        if isinstance(detail, dict) and detail.get("field"):
            out.setdefault(str(detail["field"]), str(detail.get("message", "")))
    return out


# 关键信息变更 --------------------------------------------------------------------------------------

def _key_field_rows(student: dict[str, Any]) -> list[dict[str, Any]]:
    codes = load_code_tables()
    rows = []
    for field in key_field_requests.CHANGEABLE:
        current = student.get(field)
        options = [(i.code, f"{i.code} {i.label}") for i in codes.table(field)] if field in ("sex", "id_type") else []
        shown = f"{current} {codes.label(field, current) or ''}".strip() if options and current else (current or "—")
        rows.append({"name": field, "label": FIELD_LABELS[field], "current": shown, "options": options,
                     "widget": "select" if options else "date" if field == "birth_date" else "text"})
    return rows


def _key_field_context(session: DbSession, user: User, student_id: int, *, values: dict[str, str] | None = None,
                       errors: dict[str, str] | None = None, message: str | None = None) -> dict[str, Any]:
    student = students.get_student(session, actor=user, student_id=student_id)
    blocked = None
    try:
        key_field_requests.filing_check(session, actor=user, student_id=student_id, today=local_today())
    except InvalidTransition as err:  # not locked yet, or not an active record: say why instead of a form
        blocked = err.message
    view = students.to_read(student, actor=user)
    return {"user": user, "student": view, "rows": _key_field_rows(view), "blocked": blocked,
            "values": values or {}, "errors": errors or {}, "message": message,
            "max_mb": attachments.MAX_BYTES // 1024 // 1024}


@router.get("/students/{student_id}/key-field-change")
def key_field_page(request: Request, student_id: RowId, session: DbSession, user: PageUser) -> Response:
    return render(request, "key_field_change.html", _key_field_context(session, user, student_id))


@router.post("/students/{student_id}/key-field-change")
def key_field_submit(request: Request, student_id: RowId, session: DbSession, user: PageUser,
                     file: UploadFile | None = None, name: Short = "", sex: Short = "", birth_date: Short = "",
                     id_type: Short = "", id_number: Short = "", student_number_aux: Short = "", reason: Text = "",
                     confirmed: Short = "", csrf: Csrf = "") -> Response:
    check_csrf(request, csrf)
    values = {"name": name, "sex": sex, "birth_date": birth_date, "id_type": id_type, "id_number": id_number,
              "student_number_aux": student_number_aux, "reason": reason, "confirmed": confirmed}
    changes = {k: v.strip() for k, v in values.items() if k in key_field_requests.CHANGEABLE and v.strip()}
    scan = file.file.read(attachments.MAX_BYTES + 1) if file is not None and file.filename else b""
    try:
        instance = applications.file_with_scan(
            session, actor=user, process_id="key_field_change", store=request.app.state.files,
            data={"student_id": student_id, "changes": changes, "reason": reason},
            scan_name=file.filename if file is not None and file.filename else "", scan=scan,
            confirmed=confirmed in ("on", "true", "1"))
    except (RuleViolation, Conflict) as err:
        session.rollback()
        context = _key_field_context(session, user, student_id, values=values, errors=_errors(err),
                                     message=err.message)
        return render(request, "key_field_change.html", context, status_code=err.status)
    session.commit()
    return RedirectResponse(f"/instances/{instance.id}", status_code=303)


# 学籍异动 of one student ----------------------------------------------------------------------------

# 享受一补 as the page's select sends it.
_ALLOWANCE = {"1": True, "0": False}


def _status_context(session: DbSession, user: User, student_id: int, *, values: dict[str, str] | None = None,
                    errors: dict[str, str] | None = None, message: str | None = None) -> dict[str, Any]:
    student = status_changes.for_filing(session, actor=user, student_id=student_id)
    # A 就读方式/一补变更 starts from the values the record has now.
    current = {"boarding_mode": student.boarding_mode, "boarding_allowance": "1" if student.boarding_allowance else "0"}
    return {"user": user, "student": students.to_read(student, actor=user),
            "choices": status_changes.choices(student), "boarding": status_changes.BOARDING,
            "boarding_modes": [i.code for i in load_code_tables().table("boarding_mode")],
            "values": {"effective_month": status_changes.today_month(local_today()), **current, **(values or {})},
            "errors": errors or {}, "message": message}


@router.get("/students/{student_id}/status-change")
def status_page(request: Request, student_id: RowId, session: DbSession, user: PageUser) -> Response:
    return render(request, "status_change.html", _status_context(session, user, student_id))


@router.post("/students/{student_id}/status-change")
def status_submit(request: Request, student_id: RowId, session: DbSession, user: PageUser,
                  to_status: Short = "", effective_month: Short = "", reason: Text = "", boarding_mode: Short = "",
                  boarding_allowance: Short = "", csrf: Csrf = "") -> Response:
    check_csrf(request, csrf)
    values = {"to_status": to_status, "effective_month": effective_month.strip(), "reason": reason}
    data: dict[str, Any] = {"student_id": student_id, **values}
    if to_status == status_changes.BOARDING:
        values.update(boarding_mode=boarding_mode, boarding_allowance=boarding_allowance)
        data = {"student_id": student_id, "kind": to_status, "boarding_mode": boarding_mode or None,
                "boarding_allowance": _ALLOWANCE.get(boarding_allowance, boarding_allowance or None),
                "effective_month": values["effective_month"], "reason": reason}
    try:
        instance, _ = workflows.start_process(session, actor=user, process_id="status_change", data=data)
    except (RuleViolation, Conflict) as err:
        session.rollback()
        context = _status_context(session, user, student_id, values=values, errors=_errors(err), message=err.message)
        return render(request, "status_change.html", context, status_code=err.status)
    session.commit()
    return RedirectResponse(f"/instances/{instance.id}", status_code=303)


# 毕业名单 -------------------------------------------------------------------------------------------

def _registrar_schools(user: User) -> list[OrgUnit]:
    schools = {g.org_unit.code: g.org_unit for g in user.grants
               if g.role == Role.school_registrar and g.org_unit.kind == OrgKind.school}
    if not schools:
        raise PermissionDenied(msg("只有学校学籍管理员可以提交毕业名单"))
    return [schools[code] for code in sorted(schools)]


def _graduation_context(session: DbSession, user: User, school_code: str | None, *,
                        values: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
                        problems: list[str] | None = None, message: str | None = None) -> dict[str, Any]:
    schools = _registrar_schools(user)
    code = school_code if school_code in {s.code for s in schools} else schools[0].code
    school, grade, listed = graduation.candidates(session, actor=user, school_code=code)
    under_way = graduation.open_batch_of(session, school=school)
    # A student with a request under way cannot be listed: shown, unticked, with the reason.
    busy = {student_id: process_guards.describe(found[0]) for student_id, found in
            process_guards.open_requests_for_students(session, student_ids=[s.id for s in listed]).items()}
    chosen = (values or {}).get("student_ids")
    return {"user": user, "schools": schools, "school": school, "grade_name": graduation.GRADE_NAMES[grade],
            "students": listed, "sex_labels": {i.code: i.label for i in load_code_tables().table("sex")},
            "under_way": under_way, "busy": busy,
            "checked": set(chosen) if chosen is not None else {s.id for s in listed if s.id not in busy},
            "values": {"effective_month": graduation.default_month(local_today()), "reason": "", **(values or {})},
            "errors": errors or {}, "problems": problems or [], "message": message}


@router.get("/graduations")
def graduation_page(request: Request, session: DbSession, user: PageUser, school: str | None = None) -> Response:
    return render(request, "graduation.html", _graduation_context(session, user, school))


@router.post("/graduations")
def graduation_submit(request: Request, session: DbSession, user: PageUser,
                      school_code: Annotated[str, Form(max_length=20)] = "", effective_month: Short = "",
                      reason: Text = "", student_ids: Annotated[list[int] | None, Form()] = None,
                      csrf: Csrf = "") -> Response:
    check_csrf(request, csrf)
    chosen = list(student_ids or [])
    values = {"effective_month": effective_month.strip(), "reason": reason, "student_ids": chosen}
    data = {"to_status": "graduated", "school_code": school_code, "student_ids": chosen,
            "effective_month": effective_month.strip(), "reason": reason}
    try:
        instance, _ = workflows.start_process(session, actor=user, process_id="status_change", data=data)
    except (RuleViolation, Conflict) as err:
        session.rollback()
        problems = [d["message"] for d in err.details or [] if isinstance(d, dict) and d.get("field") == "student_ids"]
        context = _graduation_context(session, user, school_code, values=values, errors=_errors(err),
                                      problems=problems, message=err.message if not problems else None)
        return render(request, "graduation.html", context, status_code=err.status)
    session.commit()
    return RedirectResponse(f"/instances/{instance.id}", status_code=303)
