"""Pages of data releases (信息提供审批, Art. 24): the request form, my requests, one request with its
download link and log, the revision of a returned request, and the download itself. The rules:
registry/data_releases.py; the county approves on the generic task page (api/request_panels.py)."""

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from api.deps import DbSession, RowId
from api.page_support import PageUser, check_csrf, render
from api.routes.api_releases import attachment
from registry import data_releases, workflows
from registry.db import utcnow
from registry.errors import DomainError, RuleViolation
from registry.org_units import OrgKind
from registry.rules.student import FIELD_LABELS
from registry.students import STATUS_LABELS
from registry.users import User

router = APIRouter(include_in_schema=False)

Csrf = Annotated[str, Form(alias="csrf_token")]
Strings = Annotated[list[str] | None, Form()]
Text = Annotated[str, Form(max_length=600)]
Short = Annotated[str, Form(max_length=20)]
# A new request starts with what a statistics request usually needs, nothing that identifies a child by number.
DEFAULT_FIELDS = ("name", "sex", "school_code", "grade", "class_name")


def _number(raw: str) -> int | str | None:
    raw = raw.strip()
    if not raw:
        return None
    return int(raw) if raw.isdigit() else raw  # anything else: the service names the field and its bounds


def _posted(org_units: list[str] | None, grades: list[str] | None, statuses: list[str] | None,
            fields: list[str] | None, full: list[str] | None, purpose: str, recipient_department: str,
            recipient_person: str, valid_days: str, max_downloads: str) -> dict[str, Any]:
    return {"org_units": org_units or [], "grades": [int(g) for g in grades or [] if g.isdigit()],
            "statuses": statuses or [], "fields": fields or [], "full": full or [], "purpose": purpose,
            "recipient_department": recipient_department, "recipient_person": recipient_person,
            "valid_days": _number(valid_days), "max_downloads": _number(max_downloads)}


def _form_context(session: DbSession, user: User, *, values: dict[str, Any], action: str, title: str,
                  release: Any = None, errors: dict[str, str] | None = None,
                  message: str | None = None) -> dict[str, Any]:
    units = data_releases.scope_choices(session, actor=user)
    depth = {OrgKind.county: 0, OrgKind.township: 1, OrgKind.school: 2}
    return {"user": user, "title": title, "action": action, "release": release,
            "may_request": bool(data_releases.requester_roles(user)),
            "units": [{"code": u.code, "name": u.name, "depth": depth[OrgKind(u.kind)]} for u in units],
            "fields": [(f, FIELD_LABELS[f]) for f in data_releases.RELEASABLE_FIELDS],
            "full_choices": list(data_releases.FULL_CHOICES.items()),
            "statuses": [(s.value, STATUS_LABELS[s]) for s in data_releases.RELEASABLE_STATUSES],
            "grades": list(data_releases.GRADES), "bounds": {"valid_days": data_releases.VALID_DAYS,
                                                            "max_downloads": data_releases.MAX_DOWNLOADS},
            "values": values, "errors": errors or {}, "message": message}


def _errors(err: DomainError) -> dict[str, str]:
    out: dict[str, str] = {}
    for detail in err.details or []:
        if isinstance(detail, dict) and detail.get("field"):
            field = str(detail["field"]).removeprefix("data_release.")
            out[field] = f"{out[field]}；{detail['message']}" if field in out else str(detail.get("message", ""))
    return out


@router.get("/releases")
def releases_page(request: Request, session: DbSession, user: PageUser, scope: str = "mine") -> Response:
    mine = scope != "all" or not data_releases.may_list_all(user)
    rows, total = data_releases.list_releases(session, actor=user, mine=mine, limit=200)
    now = utcnow()
    return render(request, "releases.html", {
        "user": user, "mine": mine, "may_list_all": data_releases.may_list_all(user), "total": total,
        "may_request": bool(data_releases.requester_roles(user)),
        "releases": [(data_releases.to_read(session, r, actor=user, now=now), r) for r in rows]})


@router.get("/releases/new")
def new_release_page(request: Request, session: DbSession, user: PageUser) -> Response:
    values = {"fields": list(DEFAULT_FIELDS), "statuses": ["active"], "valid_days": data_releases.VALID_DAYS[2],
              "max_downloads": data_releases.MAX_DOWNLOADS[2]}
    return render(request, "release_form.html", _form_context(session, user, values=values, action="/releases/new",
                                                                title="申请提供学生信息"))


@router.post("/releases/new")
def new_release_submit(request: Request, session: DbSession, user: PageUser, org_units: Strings = None,
                       grades: Strings = None, statuses: Strings = None, fields: Strings = None, full: Strings = None,
                       purpose: Text = "", recipient_department: Text = "", recipient_person: Text = "",
                       valid_days: Short = "", max_downloads: Short = "", csrf: Csrf = "") -> Response:
    check_csrf(request, csrf)
    data = _posted(org_units, grades, statuses, fields, full, purpose, recipient_department, recipient_person,
                   valid_days, max_downloads)
    try:
        instance, _ = workflows.start_process(session, actor=user, process_id="data_release", data=data)
    except RuleViolation as err:
        session.rollback()
        context = _form_context(session, user, values=data, action="/releases/new", title="申请提供学生信息",
                                errors=_errors(err), message=err.message)
        return render(request, "release_form.html", context, status_code=err.status)
    session.commit()
    return RedirectResponse(f"/releases/{instance.subject_id}?submitted=1", status_code=303)


@router.get("/releases/download/{token}")
def download_page(request: Request, token: str, session: DbSession, user: PageUser) -> Response:
    try:
        release, data = data_releases.download(
            session, actor=user, now=utcnow(), store=request.app.state.files, token=token[:64],
            ip=request.client.host if request.client else None, user_agent=request.headers.get("user-agent"))
    except DomainError as err:
        session.commit()  # the refused attempt stays on record
        return render(request, "release_refused.html", {"user": user, "message": err.message},
                       status_code=err.status)
    session.commit()
    return attachment(data, data_releases.file_name(release))


def _detail_context(session: DbSession, user: User, release_id: int) -> dict[str, Any]:
    release = data_releases.get_release(session, actor=user, release_id=release_id)
    try:
        revising = data_releases.revision_task(session, actor=user, release_id=release_id)
    except DomainError:  # not returned, or not theirs to revise
        revising = None
    return {"user": user, "release": data_releases.to_read(session, release, actor=user, now=utcnow()),
            "obj": release, "log": data_releases.downloads_of(session, release), "revising": revising}


@router.get("/releases/{release_id}")
def release_page(request: Request, release_id: RowId, session: DbSession, user: PageUser) -> Response:
    return render(request, "release.html", _detail_context(session, user, release_id))


@router.get("/releases/{release_id}/revise")
def revise_page(request: Request, release_id: RowId, session: DbSession, user: PageUser) -> Response:
    data_releases.revision_task(session, actor=user, release_id=release_id)
    release = data_releases.get_release(session, actor=user, release_id=release_id)
    return render(request, "release_form.html", _form_context(
        session, user, values=data_releases.form_values(release), action=f"/releases/{release_id}/revise",
        title=f"修改信息提供申请（第 {release.number} 号）", release=release))


@router.post("/releases/{release_id}/revise")
def revise_submit(request: Request, release_id: RowId, session: DbSession, user: PageUser, org_units: Strings = None,
                  grades: Strings = None, statuses: Strings = None, fields: Strings = None, full: Strings = None,
                  purpose: Text = "", recipient_department: Text = "", recipient_person: Text = "",
                  valid_days: Short = "", max_downloads: Short = "", csrf: Csrf = "") -> Response:
    check_csrf(request, csrf)
    data = _posted(org_units, grades, statuses, fields, full, purpose, recipient_department, recipient_person,
                   valid_days, max_downloads)
    task = data_releases.revision_task(session, actor=user, release_id=release_id)
    try:
        # The form's JSON Schema wants every optional number present or absent, never null.
        workflows.complete_task(session, actor=user, task_id=task.id,
                                data={"data_release": {k: v for k, v in data.items() if v is not None}})
    except RuleViolation as err:
        session.rollback()
        release = data_releases.get_release(session, actor=user, release_id=release_id)
        context = _form_context(session, user, values=data, action=f"/releases/{release_id}/revise",
                                title=f"修改信息提供申请（第 {release.number} 号）", release=release,
                                errors=_errors(err), message=err.message)
        return render(request, "release_form.html", context, status_code=err.status)
    session.commit()
    return RedirectResponse(f"/releases/{release_id}?submitted=1", status_code=303)
