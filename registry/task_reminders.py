"""When to look at an open task's reminders next: one row per task with a due date.

Like instance_timer for BPMN timers, this table (not the broker) is the truth: `reminders.scan`
claims the rows whose `next_at` has come, sends what is due and moves `next_at` on. A row is made
when its task opens (workflows._save) and removed when the scan finds its task closed.
"""

from datetime import datetime

from sqlalchemy import ForeignKey, Select, String, Text, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from registry.db import Base, UTCDateTime


class TaskReminder(Base):
    __tablename__ = "task_reminder"

    # Derived from its task entirely: it goes when the task row goes.
    task_id: Mapped[int] = mapped_column(ForeignKey("human_task.id", ondelete="CASCADE"), primary_key=True)
    next_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # The due date the schedule was made for: a changed due date starts the steps afresh.
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_step: Mapped[str | None] = mapped_column(String(60))
    # Overdue past the policy's threshold and reported one level up: on the county's dashboard.
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # Why the last look failed (a year the working-day calendar lacks), shown to county_admin.
    error: Mapped[str | None] = mapped_column(Text)


def hold_reminders(session: Session, *, instance_id: int) -> None:
    """An instance held (suspended, or stopped in error): its tasks' reminders and escalations wait. The
    rows stay, with their due dates, so that `wake_reminders` finds them."""
    session.execute(update(TaskReminder).where(TaskReminder.task_id.in_(_tasks_of(instance_id)))
                    .values(next_at=None))


def wake_reminders(session: Session, *, instance_id: int, now: datetime) -> None:
    """The instance runs again: the next scan looks at each of its open tasks at once and sends what is due
    by then (the latest step only, never the missed ones in a burst); an overdue task is reminded and, past
    the policy's threshold, escalated as if it had never been held."""
    session.execute(update(TaskReminder).where(TaskReminder.task_id.in_(_tasks_of(instance_id)))
                    .values(next_at=now))


def _tasks_of(instance_id: int) -> Select[tuple[int]]:
    task = Base.metadata.tables["human_task"]
    return select(task.c.id).where(task.c.instance_id == instance_id, task.c.status == "open")
