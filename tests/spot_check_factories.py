"""Test data for spot checks: schools of their own (so a test knows every candidate), their staff,
students taken through student_intake, and a check started and walked through its steps."""

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import workflows
from registry.org_units import OrgKind, OrgUnit, create_org_unit, find_org_unit
from registry.schools import create_school
from registry.spot_checks.models import SpotCheck, SpotCheckSchool
from registry.students import Student
from registry.users import Role, User, create_user, grant_role
from registry.workflows import HumanTask, ProcessInstance, TaskStatus
from tests.conftest import DEMO_PASSWORD
from tests.factories import student_data, user

CONFIRMED = datetime(2025, 9, 3, 2, 0, tzinfo=UTC)
STARTED = datetime(2025, 10, 8, 2, 0, tzinfo=UTC)  # 2025-10-08 10:00 in the county
TOWNSHIP = "520199101"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32


def school_with_staff(session: Session, code: str, name: str, *, meal_model: str = "1") -> OrgUnit:
    """A school of the demo county with a registrar `reg<code>` and a principal `pri<code>`."""
    township = find_org_unit(session, code=TOWNSHIP)
    assert township is not None
    unit = create_org_unit(session, code=code, name=name, kind=OrgKind.school, parent=township)
    create_school(session, unit=unit, data={"sponsor_type": "811", "school_type": "211", "urban_rural": "220",
                                            "meal_model": meal_model, "subsidy_rate": "5.00"})
    for prefix, role, title in (("reg", Role.school_registrar, "学籍"), ("pri", Role.school_principal, "校长")):
        staff = create_user(session, username=f"{prefix}{code}", display_name=f"{name}{title}", password=DEMO_PASSWORD)
        grant_role(session, user=staff, role=role, org_unit_code=code)
    return unit


def admit_to(session: Session, school: OrgUnit, *, seq: int, birth: date, **overrides: Any) -> Student:
    """A student of `school` taken through student_intake (its registrar, its principal, the county)."""
    code = school.code
    instance, _ = workflows.start_process(session, actor=user(session, f"reg{code}"), process_id="student_intake",
                                          data={"student": student_data(seq=seq, birth=birth, school_code=code,
                                                                        **overrides)}, now=CONFIRMED)
    for username in (f"pri{code}", "reviewer"):
        act(session, instance.id, username, {"decision": "approve"}, now=CONFIRMED)
    student = session.get(Student, instance.subject_id)
    assert student is not None
    return student


def enrol(session: Session, school: OrgUnit, *, seq: int, birth: date, **overrides: Any) -> Student:
    """A student registered and confirmed directly through the services, without the intake process (faster)."""
    from registry import students

    student, _ = students.register_pending(session, actor=user(session, f"reg{school.code}"), today=CONFIRMED.date(),
                                           data=student_data(seq=seq, birth=birth, school_code=school.code, **overrides))
    students.activate(session, student_id=student.id, actor=user(session, "reviewer"), now=CONFIRMED)
    session.flush()
    return student


def open_tasks(session: Session, instance_id: int) -> list[HumanTask]:
    return list(session.scalars(select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                        HumanTask.status == TaskStatus.open).order_by(HumanTask.id)))


def open_task(session: Session, instance_id: int) -> HumanTask:
    tasks = open_tasks(session, instance_id)
    assert len(tasks) == 1, [t.task_id for t in tasks]
    return tasks[0]


def act(session: Session, instance_id: int, username: str, data: dict[str, Any], *, task_id: str | None = None,
        now: datetime | None = None) -> HumanTask:
    task = open_task(session, instance_id)
    if task_id is not None:
        assert task.task_id == task_id, task.task_id
    workflows.complete_task(session, actor=user(session, username), task_id=task.id, data=data, now=now)
    return task


def start_check(session: Session, *, username: str = "auditor", now: datetime = STARTED, **data: Any) -> SpotCheck:
    instance, _ = workflows.start_process(session, actor=user(session, username), process_id="spot_check",
                                          data=data, now=now)
    check = session.scalars(select(SpotCheck).where(SpotCheck.instance_id == instance.id)).one()
    return check


def part_of(check: SpotCheck, code: str) -> SpotCheckSchool:
    (part,) = [p for p in check.parts if p.school.code == code]
    return part


def check_instance(session: Session, check: SpotCheck) -> ProcessInstance:
    instance = session.get(ProcessInstance, check.instance_id)
    assert instance is not None
    return instance


def evidence_for(part: SpotCheckSchool, **by_student: dict[str, Any]) -> dict[str, Any]:
    """Every student present with a note, unless `by_student` (keyed `s<id>`) says otherwise."""
    rows = [{"student_id": r.student_id, "present": True, "note": "在校，纸质档案齐全"} | by_student.get(f"s{r.student_id}", {})
            for r in part.students]
    return {"spot_check_evidence": {"students": rows}}


def findings_for(part: SpotCheckSchool, **by_student: tuple[str, str]) -> dict[str, Any]:
    rows = []
    for r in part.students:
        kind, note = by_student.get(f"s{r.student_id}", ("none", ""))
        rows.append({"student_id": r.student_id, "finding": kind, **({"note": note} if note else {})})
    return {"spot_check_findings": {"students": rows, "summary": "核查完毕"}}


def staff(session: Session, prefix: str, school: OrgUnit) -> User:
    return user(session, f"{prefix}{school.code}")
