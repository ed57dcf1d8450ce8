"""Pages of a spot check (抽查, Art. 25, 26): the auditor's start form, the list, the report (printable),
and one sampled school's page, where the school gives its evidence per student, the auditor records
findings per student and the principal reports the rectification. Per-student rows do not fit a
JSON-Schema task form, so these steps are done here; the task page links here (api/request_panels.py).
The rules: registry/spot_checks/."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from api.deps import DbSession, RowId
from api.page_support import PageUser, check_csrf, render
from api.schemas import local_today
from registry import attachments, workflows
from registry.access import OVERSIGHT_ROLES
from registry.code_tables import load_code_tables
from registry.errors import Conflict, DomainError, PermissionDenied, RuleViolation, join_messages, msg
from registry.org_units import OrgKind
from registry.spot_checks import draw, views
from registry.spot_checks.models import FINDING_LABELS, FOCUS_LABELS, FindingKind, SpotCheckSchool
from registry.users import Role, User

router = APIRouter(include_in_schema=False)

Short = Annotated[str, Form(max_length=40)]


def _errors(err: DomainError) -> dict[str, str]:
    out: dict[str, str] = {}
    for detail in err.details or []:
        if isinstance(detail, dict) and detail.get("field"):
            out.setdefault(str(detail["field"]), str(detail.get("message", "")))
    return out


# The list and the start form ----------------------------------------------------------------------------------

def _is_auditor(user: User) -> bool:
    return any(g.role == Role.auditor for g in user.grants)


@router.get("/spot-checks")
def list_page(request: Request, session: DbSession, user: PageUser) -> Response:
    if not any(g.role in OVERSIGHT_ROLES and g.org_unit.kind == OrgKind.county for g in user.grants):
        raise PermissionDenied(msg("抽查由县级监督检查员组织；学校请在待办任务中办理本校的抽查"))
    checks = [views.check_summary(c) for c in views.list_checks(session, actor=user)]
    return render(request, "spot_checks.html", {"user": user, "checks": checks, "may_start": _is_auditor(user)})


def _new_context(session: DbSession, user: User, *, values: dict[str, Any] | None = None,
                 errors: dict[str, str] | None = None, message: str | None = None) -> dict[str, Any]:
    county = draw.auditor_county(user)
    codes = load_code_tables()
    defaults = {"mode": "count", "school_count": "3", "students_per_school": "10", "focus": ["beneficiaries"],
                "meal_models": [], "school_codes": [], "month": f"{local_today():%Y-%m}", "seed": "", "title": ""}
    return {"user": user, "county": county, "schools": views.county_schools(session, county=county),
            "focus_options": [(str(k), v) for k, v in FOCUS_LABELS.items()],
            "meal_model_options": [(i.code, i.label) for i in codes.table("meal_model")],
            "values": {**defaults, **(values or {})}, "errors": errors or {}, "message": message}


@router.get("/spot-checks/new")
def new_page(request: Request, session: DbSession, user: PageUser) -> Response:
    return render(request, "spot_check_new.html", _new_context(session, user))


def _number(raw: str) -> int | str:
    text = raw.strip()
    return int(text) if text.isascii() and text.isdigit() else text


@router.post("/spot-checks/new")
def new_submit(request: Request, session: DbSession, user: PageUser,
               mode: Annotated[str, Form(max_length=10)] = "count",
               school_codes: Annotated[list[str], Form(max_length=20)] = [],  # noqa: B006 - FastAPI reads it, never mutated
               school_count: Short = "", students_per_school: Short = "",
               focus: Annotated[list[str], Form(max_length=40)] = [],  # noqa: B006
               meal_models: Annotated[list[str], Form(max_length=2)] = [],  # noqa: B006
               month: Short = "", seed: Short = "", title: Annotated[str, Form(max_length=200)] = "",
               csrf: Annotated[str, Form(alias="csrf_token")] = "") -> Response:
    check_csrf(request, csrf)
    values = {"mode": mode, "school_codes": school_codes, "school_count": school_count,
              "students_per_school": students_per_school, "focus": focus, "meal_models": meal_models,
              "month": month, "seed": seed, "title": title}
    data: dict[str, Any] = {"students_per_school": _number(students_per_school), "focus": focus,
                            "meal_models": meal_models}
    if mode == "named":
        data["school_codes"] = school_codes
    elif school_count.strip():
        data["school_count"] = _number(school_count)
    for key, value in (("month", month), ("seed", seed), ("title", title)):
        if value.strip():
            data[key] = value.strip()
    try:
        instance, _ = workflows.start_process(session, actor=user, process_id="spot_check", data=data)
    except (RuleViolation, Conflict) as err:
        session.rollback()
        context = _new_context(session, user, values=values, errors=_errors(err), message=err.message)
        return render(request, "spot_check_new.html", context, status_code=err.status)
    session.commit()
    return RedirectResponse(f"/spot-checks/{instance.subject_id}?started=1", status_code=303)


# The report ------------------------------------------------------------------------------------------------------

@router.get("/spot-checks/{check_id}")
def report_page(request: Request, check_id: RowId, session: DbSession, user: PageUser) -> Response:
    report = views.report(session, actor=user, check_id=check_id)
    return render(request, "spot_check_report.html", {"user": user, "report": report, "printing": False})


@router.get("/spot-checks/{check_id}/print")
def report_print(request: Request, check_id: RowId, session: DbSession, user: PageUser) -> Response:
    report = views.print_report(session, actor=user, check_id=check_id)
    session.commit()
    return render(request, "spot_check_report.html", {"user": user, "report": report, "printing": True})


# One school's page -----------------------------------------------------------------------------------------------

@dataclass
class Posted:
    fields: dict[str, str]
    files: dict[str, UploadFile]


async def posted_form(request: Request) -> AsyncIterator[Posted]:
    """Per-student fields (`present_12`, `note_12`, `scan_12`, ...): read here, so the route runs off the event
    loop; the uploaded files' temporary copies are closed once the response is sent."""
    form = await request.form()
    fields: dict[str, str] = {}
    files: dict[str, UploadFile] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            fields[key] = value[:2000]
        elif value.filename:
            files[key] = value
    try:
        yield Posted(fields, files)
    finally:
        await form.close()


PostedForm = Annotated[Posted, Depends(posted_form)]


def _part_context(session: DbSession, user: User, part: SpotCheckSchool, *, values: dict[str, Any] | None = None,
                  errors: dict[str, str] | None = None, message: str | None = None) -> dict[str, Any]:
    step = views.step_for(session, actor=user, part=part)
    view = views.part_view(session, actor=user, part=part)
    return {"user": user, "part": view, "step": step[0] if step else None, "task": step[1] if step else None,
            "values": values or _saved_values(view), "errors": errors or {}, "message": message,
            "finding_options": [(str(k), v) for k, v in FINDING_LABELS.items()],
            "may_see_report": views.may_see_report(user, part)}


def _saved_values(view: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for row in view["students"]:
        sid = row["student_id"]
        values[f"present_{sid}"] = "" if row["present"] is None else ("yes" if row["present"] else "no")
        values[f"note_{sid}"] = row["evidence_note"] or ""
        values[f"finding_{sid}"] = row["finding"] or ""
        values[f"finding_note_{sid}"] = row["finding_note"] or ""
    values["summary"] = view["findings_summary"] or ""
    return values


@router.get("/spot-checks/schools/{part_id}")
def part_page(request: Request, part_id: RowId, session: DbSession, user: PageUser) -> Response:
    part = views.get_part(session, actor=user, part_id=part_id)
    return render(request, "spot_check_school.html", _part_context(session, user, part))


def _refused(request: Request, session: DbSession, user: User, part_id: int, err: DomainError,
             values: dict[str, Any], extra: str = "") -> Response:
    session.rollback()
    part = views.get_part(session, actor=user, part_id=part_id)
    context = _part_context(session, user, part, values=values, errors=_errors(err), message=join_messages([err.message, extra]) if extra else err.message)
    return render(request, "spot_check_school.html", context, status_code=err.status)


@router.post("/spot-checks/schools/{part_id}/evidence")
def evidence_submit(request: Request, part_id: RowId, session: DbSession, user: PageUser, posted: PostedForm) -> Response:
    check_csrf(request, posted.fields.get("csrf_token"))
    part = views.get_part(session, actor=user, part_id=part_id)
    answers = []
    for row in part.students:
        sid = row.student_id
        present = posted.fields.get(f"present_{sid}", "")
        answers.append({"student_id": sid, "present": {"yes": True, "no": False}.get(present),
                        "note": posted.fields.get(f"note_{sid}", "").strip()})
    scans = {row.student_id: (upload.filename or "扫描件", upload.file.read(attachments.MAX_BYTES + 1))
             for row in part.students if (upload := posted.files.get(f"scan_{row.student_id}")) is not None}
    try:
        views.save_evidence(session, actor=user, part_id=part_id, answers=answers, scans=scans,
                            store=request.app.state.files)
        if posted.fields.get("submit") == "submit":
            task = views.open_task(session, part)
            assert task is not None
            workflows.complete_task(session, actor=user, task_id=task.id, data=views.evidence_payload(part))
    except (RuleViolation, Conflict, PermissionDenied) as err:
        again = msg("本次选择的扫描件未保存，请重新选择") if scans else ""
        return _refused(request, session, user, part_id, err, dict(posted.fields), again)
    session.commit()
    done = "submitted" if posted.fields.get("submit") == "submit" else "saved"
    return RedirectResponse(f"/spot-checks/schools/{part_id}?{done}=1", status_code=303)


@router.post("/spot-checks/schools/{part_id}/findings")
def findings_submit(request: Request, part_id: RowId, session: DbSession, user: PageUser, posted: PostedForm) -> Response:
    check_csrf(request, posted.fields.get("csrf_token"))
    part = views.get_part(session, actor=user, part_id=part_id)
    rows = []
    for row in part.students:
        sid = row.student_id
        entry: dict[str, Any] = {"student_id": sid}
        if posted.fields.get(f"finding_{sid}"):
            entry["finding"] = posted.fields[f"finding_{sid}"]
        if posted.fields.get(f"finding_note_{sid}", "").strip():
            entry["note"] = posted.fields[f"finding_note_{sid}"].strip()[:500]
        rows.append(entry)
    data = {"spot_check_findings": {"students": rows, "summary": posted.fields.get("summary", "").strip()}}
    return _complete(request, session, user, part, data, posted)


@router.post("/spot-checks/schools/{part_id}/rectification")
def rectification_submit(request: Request, part_id: RowId, session: DbSession, user: PageUser,
                         posted: PostedForm) -> Response:
    check_csrf(request, posted.fields.get("csrf_token"))
    part = views.get_part(session, actor=user, part_id=part_id)
    rows = [{"student_id": r.student_id, "measure": posted.fields.get(f"measure_{r.student_id}", "").strip()[:500]}
            for r in part.students if r.finding not in (None, FindingKind.none)]
    data = {"spot_check_rectification": {"report": posted.fields.get("report", "").strip(), "students": rows}}
    upload = posted.files.get("file")
    return _complete(request, session, user, part, data, posted, upload=upload)


def _complete(request: Request, session: DbSession, user: User, part: SpotCheckSchool, data: dict[str, Any],
              posted: Posted, upload: UploadFile | None = None) -> Response:
    part_id = part.id
    try:
        task = views.open_task(session, part)
        if task is None:
            raise Conflict(msg("本环节已办理，请刷新页面"))
        if upload is not None:
            attachments.attach(session, actor=user, task_id=task.id, file_name=upload.filename or "整改材料",
                               data=upload.file.read(attachments.MAX_BYTES + 1), store=request.app.state.files)
        workflows.complete_task(session, actor=user, task_id=task.id, data=data)
    except (RuleViolation, Conflict, PermissionDenied) as err:
        again = msg("本次选择的附件未保存，请重新选择") if upload is not None else ""
        return _refused(request, session, user, part_id, err, dict(posted.fields), again)
    session.commit()
    return RedirectResponse(f"/spot-checks/schools/{part_id}?submitted=1", status_code=303)
