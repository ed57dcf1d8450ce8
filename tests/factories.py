"""Plain functions that build test data."""

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.rules.id_number import check_digit
from registry.users import User, find_user

if TYPE_CHECKING:
    from registry.org_units import OrgUnit
    from registry.students import Student

SCHOOL_1 = "2152019901"
SCHOOL_2 = "2152019902"
SCHOOL_3 = "2152019903"


def make_id_number(*, area: str = "520102", birth: date = date(2017, 3, 14), seq: int = 123) -> str:
    first17 = f"{area}{birth:%Y%m%d}{seq:03d}"
    return first17 + check_digit(first17)


def student_data(*, seq: int = 123, birth: date = date(2017, 3, 14), school_code: str = SCHOOL_1,
                 **overrides: Any) -> dict[str, Any]:
    """A valid grade-3 student; the sex follows the ID's sequence number (odd = male)."""
    data: dict[str, Any] = {
        "name": "张小明",
        "sex": "1" if seq % 2 else "2",
        "birth_date": birth.isoformat(),
        "id_type": "1",
        "id_number": make_id_number(birth=birth, seq=seq),
        "ethnicity": "06",
        "school_code": school_code,
        "grade": 3,
        "class_name": "三年级（1）班",
        "enrolled_month": "2023-09",
        "boarding_mode": "1",
        "guardian_name": "张大山",
        "guardian_phone": "13800001234",
    }
    data.update(overrides)
    return data


def user(session: Session, username: str) -> User:
    found = find_user(session, username=username)
    assert found is not None, username
    return found


def admit(session: Session, *, now: datetime | None = None, **overrides: Any) -> "Student":
    """A student taken through student_intake to 在籍 (registrar1 → principal1 → reviewer)."""
    from registry import workflows
    from registry.students import Student
    from registry.workflows import HumanTask, TaskStatus

    instance, _ = workflows.start_process(session, actor=user(session, "registrar1"), process_id="student_intake",
                                          data={"student": student_data(**overrides)}, now=now)
    for username in ("principal1", "reviewer"):
        task = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id,
                                                       HumanTask.status == TaskStatus.open)).one()
        workflows.complete_task(session, actor=user(session, username), task_id=task.id,
                                data={"decision": "approve"}, now=now)
    student = session.get(Student, instance.subject_id)
    assert student is not None
    session.refresh(student)
    return student


def make_school(session: Session, *, code: str, name: str, township: str = "520199101",
                township_name: str = "测试乡") -> "OrgUnit":
    """A school with its record under a township of the demo county; a township code not there yet is made too."""
    from registry.org_units import OrgKind, create_org_unit, find_org_unit
    from registry.schools import create_school

    parent = find_org_unit(session, code=township) or create_org_unit(
        session, code=township, name=township_name, kind=OrgKind.township, parent=find_org_unit(session, code="520199"))
    unit = create_org_unit(session, code=code, name=name, kind=OrgKind.school, parent=parent)
    create_school(session, unit=unit, data={"sponsor_type": "811", "school_type": "211", "urban_rural": "220",
                                            "meal_model": "1", "subsidy_rate": "5.00"})
    return unit


def make_user(session: Session, username: str, *, role: str, org_unit_code: str) -> User:
    """A user with one role, signing in with the demo password."""
    from registry.users import Role, create_user, grant_role
    from tests.conftest import DEMO_PASSWORD

    made = create_user(session, username=username, display_name=f"测试用户 {username}", password=DEMO_PASSWORD)
    grant_role(session, user=made, role=Role(role), org_unit_code=org_unit_code)
    return made


def fire_overdue_flag(session: Session, instance: Any, task: Any, *, due: datetime) -> None:
    """A step's non-interrupting "overdue" boundary timer, due at `due`: nothing a minute before, then the
    task is flagged overdue and stays open, the instance runs on, and no timer is left to fire again."""
    from registry import workflows
    from registry.workflows import InstanceStatus, InstanceTimer, TaskStatus

    timer = session.get(InstanceTimer, instance.id)
    assert timer is not None and timer.due_at == due
    workflows.advance_instance(session, instance_id=instance.id, now=due - timedelta(minutes=1))
    session.refresh(task)
    assert not task.overdue
    workflows.advance_instance(session, instance_id=instance.id, now=due + timedelta(seconds=1))
    session.refresh(task)
    session.refresh(instance)
    assert task.overdue and task.status == TaskStatus.open and instance.status == InstanceStatus.running
    assert session.get(InstanceTimer, instance.id) is None
