"""The audit log: who did what, when, to which object, with before/after and why."""

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, String, Text, insert
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from registry.db import Base, JSONType, UTCDateTime, utcnow

if TYPE_CHECKING:
    from registry.users import User


class AuditEntry(Base):
    __tablename__ = "audit_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    action: Mapped[str] = mapped_column(String(60), index=True)
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(40))
    org_unit_id: Mapped[int | None] = mapped_column(ForeignKey("org_unit.id"))
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"))
    before: Mapped[Any | None] = mapped_column(JSONType)
    after: Mapped[Any | None] = mapped_column(JSONType)
    reason: Mapped[str | None] = mapped_column(Text)

    actor: Mapped["User | None"] = relationship(lazy="joined")


# Built once: constructing a statement costs more than running it on this hot path.
_INSERT = insert(AuditEntry.__table__)


def record(
    session: Session,
    *,
    actor: "User | None",
    action: str,
    object_type: str,
    object_id: Any = None,
    org_unit_id: int | None = None,
    instance_id: int | None = None,
    before: Any = None,
    after: Any = None,
    reason: str | None = None,
) -> None:
    # A plain INSERT on the session's connection, outside the unit of work: audit rows are never
    # read back in the transaction that writes them, and this costs no flush.
    session.connection().execute(_INSERT, {
        "at": utcnow(),
        "actor_id": actor.id if actor is not None else None,
        "action": action,
        "object_type": object_type,
        "object_id": str(object_id) if object_id is not None else None,
        "org_unit_id": org_unit_id,
        "instance_id": instance_id,
        "before": before,
        "after": after,
        "reason": reason,
    })
