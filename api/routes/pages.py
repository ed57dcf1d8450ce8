"""Server-rendered pages (zh-CN): login, home, task inbox and task page, students, new-student intake."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from api.deps import DbSession, NotAuthenticated, RowId, csrf_ok, csrf_token, optional_user
from api.html_forms import fields_of, fill, parse_posted
from api.templating import templates
from registry import schools, students, workflows
from registry.audit import record
from registry.code_tables import load_code_tables
from registry.errors import PermissionDenied, RuleViolation
from registry.rules.school import EDITABLE_FIELDS, SCHOOL_LABELS
from registry.users import User, authenticate

router = APIRouter(include_in_schema=False)


def page_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    # Not signed in: the 401 handler sends a page request to /login?next=… (api/app.py).
    if user is None:
        raise NotAuthenticated()
    return user


PageUser = Annotated[User, Depends(page_user)]


def _render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    context.setdefault("csrf_token", csrf_token(request))
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def _check_csrf(request: Request, token: str | None) -> None:
    if not csrf_ok(request, token):
        raise PermissionDenied("表单已过期或来源不明（CSRF 校验失败），请刷新页面后重新提交")


def _safe_next(target: str | None) -> str:
    # Only our own paths: "//evil.example" and absolute URLs would make login an open redirect.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    return _render(request, "login.html", {"next": _safe_next(next), "error": None, "username": ""})


@router.post("/login")
def login(request: Request, session: DbSession, username: Annotated[str, Form()] = "",
          password: Annotated[str, Form()] = "", csrf: Annotated[str, Form(alias="csrf_token")] = "",
          next: Annotated[str, Form()] = "/") -> Response:
    _check_csrf(request, csrf)
    user = authenticate(session, username=username.strip(), password=password)
    if user is None:
        return _render(request, "login.html", {"next": _safe_next(next), "username": username,
                                               "error": "用户名或密码错误"}, status_code=401)
    request.session.clear()  # a fresh session (and CSRF token) after login: no fixation
    request.session["uid"] = user.id
    record(session, actor=user, action="auth.login", object_type="user", object_id=user.id)
    session.commit()
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form(alias="csrf_token")] = "") -> Response:
    _check_csrf(request, csrf)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/")
def home(request: Request, session: DbSession, user: PageUser) -> Response:
    tasks, total = workflows.list_tasks(session, actor=user, limit=10)
    _, overdue = workflows.list_tasks(session, actor=user, overdue=True, limit=1)
    return _render(request, "home.html", {"user": user, "tasks": tasks, "total": total, "overdue": overdue})


@router.get("/tasks")
def tasks_page(request: Request, session: DbSession, user: PageUser, status: str = "open") -> Response:
    status = status if status in ("open", "completed") else "open"
    tasks, total = workflows.list_tasks(session, actor=user, status=status, limit=200)
    return _render(request, "tasks.html", {"user": user, "tasks": tasks, "total": total, "status": status})


def _task_context(session: DbSession, user: User, task_id: int, values: dict[str, Any] | None = None,
                  errors: dict[str, str] | None = None) -> dict[str, Any]:
    task = workflows.get_task(session, actor=user, task_id=task_id)
    form = workflows.task_form(session, task)
    student = None
    if task.instance.subject_type == "student" and task.instance.subject_id:
        student = students.to_read(students.get_student_unscoped(session, task.instance.subject_id), actor=user)
    if values is None:
        values = {"student": student} if form and "student" in (form.get("properties") or {}) else {}
    fields = fill(fields_of(form), values, errors or {}) if form else []
    history = workflows.instance_history(session, task.instance)
    return {"user": user, "task": task, "fields": fields, "student": student, "history": history,
            "instructions": workflows.task_view(session, task)[1],
            "actions": workflows.task_actions(form), "errors": errors or {}}


@router.get("/tasks/{task_id}")
def task_page(request: Request, task_id: RowId, session: DbSession, user: PageUser) -> Response:
    return _render(request, "task.html", _task_context(session, user, task_id))


async def posted_fields(request: Request) -> dict[str, str]:
    """A form whose fields come from a JSON Schema: read it here, so the route itself runs off the event loop."""
    return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}


PostedFields = Annotated[dict[str, str], Depends(posted_fields)]


@router.post("/tasks/{task_id}")
def task_submit(request: Request, task_id: RowId, session: DbSession, user: PageUser, posted: PostedFields) -> Response:
    _check_csrf(request, posted.get("csrf_token"))
    task = workflows.get_task(session, actor=user, task_id=task_id)
    form = workflows.task_form(session, task) or {"properties": {}}
    data = parse_posted(form, posted)
    try:
        workflows.complete_task(session, actor=user, task_id=task_id, data=data)
    except RuleViolation as err:
        session.rollback()
        errors = {d.get("field", ""): d["message"] for d in (err.details or []) if isinstance(d, dict)}
        errors = {(k if "." in k or not _nested(form) else f"{_nested(form)}.{k}"): v for k, v in errors.items()}
        context = _task_context(session, user, task_id, values=data, errors=errors)
        context["message"] = err.message
        return _render(request, "task.html", context, status_code=422)
    session.commit()
    return RedirectResponse("/tasks?done=1", status_code=303)


def _nested(form: dict[str, Any]) -> str | None:
    """The name of the single object property a form wraps its fields in (the student form), if any."""
    objects = [k for k, v in (form.get("properties") or {}).items() if v.get("type") == "object"]
    return objects[0] if len(objects) == 1 else None


@router.post("/tasks/{task_id}/claim")
def task_claim(request: Request, task_id: RowId, session: DbSession, user: PageUser,
               csrf: Annotated[str, Form(alias="csrf_token")] = "") -> Response:
    _check_csrf(request, csrf)
    workflows.claim_task(session, actor=user, task_id=task_id)
    session.commit()
    return RedirectResponse(f"/tasks/{task_id}", status_code=303)


@router.get("/students")
def students_page(request: Request, session: DbSession, user: PageUser, q: str = "",
                  page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> Response:
    page = max(page, 1)
    rows, total = students.search(session, actor=user, q=q or None, limit=50, offset=(page - 1) * 50)
    return _render(request, "students.html", {"user": user, "students": [students.to_read(s, actor=user)
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
    return _render(request, "student_new.html", {"user": user, "fields": fields, "errors": {}})


@router.post("/students/new")
def new_student(request: Request, session: DbSession, user: PageUser, posted: PostedFields) -> Response:
    _check_csrf(request, posted.get("csrf_token"))
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
        return _render(request, "student_new.html", {"user": user, "fields": fields, "errors": errors,
                                                     "message": err.message}, status_code=422)
    session.commit()
    return RedirectResponse(f"/students/{instance.subject_id}?submitted=1", status_code=303)


@router.get("/students/{student_id}")
def student_page(request: Request, student_id: RowId, session: DbSession, user: PageUser) -> Response:
    student = students.get_student(session, actor=user, student_id=student_id)
    return _render(request, "student.html", {"user": user, "student": students.to_read(student, actor=user),
                                             "submitted": request.query_params.get("submitted")})


@router.get("/schools")
def schools_page(request: Request, session: DbSession, user: PageUser, q: str = "") -> Response:
    rows, total = schools.list_schools(session, actor=user, q=q or None, limit=500)
    return _render(request, "schools.html", {"user": user, "schools": rows, "total": total, "q": q,
                                             "codes": load_code_tables()})


@router.get("/schools/{code}")
def school_page(request: Request, code: str, session: DbSession, user: PageUser) -> Response:
    school = schools.get_school(session, actor=user, code=code)
    return _render(request, "school.html", {"user": user, "school": school.fields(), "labels": SCHOOL_LABELS,
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
    return _render(request, "school_edit.html", {"user": user, "school": school.fields(), "fields": fields})


@router.post("/schools/{code}/edit")
def school_edit(request: Request, code: str, session: DbSession, user: PageUser, posted: PostedFields) -> Response:
    _check_csrf(request, posted.get("csrf_token"))
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
        return _render(request, "school_edit.html", {"user": user, "school": current, "fields": fields,
                                                     "message": err.message}, status_code=422)
    session.commit()
    return RedirectResponse(f"/schools/{code}?saved=1", status_code=303)
