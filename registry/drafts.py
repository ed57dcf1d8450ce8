"""Drafts of half-filled task forms, saved as the user types, so a dropped rural connection loses
nothing and the form comes back on any device. A draft changes nothing until the task is submitted
(which is audited), so saving one is not an audited write."""

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, bindparam, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from registry.db import Base, JSONType, UTCDateTime, utcnow

MAX_FIELDS = 200
MAX_VALUE = 5000  # characters per field: a comment or an address, never a file


class TaskDraft(Base):
    __tablename__ = "task_draft"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("human_task.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


Index("uq_task_draft_task_user", TaskDraft.task_id, TaskDraft.user_id, unique=True)

_DROP = delete(TaskDraft.__table__).where(TaskDraft.task_id == bindparam("task_id"))


def save(session: Session, *, user_id: int, task_id: int, fields: dict[str, str]) -> TaskDraft:
    """The caller has checked that the task is open and the user may act on it."""
    clean = {str(k)[:100]: str(v)[:MAX_VALUE] for k, v in list(fields.items())[:MAX_FIELDS] if k != "csrf_token"}
    draft = of(session, user_id=user_id, task_id=task_id)
    if draft is None:
        draft = TaskDraft(task_id=task_id, user_id=user_id, data=clean, updated_at=utcnow())
        session.add(draft)
    else:
        draft.data, draft.updated_at = clean, utcnow()
    session.flush()
    return draft


def of(session: Session, *, user_id: int, task_id: int) -> TaskDraft | None:
    return session.scalars(select(TaskDraft).where(TaskDraft.task_id == task_id, TaskDraft.user_id == user_id)).first()


def drop(session: Session, *, task_id: int) -> None:
    """The task is done: its drafts, anyone's, are of no further use."""
    session.connection().execute(_DROP, {"task_id": task_id})
