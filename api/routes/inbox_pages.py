"""The inbox page: tabs with counts, filters kept in the URL, saved views, and batch decisions."""

from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from api.deps import DbSession, RowId
from api.page_support import PageUser, PostedFields, check_csrf, render
from registry import inbox, workflows
from registry.db import utcnow
from registry.errors import DomainError
from registry.inbox import InboxQuery, Tab
from registry.users import User
from registry.workflows import DECISION_LABELS

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 100


def _inbox(request: Request, session: DbSession, user: User, params: dict[str, str], *,
           results: list[inbox.ItemResult] | None = None, message: str | None = None,
           status_code: int = 200) -> Response:
    view = None
    if params.get("view", "").isdigit():
        view = inbox.get_view(session, int(params["view"]))
        params = {**inbox.view_params(view), **{k: v for k, v in params.items() if k != "view"}}
    query = InboxQuery.from_params(params)
    if query.tab not in inbox.tabs_for(user):
        query = InboxQuery.from_params({**params, "tab": Tab.to_claim})
    page = int(params["page"]) if params.get("page", "").isdigit() and 0 < int(params["page"]) < 10_000 else 1
    tasks, total = inbox.list_inbox(session, actor=user, query=query, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    return render(request, "tasks.html", {
        "user": user, "tasks": tasks, "total": total, "query": query, "page": page, "pages": -(-total // PAGE_SIZE),
        "counts": inbox.tab_counts(session, actor=user, query=query), "tab_labels": inbox.TAB_LABELS,
        "processes": inbox.process_choices(session), "schools": inbox.school_choices(session, actor=user),
        "sorts": inbox.SORTS, "views": inbox.views_of(session, actor=user), "view": view, "now": utcnow(),
        "batch": inbox.batch_kind(session, actor=user, tasks=tasks) if query.tab in (Tab.to_claim, Tab.mine) else None,
        "results": results, "message": message, "done": params.get("done") == "1",
        "held": inbox.held_count(session, actor=user, query=query),
        "next_step_failed": workflows.completion_failure(session, actor=user) if params.get("done") == "1" else None},
        status_code=status_code)


@router.get("/tasks")
def tasks_page(request: Request, session: DbSession, user: PageUser) -> Response:
    return _inbox(request, session, user, dict(request.query_params))


@router.post("/tasks/batch")
def batch_page(request: Request, session: DbSession, user: PageUser, posted: PostedFields) -> Response:
    """The same decision on every ticked task: all are done, or none and each one's result is shown."""
    check_csrf(request, posted.get("csrf_token"))
    form = dict(request.query_params)
    ticked = [int(v) for k, v in posted.items() if k.startswith("task_") and v.isdigit()]
    data = {"decision": posted.get("decision", "")}
    if posted.get("comment", "").strip():
        data["comment"] = posted["comment"].strip()
    try:
        ok, results = inbox.complete_many(session, actor=user, task_ids=ticked, data=data)
    except DomainError as err:
        session.rollback()
        return _inbox(request, session, user, form, message=err.message, status_code=err.status)
    if not ok:
        session.rollback()
        failed = sum(1 for r in results if not r.ok)
        return _inbox(request, session, user, form, results=results, status_code=409,
                      message=f"{failed} 项不能办理，所选任务全部未提交。请去掉这些任务后重试。")
    session.commit()
    return _inbox(request, session, user, form, results=results,
                  message=f"已办理 {len(results)} 项：{DECISION_LABELS.get(data['decision'], data['decision'])}")


@router.post("/tasks/views")
def save_view_page(request: Request, session: DbSession, user: PageUser,
                   name: Annotated[str, Form(max_length=200)] = "", query: Annotated[str, Form(max_length=500)] = "",
                   csrf: Annotated[str, Form(alias="csrf_token")] = "") -> Response:
    check_csrf(request, csrf)
    params = dict(parse_qsl(query))
    try:
        view = inbox.save_view(session, actor=user, name=name, query=InboxQuery.from_params(params))
    except DomainError as err:
        session.rollback()
        return _inbox(request, session, user, params, message=err.message, status_code=err.status)
    session.commit()
    return RedirectResponse(f"/tasks?view={view.id}", status_code=303)


@router.post("/tasks/views/{view_id}/delete")
def delete_view_page(request: Request, view_id: RowId, session: DbSession, user: PageUser,
                     csrf: Annotated[str, Form(alias="csrf_token")] = "") -> Response:
    check_csrf(request, csrf)
    inbox.delete_view(session, actor=user, view_id=view_id)
    session.commit()
    return RedirectResponse("/tasks", status_code=303)
