"""One request at a time per student: a transfer, status change or key-field change of a student who
already has one under way is refused, so that two approvals never decide about the same child at once
(a transfer approved while a dropout is pending would end the subsidy twice, or not at all).

Under way means an unfinished process instance whose subject is the student, or an unfinished
graduation list (status_change, subject `graduation_batch`) that names the student. Unfinished is
running, suspended or stopped in error (registry/process_admin.py `UNFINISHED`): a held request is
resumed later and applies what it was approved for, so it still decides about the child. Starters
call `refuse_if_open_request` after their permission checks and before they write anything; they
lock the student's row first, so two requests filed at the same moment are decided one after the
other.
"""

from collections.abc import Collection
from typing import TYPE_CHECKING

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, joinedload

from registry.errors import Conflict, Message, msg
from registry.students import Student

if TYPE_CHECKING:
    from registry.workflows import ProcessInstance


def open_requests_for_students(session: Session, *, student_ids: Collection[int]) -> dict[int, list["ProcessInstance"]]:
    """Unfinished instances about each of these students, oldest first; students with none are left out."""
    # registry.workflows gathers every process's starter, and the starters call this module:
    # these imports happen on use, not at load, to keep the import graph acyclic.
    from registry.graduation import GraduationBatch, GraduationEntry
    from registry.process_admin import UNFINISHED
    from registry.workflows import ProcessInstance

    if not student_ids:
        return {}
    ids = list(student_ids)
    found: dict[int, list[ProcessInstance]] = {}
    direct = session.scalars(select(ProcessInstance).where(
        ProcessInstance.status.in_(UNFINISHED), ProcessInstance.subject_type == "student",
        ProcessInstance.subject_id.in_(ids)).options(joinedload(ProcessInstance.version)).order_by(ProcessInstance.id))
    for instance in direct.unique():
        found.setdefault(instance.subject_id, []).append(instance)  # type: ignore[arg-type]
    listed = session.execute(
        select(GraduationEntry.student_id, ProcessInstance)
        .join(GraduationBatch, GraduationBatch.id == GraduationEntry.batch_id)
        .join(ProcessInstance, and_(ProcessInstance.subject_type == "graduation_batch",
                                    ProcessInstance.subject_id == GraduationBatch.id))
        .where(GraduationEntry.student_id.in_(ids), ProcessInstance.status.in_(UNFINISHED))
        .options(joinedload(ProcessInstance.version)).order_by(ProcessInstance.id))
    for student_id, instance in listed:
        found.setdefault(student_id, []).append(instance)
    return {k: sorted(v, key=lambda i: i.id) for k, v in found.items()}


def open_requests_for_student(session: Session, *, student_id: int) -> list["ProcessInstance"]:
    """Unfinished instances whose subject is this student, or graduation lists under way that name them."""
    return open_requests_for_students(session, student_ids=[student_id]).get(student_id, [])


def describe(instance: "ProcessInstance") -> Message:
    from registry.process_admin import STATUS_LABELS
    from registry.workflows import InstanceStatus

    if instance.status == InstanceStatus.running:
        return msg("已有办理中的“{process}”（流程编号 {instance_id}），须待其办结或撤回后再申请",
                   process=instance.version.name, instance_id=instance.id)
    # Held or in error: nobody in the lanes can finish or withdraw it; a process administrator resumes,
    # retries or cancels it.
    return msg("已有未办结的“{process}”（流程编号 {instance_id}，{status}），须待流程管理员恢复后办结或将其取消，再申请",
               process=instance.version.name, instance_id=instance.id, status=STATUS_LABELS[instance.status])


def refuse_if_open_request(session: Session, *, student: Student) -> None:
    """Conflict (409) naming the request under way; locks the student's row for the caller's transaction."""
    session.get(Student, student.id, with_for_update={"of": Student})
    under_way = open_requests_for_student(session, student_id=student.id)
    if under_way:
        message = msg("{name}{request}", name=student.name, request=describe(under_way[0]))
        raise Conflict(message, details=[{"field": "student_id", "message": message}])
