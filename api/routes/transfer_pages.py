"""Pages that start a transfer (转学, Art. 15): the sending school from the student's page, the
receiving school by the child's ID number, and a child from another county as an intake whose first
step takes the transfer certificate. The process and its rules: registry/flows/student_transfer.py."""

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from api.deps import DbSession, RowId
from api.html_forms import fields_of, fill, parse_posted
from api.page_support import PageUser, PostedFields, check_csrf, render
from registry import students, transfers, workflows
from registry.errors import Conflict, DomainError, PermissionDenied, RuleViolation, msg
from registry.flows.student_transfer import START_FORM
from registry.org_units import OrgKind, OrgUnit
from registry.users import Role, User
from registry.workflows import ProcessInstance

router = APIRouter(include_in_schema=False)

PROCESS = "student_transfer"
_TOP_FIELDS = frozenset(START_FORM["properties"]) - {"student"}
Text = Annotated[str, Form(max_length=600)]


def _errors(err: DomainError, *, student_form: bool = False) -> dict[str, str]:
    """Details by field, for the message beside each input; a student field of the intake form is `student.x`."""
    out: dict[str, str] = {}
    for detail in err.details or []:
        if isinstance(detail, dict) and detail.get("field"):
            field = str(detail["field"])
            if student_form and field not in _TOP_FIELDS and not field.startswith("student."):
                field = f"student.{field}"
            out.setdefault(field, str(detail.get("message", "")))
    return out


def _start(session: DbSession, user: User, data: dict[str, Any]) -> ProcessInstance:
    instance, _ = workflows.start_process(session, actor=user, process_id=PROCESS, data=data)
    return instance


def _own_schools(user: User) -> list[OrgUnit]:
    """The schools where the user is the registrar: where a child may transfer in."""
    schools = {g.org_unit.code: g.org_unit for g in user.grants
               if g.role == Role.school_registrar and g.org_unit.kind == OrgKind.school}
    if not schools:
        raise PermissionDenied(msg("只有学校学籍管理员可以办理转入"))
    return [schools[code] for code in sorted(schools)]


# The sending school ------------------------------------------------------------------------------

def _sending_context(session: DbSession, user: User, student_id: int, *, values: dict[str, str] | None = None,
                     errors: dict[str, str] | None = None, message: str | None = None) -> dict[str, Any]:
    student = transfers.get_for_transfer(session, actor=user, student_id=student_id)
    return {"user": user, "student": students.to_read(student, actor=user),
            "schools": transfers.receiving_schools(session, student=student),
            "values": {"kind": "in_county", **(values or {})}, "errors": errors or {}, "message": message}


@router.get("/students/{student_id}/transfer")
def sending_page(request: Request, student_id: RowId, session: DbSession, user: PageUser) -> Response:
    return render(request, "transfer_sending.html", _sending_context(session, user, student_id))


@router.post("/students/{student_id}/transfer")
def sending_submit(request: Request, student_id: RowId, session: DbSession, user: PageUser,
                   kind: Annotated[str, Form(max_length=20)] = "in_county",
                   receiving_school_code: Annotated[str, Form(max_length=20)] = "",
                   destination_school: Text = "", change_month: Annotated[str, Form(max_length=20)] = "",
                   reason: Text = "", csrf: Annotated[str, Form(alias="csrf_token")] = "") -> Response:
    check_csrf(request, csrf)
    values = {"kind": kind, "receiving_school_code": receiving_school_code, "destination_school": destination_school,
              "change_month": change_month, "reason": reason}
    data: dict[str, Any] = {"kind": kind, "student_id": student_id, "change_month": change_month.strip()}
    if kind == "in_county":
        data["receiving_school_code"] = receiving_school_code.strip()
    elif destination_school.strip():
        data["destination_school"] = destination_school.strip()
    if reason.strip():
        data["reason"] = reason.strip()
    try:
        instance = _start(session, user, data)
    except (RuleViolation, Conflict) as err:
        session.rollback()
        context = _sending_context(session, user, student_id, values=values, errors=_errors(err), message=err.message)
        return render(request, "transfer_sending.html", context, status_code=err.status)
    session.commit()
    return RedirectResponse(f"/instances/{instance.id}", status_code=303)


# The receiving school, in the county ---------------------------------------------------------------

def _receiving_context(session: DbSession, user: User, *, values: dict[str, str] | None = None,
                       errors: dict[str, str] | None = None, message: str | None = None,
                       found: dict[str, Any] | None = None) -> dict[str, Any]:
    schools = _own_schools(user)
    return {"user": user, "schools": schools, "values": {"receiving_school_code": schools[0].code, **(values or {})},
            "errors": errors or {}, "message": message, "found": found}


@router.get("/transfers/new")
def receiving_page(request: Request, session: DbSession, user: PageUser) -> Response:
    return render(request, "transfer_receiving.html", _receiving_context(session, user))


@router.post("/transfers/new")
def receiving_submit(request: Request, session: DbSession, user: PageUser,
                     step: Annotated[str, Form(max_length=10)] = "lookup",
                     id_number: Annotated[str, Form(max_length=30)] = "",
                     student_number_aux: Annotated[str, Form(max_length=30)] = "",
                     receiving_school_code: Annotated[str, Form(max_length=20)] = "",
                     change_month: Annotated[str, Form(max_length=20)] = "", reason: Text = "",
                     csrf: Annotated[str, Form(alias="csrf_token")] = "") -> Response:
    """Two steps on one form: find the child by ID number (a POST: an ID number never goes in a URL),
    then, with what was found on screen, submit."""
    check_csrf(request, csrf)
    values = {"id_number": id_number.strip(), "student_number_aux": student_number_aux.strip(),
              "receiving_school_code": receiving_school_code, "change_month": change_month, "reason": reason}
    try:
        student = transfers.find_by_id_number(session, actor=user, id_number=id_number,
                                              aux=student_number_aux or None)
    except RuleViolation as err:
        context = _receiving_context(session, user, values=values, errors=_errors(err), message=err.message)
        return render(request, "transfer_receiving.html", context, status_code=err.status)
    found = transfers.preview(student)
    if step != "start":
        return render(request, "transfer_receiving.html", _receiving_context(session, user, values=values, found=found))
    data: dict[str, Any] = {"kind": "in_county", "id_number": values["id_number"], "change_month": change_month.strip(),
                            "receiving_school_code": receiving_school_code.strip()}
    if values["student_number_aux"]:
        data["student_number_aux"] = values["student_number_aux"]
    if reason.strip():
        data["reason"] = reason.strip()
    try:
        instance = _start(session, user, data)
    except (RuleViolation, Conflict, PermissionDenied) as err:
        session.rollback()
        context = _receiving_context(session, user, values=values, errors=_errors(err), message=err.message,
                                     found=found)
        return render(request, "transfer_receiving.html", context, status_code=err.status)
    session.commit()
    return RedirectResponse(f"/instances/{instance.id}", status_code=303)


# The receiving school, from another county ---------------------------------------------------------

def _into_schema(session: DbSession) -> dict[str, Any]:
    form = workflows.definition_of(workflows.latest_version(session, PROCESS)).forms["student"]
    return {"properties": {"student": form}}


def _into_context(session: DbSession, user: User, *, values: dict[str, Any] | None = None,
                  errors: dict[str, str] | None = None, message: str | None = None) -> dict[str, Any]:
    schools = _own_schools(user)
    values = values or {"student": {"school_code": schools[0].code, "id_type": "1"}}
    return {"user": user, "fields": fill(fields_of(_into_schema(session)), values, errors or {}), "values": values,
            "errors": errors or {}, "message": message}


@router.get("/transfers/new/into-county")
def into_page(request: Request, session: DbSession, user: PageUser) -> Response:
    return render(request, "transfer_into.html", _into_context(session, user))


@router.post("/transfers/new/into-county")
def into_submit(request: Request, session: DbSession, user: PageUser, posted: PostedFields) -> Response:
    check_csrf(request, posted.get("csrf_token"))
    data: dict[str, Any] = {"kind": "into_county", **parse_posted(_into_schema(session), posted)}
    for field in ("origin_school", "change_month", "reason"):
        value = (posted.get(field) or "").strip()[:600]
        if value or field == "change_month":
            data[field] = value
    try:
        instance = _start(session, user, data)
    except (RuleViolation, Conflict) as err:
        session.rollback()
        context = _into_context(session, user, values=data, errors=_errors(err, student_form=True),
                                message=err.message)
        return render(request, "transfer_into.html", context, status_code=err.status)
    session.commit()
    # Straight to the first step: the certificate is uploaded there.
    (first,) = [t for t in workflows.instance_tasks(session, instance) if t.status == "open"]
    return RedirectResponse(f"/tasks/{first.id}", status_code=303)
