from typing import Any
from urllib.parse import parse_qsl, quote

from fastapi import APIRouter, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse

from api.deps import CurrentUser, DbSession, Offset, RowId
from api.i18n import translated, translated_details
from api.schemas import DataBody, StrictBody, findings, task_read
from registry import attachments, drafts, inbox, workflows
from registry.errors import msg
from registry.inbox import InboxQuery

router = APIRouter(prefix="/api", tags=["tasks"])


@router.get("/tasks")
def list_tasks(request: Request, session: DbSession, user: CurrentUser,
               status: str = Query("open", pattern="^(open|completed)$"),
               tab: inbox.Tab | None = None, process_id: str | None = Query(None, max_length=80),
               school_code: str | None = Query(None, max_length=20), overdue: bool = False,
               due_this_week: bool = False, sort: str = Query("due", pattern="^(due|created|process)$"),
               limit: int = Query(100, ge=1, le=500), offset: Offset = 0) -> dict[str, Any]:
    """Without `tab`: every task of the caller's roles with that status (claimed or not). With `tab`
    (mine, to_claim, done, scope): the inbox tab, filtered and sorted, with the count of every tab."""
    if tab is None:
        rows, total = workflows.list_tasks(session, actor=user, status=status, limit=limit, offset=offset)
        return {"items": [task_read(t) for t in rows], "total": total}
    query = InboxQuery(tab=tab, process_id=process_id, school_code=school_code, overdue=overdue,
                       due_this_week=due_this_week, sort=sort)
    rows, total = inbox.list_inbox(session, actor=user, query=query, limit=limit, offset=offset)
    counts = inbox.tab_counts(session, actor=user, query=query)
    return {"items": [task_read(t) for t in rows], "total": total, "counts": {str(k): v for k, v in counts.items()}}


class BatchBody(StrictBody):
    task_ids: list[int]
    data: dict[str, Any] = {}


@router.post("/tasks/batch-complete")
def batch_complete(body: BatchBody, session: DbSession, user: CurrentUser) -> Any:
    """One decision on many tasks of one kind: all of them, or (409, each item's result) none."""
    ok, results = inbox.complete_many(session, actor=user, task_ids=body.task_ids, data=body.data)
    items = [{"task_id": r.task_id, "subject": r.subject, "ok": r.ok, "message": r.message} for r in results]
    if not ok:
        session.rollback()
        failed = sum(1 for r in results if not r.ok)
        message = msg("{failed} 项不能办理，全部未提交：请去掉这些任务后重试", failed=failed)
        return JSONResponse({"code": "batch_failed", "message": translated(message),
                             "details": translated_details(items)}, status_code=409)
    session.commit()
    return {"items": items, "total": len(items)}


@router.get("/tasks/{task_id}")
def get_task(task_id: RowId, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    task = workflows.get_task(session, actor=user, task_id=task_id)
    form = workflows.task_form(session, task)
    data, instructions = workflows.task_view(session, task)
    draft = drafts.of(session, user_id=user.id, task_id=task.id)
    return {**task_read(task), "form": form, "data": data, "instructions": instructions,
            "actions": workflows.task_actions(form), "draft": draft.data if draft else None,
            "may_reassign": inbox.may_reassign(user, task)}


@router.post("/tasks/{task_id}/claim")
def claim(task_id: RowId, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    task = workflows.claim_task(session, actor=user, task_id=task_id)
    session.commit()
    return task_read(task)


@router.post("/tasks/{task_id}/unclaim")
def unclaim(task_id: RowId, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    task = workflows.unclaim_task(session, actor=user, task_id=task_id)
    session.commit()
    return task_read(task)


class ReassignBody(StrictBody):
    username: str
    reason: str | None = None


@router.post("/tasks/{task_id}/reassign")
def reassign(task_id: RowId, body: ReassignBody, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    task = inbox.reassign(session, actor=user, task_id=task_id, to_username=body.username, reason=body.reason)
    session.commit()
    return task_read(task)


@router.put("/tasks/{task_id}/draft")
def save_draft(task_id: RowId, body: DataBody, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    """The half-filled form as the page has it (field name → text); it comes back with GET /api/tasks/{id}."""
    task = workflows.get_task(session, actor=user, task_id=task_id)
    workflows.check_may_act(user, task)
    draft = drafts.save(session, user_id=user.id, task_id=task.id,
                        fields={k: v if isinstance(v, str) else str(v) for k, v in body.data.items()})
    session.commit()
    return {"task_id": task.id, "saved_at": draft.updated_at.isoformat()}


@router.post("/tasks/{task_id}/complete")
def complete(task_id: RowId, body: DataBody, request: Request, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    task, warnings = workflows.complete_task(session, actor=user, task_id=task_id, data=body.data,
                                             files=request.app.state.files)
    session.commit()
    return {**task_read(task), "warnings": findings(warnings)}


class ReasonBody(StrictBody):
    reason: str


@router.post("/instances/{instance_id}/withdraw")
def withdraw(instance_id: RowId, body: ReasonBody, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    instance = workflows.withdraw(session, actor=user, instance_id=instance_id, reason=body.reason)
    session.commit()
    return {"id": instance.id, "status": instance.status}


class ViewBody(StrictBody):
    name: str
    query: str = ""


@router.get("/views")
def list_views(session: DbSession, user: CurrentUser) -> dict[str, Any]:
    views = inbox.views_of(session, actor=user)
    return {"items": [view_read(v) for v in views], "total": len(views)}


@router.post("/views", status_code=201)
def save_view(body: ViewBody, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    view = inbox.save_view(session, actor=user, name=body.name,
                           query=InboxQuery.from_params(dict(parse_qsl(body.query.lstrip("?")))))
    session.commit()
    return view_read(view)


@router.delete("/views/{view_id}", status_code=204)
def delete_view(view_id: RowId, session: DbSession, user: CurrentUser) -> None:
    inbox.delete_view(session, actor=user, view_id=view_id)
    session.commit()


def view_read(view: inbox.SavedView) -> dict[str, Any]:
    return {"id": view.id, "name": view.name, "query": view.query, "url": f"/tasks?view={view.id}"}


@router.post("/tasks/{task_id}/attachments", status_code=201)
def add_attachment(task_id: RowId, request: Request, file: UploadFile, session: DbSession,
                   user: CurrentUser) -> dict[str, Any]:
    """A scan of a paper form (PDF, JPEG or PNG, ≤ 10 MB) for the instance of an open task."""
    data = file.file.read(attachments.MAX_BYTES + 1)
    attachment = attachments.attach(session, actor=user, task_id=task_id, file_name=file.filename or "附件",
                                    data=data, store=request.app.state.files)
    session.commit()
    return attachment_read(attachment)


@router.get("/instances/{instance_id}/attachments")
def list_attachments(instance_id: RowId, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    instance = workflows.get_instance(session, actor=user, instance_id=instance_id)
    items = attachments.of_instance(session, instance)
    return {"items": [attachment_read(a) for a in items], "total": len(items)}


@router.get("/attachments/{attachment_id}")
def get_attachment(attachment_id: RowId, request: Request, session: DbSession, user: CurrentUser) -> Response:
    attachment, data = attachments.open_attachment(session, actor=user, attachment_id=attachment_id,
                                                   store=request.app.state.files)
    return Response(data, media_type=attachment.content_type, headers={
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(attachment.file_name)}",
        "Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff"})


def attachment_read(attachment: attachments.Attachment) -> dict[str, Any]:
    return {"id": attachment.id, "instance_id": attachment.instance_id, "task_id": attachment.task_id,
            "file_name": attachment.file_name, "content_type": attachment.content_type, "size": attachment.size,
            "uploaded_by": attachment.uploaded_by.display_name, "uploaded_at": attachment.uploaded_at.isoformat(),
            "url": f"/api/attachments/{attachment.id}"}
