"""A task `due` in working days (`P3WD`) follows the official calendar and the county's own days."""

from datetime import UTC, date, datetime

from sqlalchemy.orm import Session

from registry import workflows, working_days
from registry.org_units import find_org_unit
from registry.workflows import ProcessInstance
from tests.factories import admit, user


def test_working_days_follow_the_official_and_the_county_calendar(session: Session) -> None:
    student = admit(session, seq=517, birth=date(2016, 4, 5))
    instance = session.query(ProcessInstance).filter_by(subject_type="student", subject_id=student.id).one()
    is_working = workflows._working_days(session, instance, "P3WD")
    assert is_working is not None and workflows._working_days(session, instance, "P3D") is None
    opened = datetime(2025, 9, 30, 1, 0, tzinfo=UTC)
    # National Day 2025: 10-1 … 10-8 off, 10-11 (Saturday) a make-up working day (State Council).
    assert workflows.due_at(opened, "P3WD", workflows.local_zone(), is_working) == datetime(2025, 10, 11, 15, 59, 59,
                                                                                        tzinfo=UTC)
    # The county declares 10-9 a local holiday: one more working day is needed.
    working_days.set_day(session, actor=user(session, "admin"), county=find_org_unit(session, code="520199"),
                         day=date(2025, 10, 9), working=False, note="县运动会")
    is_working = workflows._working_days(session, instance, "P3WD")
    assert workflows.due_at(opened, "P3WD", workflows.local_zone(), is_working) == datetime(2025, 10, 13, 15, 59, 59,
                                                                                        tzinfo=UTC)
