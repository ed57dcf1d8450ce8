from datetime import date
from typing import Any

from fastapi import APIRouter, Query

from api.deps import CurrentUser, DbSession, Offset, RowId
from api.schemas import StrictBody, task_read
from registry import notifications, reminders
from registry.notifications import Notification, Preferences

router = APIRouter(prefix="/api", tags=["notifications"])


def notification_read(row: Notification) -> dict[str, Any]:
    return {"id": row.id, "kind": row.kind, "subject": row.subject, "body": row.body, "link": row.link,
            "task_id": row.task_id, "instance_id": row.instance_id, "created_at": row.created_at.isoformat(),
            "read_at": row.read_at.isoformat() if row.read_at else None}


@router.get("/notifications")
def list_notifications(session: DbSession, user: CurrentUser, unread: bool = False,
                       limit: int = Query(50, ge=1, le=200), offset: Offset = 0) -> dict[str, Any]:
    """The caller's in-app notifications (the bell), newest first, with the unread count."""
    rows, total = notifications.list_mine(session, actor=user, unread_only=unread, limit=limit, offset=offset)
    return {"items": [notification_read(r) for r in rows], "total": total,
            "unread": notifications.unread_count(session, user_id=user.id)}


@router.post("/notifications/{notification_id}/read")
def read_notification(notification_id: RowId, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    row = notifications.mark_read(session, actor=user, notification_id=notification_id)
    session.commit()
    return notification_read(row)


class PreferencesBody(StrictBody):
    in_app: bool = True
    email: bool = True
    email_address: str | None = None
    webhook: bool = False
    webhook_url: str | None = None
    digest: bool = False


@router.get("/notifications/preferences")
def get_preferences(session: DbSession, user: CurrentUser) -> dict[str, Any]:
    return PreferencesBody(**notifications.preferences_of(session, user_id=user.id).__dict__).model_dump()


@router.put("/notifications/preferences")
def put_preferences(body: PreferencesBody, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    saved = notifications.update_preferences(session, actor=user, preferences=Preferences(**body.model_dump()))
    session.commit()
    return PreferencesBody(**saved.__dict__).model_dump()


class DueBody(StrictBody):
    due_date: date
    reason: str


@router.post("/tasks/{task_id}/due")
def change_due(task_id: RowId, body: DueBody, session: DbSession, user: CurrentUser) -> dict[str, Any]:
    """A supervisor moves an open task's deadline to the end of `due_date` (county time), with a reason."""
    task = reminders.change_due_date(session, actor=user, task_id=task_id, due_on=body.due_date, reason=body.reason)
    session.commit()
    return task_read(task)
