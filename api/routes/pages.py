"""Server-rendered pages (zh-CN): login, home, task inbox and task page, students, new-student intake."""

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from api import request_panels
from api.deps import DbSession, RowId
from api.html_forms import fields_of, file_fields, fill, parse_posted, posted_changes, set_path
from api.page_support import PageUser, PostedFields, PostedUploads, check_csrf, render
from api.schemas import local_today
from registry import (
    attachments,
    diagrams,
    drafts,
    imports,
    inbox,
    notifications,
    reminders,
    schools,
    status_changes,
    student_lists,
    students,
    subsidy,
    workflows,
)
from registry.access import holds
from registry.audit import record
from registry.code_tables import load_code_tables
from registry.county_policy import school_year_of
from registry.db import utcnow
from registry.errors import Conflict, InvalidTransition, PermissionDenied, RuleViolation
from registry.rules.school import EDITABLE_FIELDS, SCHOOL_LABELS
from registry.rules.student import FIELD_LABELS
from registry.users import ROLE_LABELS, User, authenticate

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    # Only our own paths: "//evil.example" and absolute URLs would make login an open redirect.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    return render(request, "login.html", {"next": _safe_next(next), "error": None, "username": ""})


@router.post("/login")
def login(request: Request, session: DbSession, username: Annotated[str, Form()] = "",
          password: Annotated[str, Form()] = "", csrf: Annotated[str, Form(alias="csrf_token")] = "",
          next: Annotated[str, Form()] = "/") -> Response:
    check_csrf(request, csrf)
    user = authenticate(session, username=username.strip(), password=password)
    if user is None:
        return render(request, "login.html", {"next": _safe_next(next), "username": username,
                                               "error": "用户名或密码错误"}, status_code=401)
    request.session.clear()  # a fresh session (and CSRF token) after login: no fixation
    request.session["uid"] = user.id
    record(session, actor=user, action="auth.login", object_type="user", object_id=user.id)
    session.commit()
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form(alias="csrf_token")] = "") -> Response:
    check_csrf(request, csrf)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/")
def home(request: Request, session: DbSession, user: PageUser) -> Response:
    counts = inbox.tab_counts(session, actor=user, query=inbox.InboxQuery())
    overdue = inbox.tab_counts(session, actor=user, query=inbox.InboxQuery(overdue=True))
    tasks, _ = inbox.list_inbox(session, actor=user, query=inbox.InboxQuery(tab=inbox.Tab.mine), limit=10)
    waiting, _ = inbox.list_inbox(session, actor=user, query=inbox.InboxQuery(tab=inbox.Tab.to_claim), limit=10)
    return render(request, "home.html", {"user": user, "tasks": tasks, "waiting": waiting, "counts": counts,
                                          "overdue": overdue[inbox.Tab.mine] + overdue[inbox.Tab.to_claim],
                                          "deadlines": inbox.next_deadlines(session, actor=user), "now": utcnow(),
                                          "escalated": reminders.escalated_tasks(session, actor=user),
                                          "failed_sends": notifications.failed_count(session, actor=user)
                                          if notifications.may_read_outbox(user) else 0,
                                          "startable": workflows.startable_processes(session, actor=user)})


def _task_context(session: DbSession, user: User, task_id: int, values: dict[str, Any] | None = None,
                  errors: dict[str, str] | None = None) -> dict[str, Any]:
    task = workflows.get_task(session, actor=user, task_id=task_id)
    form = workflows.task_form(session, task)
    student = review = None
    if task.instance.subject_type == "student" and task.instance.subject_id:
        subject = students.get_student_unscoped(session, task.instance.subject_id)
        student = students.to_read(subject, actor=user)
        if task.status == "open":
            review = students.review_findings(session, student=subject, actor=user, today=local_today())
    batch = None
    if task.instance.subject_type == "import_batch" and task.instance.subject_id:
        batch = imports.to_read(imports.get_batch(session, actor=user, batch_id=task.instance.subject_id))
    may_act = task.status == "open" and holds(user, task.role, task.org_unit)
    draft = drafts.of(session, user_id=user.id, task_id=task.id) if may_act else None
    task_data, instructions = workflows.task_view(session, task)
    panel = request_panels.panel_for(session, task=task, user=user, data=task_data)
    if values is None:
        values = {"student": student} if form and "student" in (form.get("properties") or {}) else {}
        if panel is not None and panel.form_values:
            values = panel.form_values  # a returned request: the revision starts from what was asked
        if draft is not None and form:
            values = {**values, **parse_posted(form, draft.data)}  # what was typed before the connection dropped
    fields = fill(fields_of(form), values, errors or {}) if form else []
    history = workflows.instance_history(session, task.instance)
    may_reassign = task.status == "open" and inbox.may_reassign(user, task)
    return {"user": user, "task": task, "fields": fields, "student": student, "batch": batch, "history": history,
            "review": review, "attachments": attachments.of_instance(session, task.instance),
            "instructions": instructions, "panel": panel, "may_act": may_act, "draft": draft,
            "may_reassign": may_reassign, "candidates": inbox.candidates(session, task=task) if may_reassign else [],
            "may_change_due": reminders.may_change_due(user, task),
            "actions": workflows.task_actions(form), "errors": errors or {},
            "progress": diagrams.progress_of(session, task.instance)}


@router.get("/tasks/{task_id}")
def task_page(request: Request, task_id: RowId, session: DbSession, user: PageUser) -> Response:
    return render(request, "task.html", _task_context(session, user, task_id))


@router.post("/tasks/{task_id}")
def task_submit(request: Request, task_id: RowId, session: DbSession, user: PageUser, posted: PostedFields,
                uploads: PostedUploads) -> Response:
    check_csrf(request, posted.get("csrf_token"))
    task = workflows.get_task(session, actor=user, task_id=task_id)
    form = workflows.task_form(session, task) or {"properties": {}}
    data = parse_posted(form, posted)
    try:
        _attach_uploads(session, request, user, task, form, data, uploads)
        workflows.complete_task(session, actor=user, task_id=task_id, data=data, files=request.app.state.files)
    except RuleViolation as err:
        session.rollback()
        errors = {d.get("field", ""): d["message"] for d in (err.details or []) if isinstance(d, dict)}
        errors = {(k if "." in k or not _nested(form) else f"{_nested(form)}.{k}"): v for k, v in errors.items()}
        context = _task_context(session, user, task_id, values=data, errors=errors)
        context["message"] = err.message
        return render(request, "task.html", context, status_code=422)
    session.commit()
    return RedirectResponse("/tasks?done=1", status_code=303)


def _attach_uploads(session: Session, request: Request, user: User, task: workflows.HumanTask, form: dict[str, Any],
                    data: dict[str, Any], uploads: dict[str, list[tuple[str, bytes]]]) -> None:
    """A file field's scans become the task's attachments and their ids the field's value. Committed before
    the task is completed: if the completion is refused, the page comes back with the scans kept."""
    names = file_fields(form)
    if not names:
        return
    own = {a.id for a in attachments.of_instance(session, task.instance) if a.task_id == task.id}
    for name in names:
        ids = [i for i in _lookup(data, name) or [] if i in own]  # only this task's, whatever the page sent
        for file_name, content in uploads.get(name, []):
            try:
                ids.append(attachments.attach(session, actor=user, task_id=task.id, file_name=file_name, data=content,
                                              store=request.app.state.files).id)
            except RuleViolation as err:
                raise RuleViolation(err.message, details=[{"field": name, "message": err.message}]) from err
        if ids:
            set_path(data, name, ids)
    session.commit()


def _lookup(values: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        values = values.get(part) if isinstance(values, dict) else None
    return values


def _nested(form: dict[str, Any]) -> str | None:
    """The name of the single object property a form wraps its fields in (the student form), if any."""
    objects = [k for k, v in (form.get("properties") or {}).items() if v.get("type") == "object"]
    return objects[0] if len(objects) == 1 else None


@router.post("/tasks/{task_id}/claim")
def task_claim(request: Request, task_id: RowId, session: DbSession, user: PageUser,
               csrf: Annotated[str, Form(alias="csrf_token")] = "") -> Response:
    check_csrf(request, csrf)
    workflows.claim_task(session, actor=user, task_id=task_id)
    session.commit()
    return RedirectResponse(f"/tasks/{task_id}", status_code=303)


@router.post("/tasks/{task_id}/unclaim")
def task_unclaim(request: Request, task_id: RowId, session: DbSession, user: PageUser,
                 csrf: Annotated[str, Form(alias="csrf_token")] = "") -> Response:
    check_csrf(request, csrf)
    workflows.unclaim_task(session, actor=user, task_id=task_id)
    session.commit()
    return RedirectResponse(f"/tasks/{task_id}", status_code=303)


@router.post("/tasks/{task_id}/attachments")
def task_attach(request: Request, task_id: RowId, session: DbSession, user: PageUser, file: UploadFile | None = None,
                csrf: Annotated[str, Form(alias="csrf_token")] = "") -> Response:
    check_csrf(request, csrf)
    try:
        if file is None or not file.filename:
            raise RuleViolation("附件：请选择要上传的文件", details=[{"field": "file", "message": "未选择文件"}])
        attachments.attach(session, actor=user, task_id=task_id, file_name=file.filename,
                           data=file.file.read(attachments.MAX_BYTES + 1), store=request.app.state.files)
    except (RuleViolation, PermissionDenied, InvalidTransition) as err:
        session.rollback()
        context = _task_context(session, user, task_id)
        context["attach_error"] = err.message
        return render(request, "task.html", context, status_code=err.status)
    session.commit()
    return RedirectResponse(f"/tasks/{task_id}#attachments", status_code=303)


@router.post("/tasks/{task_id}/reassign")
def task_reassign(request: Request, task_id: RowId, session: DbSession, user: PageUser,
                  username: Annotated[str, Form(max_length=64)] = "", reason: Annotated[str, Form(max_length=200)] = "",
                  csrf: Annotated[str, Form(alias="csrf_token")] = "") -> Response:
    check_csrf(request, csrf)
    try:
        inbox.reassign(session, actor=user, task_id=task_id, to_username=username, reason=reason.strip() or None)
    except RuleViolation as err:
        session.rollback()
        context = _task_context(session, user, task_id)
        context["message"] = err.message
        return render(request, "task.html", context, status_code=422)
    session.commit()
    return RedirectResponse(f"/tasks/{task_id}?reassigned=1", status_code=303)


@router.get("/students")
def students_page(request: Request, session: DbSession, user: PageUser, q: str = "",
                  page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    page = max(page, 1)
    rows, total = student_lists.search(session, actor=user, q=q or None, limit=50, offset=(page - 1) * 50)
    return render(request, "students.html", {"user": user, "students": [students.to_read(s, actor=user)
                                                                            for s in rows],
                                              "total": total, "q": q, "page": page})


def _intake_form(session: DbSession) -> dict[str, Any]:
    version = workflows.latest_version(session, "student_intake")
    return workflows.definition_of(version).forms["student"]


@router.get("/students/new")
def new_student_page(request: Request, session: DbSession, user: PageUser) -> Response:
    schools = [g.org_unit for g in user.grants if g.role == "school_registrar"]
    values = {"student": {"school_code": schools[0].code if schools else "", "id_type": "1"}}
    fields = fill(fields_of({"properties": {"student": _intake_form(session)}}), values, {})
    return render(request, "student_new.html", {"user": user, "fields": fields, "errors": {}})


@router.post("/students/new")
def new_student(request: Request, session: DbSession, user: PageUser, posted: PostedFields) -> Response:
    check_csrf(request, posted.get("csrf_token"))
    schema = {"properties": {"student": _intake_form(session)}}
    data = parse_posted(schema, posted)
    try:
        instance, _warnings = workflows.start_process(session, actor=user, process_id="student_intake", data=data)
    except RuleViolation as err:
        session.rollback()
        errors = {}
        for d in err.details or []:
            if isinstance(d, dict):
                key = d.get("field", "")
                errors[key if key.startswith("student.") else f"student.{key}"] = d["message"]
        fields = fill(fields_of(schema), data, errors)
        return render(request, "student_new.html", {"user": user, "fields": fields, "errors": errors,
                                                     "message": err.message}, status_code=422)
    session.commit()
    return RedirectResponse(f"/students/{instance.subject_id}?submitted=1", status_code=303)


def _start_context(session: DbSession, user: User, *, chosen: str | None = None, values: dict[str, Any] | None = None,
                   errors: dict[str, str] | None = None, message: str | None = None) -> dict[str, Any]:
    startable = workflows.startable_processes(session, actor=user)
    forms = {}
    for p in startable:
        mine = p.process_id == chosen
        forms[p.process_id] = fill(fields_of(p.form), (values or {}) if mine else {},
                                   (errors or {}) if mine else {}) if p.form else []
    return {"user": user, "startable": startable, "fields": forms, "chosen": chosen, "errors": errors or {},
            "message": message, "role_labels": ROLE_LABELS}


@router.get("/start")
def start_page(request: Request, session: DbSession, user: PageUser) -> Response:
    """发起流程: the processes without a page of their own (made in the modeler) that the user may start."""
    return render(request, "process_start.html", _start_context(session, user))


@router.post("/start/{process_id}")
def start_submit(request: Request, process_id: str, session: DbSession, user: PageUser, posted: PostedFields) -> Response:
    check_csrf(request, posted.get("csrf_token"))
    form = next((p.form for p in workflows.startable_processes(session, actor=user) if p.process_id == process_id), None)
    data = parse_posted(form, posted) if form else {}
    try:
        instance, _warnings = workflows.start_process(session, actor=user, process_id=process_id, data=data,
                                                      org_unit=posted.get("org_unit") or None)
    except (RuleViolation, PermissionDenied, Conflict) as err:
        session.rollback()
        errors = {d.get("field", ""): d["message"] for d in (err.details or []) if isinstance(d, dict)}
        context = _start_context(session, user, chosen=process_id, values=data, errors=errors, message=err.message)
        return render(request, "process_start.html", context, status_code=err.status)
    session.commit()
    return RedirectResponse(f"/instances/{instance.id}?started=1", status_code=303)


def _student_context(session: DbSession, user: User, student_id: int) -> dict[str, Any]:
    student = students.get_student(session, actor=user, student_id=student_id)
    year = school_year_of(local_today())
    return {"user": user, "student": students.to_read(student, actor=user),
            # This school year's subsidy months; /students/{id}/subsidy has every month and its rule.
            "subsidy": subsidy.explain(session, student, year=year, today=local_today()), "subsidy_year": year,
            "may_edit": students.may_edit(user, student), "may_void": students.may_void(user, student),
            "may_change_status": status_changes.may_request(user, student),
            "key_fields_locked": students.key_fields_locked(session, student, today=local_today()),
            "instances": workflows.instances_about(session, actor=user, subject_type="student", subject_id=student.id),
            "void_reason": "", "void_error": None}


@router.get("/students/{student_id}")
def student_page(request: Request, student_id: RowId, session: DbSession, user: PageUser) -> Response:
    context = _student_context(session, user, student_id)
    return render(request, "student.html", {**context, "submitted": request.query_params.get("submitted")})


@router.post("/students/{student_id}/void")
def student_void(request: Request, student_id: RowId, session: DbSession, user: PageUser,
                 csrf: Annotated[str, Form(alias="csrf_token")] = "", reason: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf)
    try:
        students.void_active(session, actor=user, student_id=student_id, reason=reason)
    except RuleViolation as err:
        session.rollback()
        context = {**_student_context(session, user, student_id), "void_reason": reason, "void_error": err.message}
        return render(request, "student.html", context, status_code=422)
    session.commit()
    return RedirectResponse(f"/students/{student_id}?voided=1", status_code=303)


def _edit_context(session: DbSession, user: User, student_id: int, *, values: dict[str, Any] | None = None,
                  errors: dict[str, str] | None = None, message: str | None = None,
                  reason: str = "") -> dict[str, Any]:
    """The edit form of a student: the fields the registrar may correct, the others shown read-only."""
    student = students.get_for_edit(session, actor=user, student_id=student_id)
    locked = students.key_fields_locked(session, student, today=local_today())
    editable = students.directly_editable(key_fields_locked=locked)
    current = student.fields()
    return {"user": user, "student": students.to_read(student, actor=user),
            "fields": fill(fields_of(_student_edit_schema(session, editable)), {**current, **(values or {})},
                           errors or {}),
            "lock_date": students.key_fields_lock_date(session, student), "key_fields_locked": locked,
            "key_fields": students.KEY_FIELDS, "process_fields": students.PROCESS_FIELDS,
            "labels": FIELD_LABELS, "codes": load_code_tables(), "errors": errors or {}, "message": message,
            "reason": reason}


def _student_edit_schema(session: DbSession, editable: tuple[str, ...]) -> dict[str, Any]:
    """The intake form's own fields (titles, widgets, code lists), those editable only."""
    form = _intake_form(session)
    return {"properties": {k: v for k, v in form["properties"].items() if k in editable},
            "required": [k for k in form.get("required", []) if k in editable]}


@router.get("/students/{student_id}/edit")
def student_edit_page(request: Request, student_id: RowId, session: DbSession, user: PageUser) -> Response:
    return render(request, "student_edit.html", _edit_context(session, user, student_id))


@router.post("/students/{student_id}/edit")
def student_edit(request: Request, student_id: RowId, session: DbSession, user: PageUser,
                 posted: PostedFields) -> Response:
    check_csrf(request, posted.get("csrf_token"))
    today = local_today()
    student = students.get_for_edit(session, actor=user, student_id=student_id)
    editable = students.directly_editable(key_fields_locked=students.key_fields_locked(session, student, today=today))
    changes = posted_changes(_student_edit_schema(session, editable), posted)
    reason = posted.get("reason", "")
    try:
        students.update_student(session, actor=user, student_id=student_id, changes=changes, today=today,
                                reason=reason, require_reason=True)
    except InvalidTransition:
        raise
    except (RuleViolation, Conflict) as err:
        # Conflicts here name a field too: an ID number live elsewhere, key fields locked since the page loaded.
        session.rollback()
        errors = {d["field"]: d["message"] for d in err.details or [] if isinstance(d, dict) and "field" in d}
        context = _edit_context(session, user, student_id, values=changes, errors=errors, message=err.message,
                                reason=reason)
        return render(request, "student_edit.html", context, status_code=err.status)
    session.commit()
    return RedirectResponse(f"/students/{student_id}?saved=1", status_code=303)


@router.get("/schools")
def schools_page(request: Request, session: DbSession, user: PageUser, q: str = "") -> Response:
    rows, total = schools.list_schools(session, actor=user, q=q or None, limit=500)
    return render(request, "schools.html", {"user": user, "schools": rows, "total": total, "q": q,
                                             "codes": load_code_tables()})


@router.get("/schools/{code}")
def school_page(request: Request, code: str, session: DbSession, user: PageUser) -> Response:
    school = schools.get_school(session, actor=user, code=code)
    return render(request, "school.html", {"user": user, "school": school.fields(), "labels": SCHOOL_LABELS,
                                            "codes": load_code_tables(),
                                            "history": schools.school_history(session, actor=user, code=code)})


def _school_form_schema() -> dict[str, Any]:
    """The Art. 11 fields as a form: code-table fields become selects, the rate a number."""
    return {"properties": {field: {"type": "number" if field == "subsidy_rate" else "string",
                                   "title": SCHOOL_LABELS[field] + ("（元/天）" if field == "subsidy_rate" else "")}
                           for field in EDITABLE_FIELDS}, "required": ["name"]}


@router.get("/schools/{code}/edit")
def school_edit_page(request: Request, code: str, session: DbSession, user: PageUser) -> Response:
    school = schools.get_school(session, actor=user, code=code)
    fields = fill(fields_of(_school_form_schema()), school.fields(), {})
    return render(request, "school_edit.html", {"user": user, "school": school.fields(), "fields": fields})


@router.post("/schools/{code}/edit")
def school_edit(request: Request, code: str, session: DbSession, user: PageUser, posted: PostedFields) -> Response:
    check_csrf(request, posted.get("csrf_token"))
    schema = _school_form_schema()
    current = schools.get_school(session, actor=user, code=code).fields()
    # Only the fields the form sent: a field missing from the post is not a request to clear it.
    values = {field: posted[field].strip() for field in EDITABLE_FIELDS if field in posted}
    changes = {k: v for k, v in values.items() if v != ("" if current[k] is None else str(current[k]))}
    try:
        schools.update_school(session, actor=user, code=code, changes=changes,
                              reason=(posted.get("reason") or "").strip() or None)
    except RuleViolation as err:
        session.rollback()
        errors = {d["field"]: d["message"] for d in (err.details or []) if isinstance(d, dict)}
        fields = fill(fields_of(schema), {**current, **values}, errors)
        return render(request, "school_edit.html", {"user": user, "school": current, "fields": fields,
                                                     "message": err.message}, status_code=422)
    session.commit()
    return RedirectResponse(f"/schools/{code}?saved=1", status_code=303)
