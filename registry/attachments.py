"""Attachments of a process instance: scans of the paper forms a step collects (a guardian's
application, a signed roster), kept in the file store and listed on the task and instance pages."""

from datetime import datetime

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from registry.audit import record
from registry.db import Base, UTCDateTime, utcnow
from registry.errors import NotFound, RuleViolation, msg
from registry.file_store import FileStore
from registry.rules.findings import labelled
from registry.users import User
from registry.workflows import ProcessInstance, check_may_act, get_instance, get_task

MAX_BYTES = 10 * 1024 * 1024  # a multi-page 300 dpi scan as PDF; a phone photo of a form is far less
# Sniffed by content, never by the name: what a scanner or a phone produces.
KINDS = ((b"%PDF-", "application/pdf", "PDF"), (b"\xff\xd8\xff", "image/jpeg", "JPEG"),
         (b"\x89PNG\r\n\x1a\n", "image/png", "PNG"))


class Attachment(Base):
    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("human_task.id"))
    file_key: Mapped[str] = mapped_column(String(64))
    file_name: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(60))
    size: Mapped[int]
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    uploaded_by: Mapped[User] = relationship(lazy="joined")


def content_type_of(data: bytes) -> str:
    for magic, content_type, _ in KINDS:
        if data.startswith(magic):
            return content_type
    raise RuleViolation(labelled("附件", msg("只能上传 PDF、JPEG 或 PNG 格式的扫描件或照片")),
                        details=[{"field": "file", "message": msg("文件类型不支持")}])


def check_file(data: bytes) -> str:
    """The content type of an acceptable scan; RuleViolation (field "file") if empty, too large or of another type."""
    if not data:
        raise RuleViolation(labelled("附件", msg("文件是空的")), details=[{"field": "file", "message": msg("空文件")}])
    if len(data) > MAX_BYTES:
        raise RuleViolation(labelled("附件", msg("超过 {size} MB，请降低扫描分辨率或分页上传", size=MAX_BYTES // 1024 // 1024)),
                            details=[{"field": "file", "message": msg("文件过大")}])
    return content_type_of(data)


def attach(session: Session, *, actor: User, task_id: int, file_name: str, data: bytes, store: FileStore) -> Attachment:
    """Whoever may act on the open task attaches to its instance."""
    task = get_task(session, actor=actor, task_id=task_id)
    check_may_act(actor, task)
    content_type = check_file(data)
    stored = store.put(data, content_type=content_type)
    attachment = Attachment(instance_id=task.instance_id, task_id=task.id, file_key=stored.key,
                            file_name=(file_name or "附件")[-200:], content_type=content_type, size=len(data),
                            uploaded_by_id=actor.id, uploaded_by=actor, uploaded_at=utcnow())
    session.add(attachment)
    session.flush()
    record(session, actor=actor, action="attachment.add", object_type="attachment", object_id=attachment.id,
           org_unit_id=task.org_unit_id, instance_id=task.instance_id,
           after={"file_name": attachment.file_name, "sha256": stored.sha256, "size": len(data), "task_id": task.id})
    return attachment


def of_instance(session: Session, instance: ProcessInstance) -> list[Attachment]:
    return list(session.scalars(select(Attachment).where(Attachment.instance_id == instance.id)
                                .order_by(Attachment.id)))


def open_attachment(session: Session, *, actor: User, attachment_id: int, store: FileStore) -> tuple[Attachment, bytes]:
    """Anyone who sees the instance sees its attachments; to anyone else they do not exist."""
    attachment = session.get(Attachment, attachment_id)
    if attachment is None:
        raise NotFound(msg("找不到附件 {attachment_id}", attachment_id=attachment_id))
    try:
        get_instance(session, actor=actor, instance_id=attachment.instance_id)
    except NotFound:
        raise NotFound(msg("找不到附件 {attachment_id}", attachment_id=attachment_id)) from None
    return attachment, store.open(attachment.file_key)
