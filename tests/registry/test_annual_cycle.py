"""annual_cycle (秋季学期实名制工作) on a real database: armed once per school and year, started by its timer
on the county's day (moved when the county moves it), due 9-10 and 9-15 of its school year or whatever a
deployed version says, the roster scan and the frozen report, the county's return and the filing."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import annual_cycle, attachments, dashboard, process_admin, report_submissions, workflows
from registry.annual_cycle import AnnualCycle
from registry.audit import AuditEntry
from registry.county_policy import update_policy
from registry.errors import NotFound, RuleViolation
from registry.file_store import LocalFileStore
from registry.org_units import find_org_unit
from registry.schools import School
from registry.users import User
from registry.workflows import HumanTask, InstanceTimer, ProcessInstance, TaskStatus
from tests.factories import make_school, make_user, user

SCHOOL = "2152019981"
AUGUST = datetime(2026, 8, 15, 2, 0, tzinfo=UTC)
SEPT_1 = datetime(2026, 8, 31, 16, 0, tzinfo=UTC)  # 0:00 on 1 September in Guizhou
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
CYCLE_BPMN = (Path(__file__).resolve().parents[2] / "processes" / "annual_cycle.bpmn").read_text(encoding="utf-8")
REPORT_DUE = ('<spiffworkflow:property name="action" value="submit_cycle_report" />\n'
              '          <spiffworkflow:property name="due" value="--09-15" />')
NEW_STUDENTS_DUE = ('<spiffworkflow:property name="action" value="confirm_new_students" />\n'
                    '          <spiffworkflow:property name="due" value="--09-10" />')


@pytest.fixture
def store(tmp_path: Path) -> LocalFileStore:
    return LocalFileStore(tmp_path / "files")


@pytest.fixture
def registrar(session: Session) -> User:
    make_school(session, code=SCHOOL, name="秋季测试小学")
    return make_user(session, "cycle_registrar", role="school_registrar", org_unit_code=SCHOOL)


def instance_of(session: Session, school_code: str, year: int = 2026) -> ProcessInstance:
    school = find_org_unit(session, code=school_code)
    cycle = session.scalars(select(AnnualCycle).where(AnnualCycle.school_id == school.id,
                                                      AnnualCycle.school_year == year)).one()
    instance = session.get(ProcessInstance, cycle.instance_id)
    assert instance is not None and instance.process_id == "annual_cycle"
    return instance


def open_tasks(session: Session, instance: ProcessInstance) -> dict[str, HumanTask]:
    rows = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id,
                                                   HumanTask.status == TaskStatus.open)
                           .execution_options(populate_existing=True))
    return {t.task_id: t for t in rows}


def complete(session: Session, actor: User, task: HumanTask, data: dict[str, Any], now: datetime) -> None:
    workflows.complete_task(session, actor=actor, task_id=task.id, data=data, now=now)


def deploy_cycle(session: Session, old: str, new: str, note: str) -> workflows.ProcessVersion:
    """A new annual_cycle version with one due date changed, as a process administrator deploys it."""
    assert old in CYCLE_BPMN, old
    version, created = process_admin.deploy_version(session, actor=user(session, "processadmin"),
                                                    bpmn=CYCLE_BPMN.replace(old, new, 1).encode(), note=note,
                                                    process_id="annual_cycle")
    assert created
    return version


def retire(session: Session, version: workflows.ProcessVersion) -> None:
    """Other tests start on the newest version in use: the one deployed here goes out of use again."""
    process_admin.retire_version(session, actor=user(session, "processadmin"), process_id="annual_cycle",
                                 version=version.version, reason="测试结束")


def started(session: Session) -> ProcessInstance:
    annual_cycle.arm(session, now=AUGUST)
    instance = instance_of(session, SCHOOL)
    workflows.advance_instance(session, instance_id=instance.id, now=SEPT_1)
    return instance


def test_arming_waits_for_the_start_day_and_happens_once(session: Session, registrar: User) -> None:
    no_meals = make_school(session, code="2152019982", name="不供餐教学点")
    session.get(School, no_meals.id).meal_model = None
    first = annual_cycle.arm(session, now=AUGUST)
    instance = instance_of(session, SCHOOL)
    assert instance.id in first and instance.org_unit.code == SCHOOL and instance.started_by_id is None
    assert instance.subject_label == "秋季测试小学 2026–2027 学年秋季学期实名制工作"
    assert annual_cycle.arm(session, now=AUGUST) == []
    assert open_tasks(session, instance) == {}
    assert session.get(InstanceTimer, instance.id).due_at == SEPT_1
    # Every beneficiary school has one; a school that serves no meals has no beneficiaries and no cycle.
    assert instance_of(session, "2152019901").org_unit.code == "2152019901"
    assert session.scalars(select(AnnualCycle).where(AnnualCycle.school_id == no_meals.id)).all() == []

    workflows.advance_instance(session, instance_id=instance.id, now=SEPT_1)
    tasks = open_tasks(session, instance)
    assert set(tasks) == {"enter_new_students", "upload_roster", "submit_report"}
    assert tasks["enter_new_students"].due_at == datetime(2026, 9, 10, 15, 59, 59, tzinfo=UTC)  # 9-10 23:59:59
    assert tasks["upload_roster"].due_at == tasks["submit_report"].due_at == datetime(2026, 9, 15, 15, 59, 59,
                                                                                       tzinfo=UTC)
    assert {t.org_unit.code for t in tasks.values()} == {SCHOOL}


def test_a_late_start_keeps_this_school_years_deadlines(session: Session, registrar: User) -> None:
    annual_cycle.arm(session, now=datetime(2026, 11, 29, 1, 0, tzinfo=UTC))
    tasks = open_tasks(session, instance_of(session, SCHOOL))
    assert tasks["enter_new_students"].due_at == datetime(2026, 9, 10, 15, 59, 59, tzinfo=UTC)


def test_the_county_chooses_the_start_day(session: Session, registrar: User) -> None:
    county = find_org_unit(session, code="520199")
    admin = user(session, "admin")
    with pytest.raises(RuleViolation, match="秋季学期工作开始日"):
        update_policy(session, actor=admin, county=county, changes={"cycle_start": "09-20"})
    update_policy(session, actor=admin, county=county, changes={"cycle_start": "08-28"})
    annual_cycle.arm(session, now=AUGUST)
    instance = instance_of(session, SCHOOL)
    assert session.get(InstanceTimer, instance.id).due_at == datetime(2026, 8, 27, 16, 0, tzinfo=UTC)
    workflows.advance_instance(session, instance_id=instance.id, now=datetime(2026, 8, 27, 16, 0, tzinfo=UTC))
    assert open_tasks(session, instance)["enter_new_students"].due_at == datetime(2026, 9, 10, 15, 59, 59, tzinfo=UTC)


def test_a_new_start_day_moves_the_cycles_still_waiting(session: Session, registrar: User) -> None:
    county = find_org_unit(session, code="520199")
    admin = user(session, "admin")
    annual_cycle.arm(session, now=AUGUST)
    instance = instance_of(session, SCHOOL)
    assert session.get(InstanceTimer, instance.id).due_at == SEPT_1

    update_policy(session, actor=admin, county=county, changes={"cycle_start": "08-28"},
                  now=datetime(2026, 8, 20, 2, 0, tzinfo=UTC))
    aug_28 = datetime(2026, 8, 27, 16, 0, tzinfo=UTC)  # 0:00 on 28 August in Guizhou
    # The timer row the poll reads, the cycle's own record and the instance's data all say 28 August.
    assert session.get(InstanceTimer, instance.id).due_at == aug_28
    session.refresh(instance)
    assert '"cycle_start":"2026-08-28T00:00:00+08:00"' in instance.state
    cycle = annual_cycle.cycle_of(session, instance_id=instance.id)
    assert cycle is not None and cycle.starts_at == aug_28
    moved = session.scalars(select(AuditEntry).where(AuditEntry.action == "annual_cycle.retime",
                                                     AuditEntry.instance_id == instance.id)).one()
    assert moved.before == {"starts_at": "2026-09-01T00:00:00+08:00"}
    assert moved.after == {"starts_at": "2026-08-28T00:00:00+08:00"}
    assert instance_of(session, "2152019901").id in {e.instance_id for e in session.scalars(
        select(AuditEntry).where(AuditEntry.action == "annual_cycle.retime"))}  # every school of the county

    workflows.advance_instance(session, instance_id=instance.id, now=aug_28 - timedelta(seconds=1))
    assert open_tasks(session, instance) == {}
    workflows.advance_instance(session, instance_id=instance.id, now=aug_28)
    tasks = open_tasks(session, instance)
    assert tasks["enter_new_students"].due_at == datetime(2026, 9, 10, 15, 59, 59, tzinfo=UTC)

    # A cycle that began keeps its day; one still waiting follows the county back.
    waiting = instance_of(session, "2152019901")
    update_policy(session, actor=admin, county=county, changes={"cycle_start": "09-01"},
                  now=datetime(2026, 8, 28, 2, 0, tzinfo=UTC))
    assert session.get(InstanceTimer, instance.id) is None and set(open_tasks(session, instance)) == set(tasks)
    assert cycle.starts_at == aug_28
    assert session.get(InstanceTimer, waiting.id).due_at == SEPT_1


def test_the_latest_start_day_follows_the_deployed_bpmn(session: Session) -> None:
    county = find_org_unit(session, code="520199")
    admin = user(session, "admin")
    with pytest.raises(RuleViolation, match="9 月 10 日") as refused:
        update_policy(session, actor=admin, county=county, changes={"cycle_start": "09-11"})
    assert refused.value.details[0]["field"] == "cycle_start"
    for bad in ("07-31", "9-1", "09-31", 901, None):
        with pytest.raises(RuleViolation, match="秋季学期工作开始日"):
            update_policy(session, actor=admin, county=county, changes={"cycle_start": bad})
    version = deploy_cycle(session, NEW_STUDENTS_DUE, NEW_STUDENTS_DUE.replace("--09-10", "--09-12"),
                           "新生录入截止日改为 9 月 12 日")
    update_policy(session, actor=admin, county=county, changes={"cycle_start": "09-12"})
    with pytest.raises(RuleViolation, match="9 月 12 日"):
        update_policy(session, actor=admin, county=county, changes={"cycle_start": "09-13"})
    retire(session, version)


def test_the_report_is_due_when_the_deployed_bpmn_says(session: Session, registrar: User) -> None:
    version = deploy_cycle(session, REPORT_DUE, REPORT_DUE.replace("--09-15", "--09-20"), "报表截止日改为 9 月 20 日")
    due = datetime(2026, 9, 20, 15, 59, 59, tzinfo=UTC)  # the end of 20 September in Guizhou
    instance = started(session)
    assert instance.process_version_id == version.id
    tasks = open_tasks(session, instance)
    assert tasks["submit_report"].due_at == due
    assert tasks["upload_roster"].due_at == datetime(2026, 9, 15, 15, 59, 59, tzinfo=UTC)

    complete(session, registrar, tasks["submit_report"], {"cycle_report": {"confirmed": True}},
             datetime(2026, 9, 18, 2, 0, tzinfo=UTC))
    # School 1's cycle is open, so its own task says when; school 2's still waits, so the deployed version does.
    workflows.advance_instance(session, instance_id=instance_of(session, "2152019901").id, now=SEPT_1)
    sept_21 = datetime(2026, 9, 20, 16, 30, tzinfo=UTC)  # 00:30 on 21 September
    for username, code in (("registrar1", "2152019901"), ("registrar2", "2152019902")):
        report_submissions.submit_school_report(session, actor=user(session, username), school_code=code, year=2026,
                                                now=sept_21)
    reviewer = user(session, "reviewer")
    listed = {s.unit.code: s for s in report_submissions.submissions(
        session, actor=reviewer, year=2026, now=datetime(2026, 9, 25, tzinfo=UTC))}
    assert (listed[SCHOOL].due, listed[SCHOOL].late) == (due, False)
    assert (listed["2152019901"].due, listed["2152019901"].late) == (due, True)
    assert (listed["2152019902"].due, listed["2152019902"].late) == (due, True)
    late = next(c for c in dashboard.dashboard(session, actor=reviewer, year=2026, now=datetime(2026, 9, 25, tzinfo=UTC))
                if c.key == "late_reports")
    assert "秋季测试小学" not in {r.label for r in late.rows}
    assert find_org_unit(session, code="2152019901").name in {r.label for r in late.rows}
    # A school year nobody armed: the deployed version's date, counted from the county's start day.
    assert report_submissions.due_for(session, unit=find_org_unit(session, code=SCHOOL), year=2025) == \
        datetime(2025, 9, 20, 15, 59, 59, tzinfo=UTC)
    retire(session, version)
    assert report_submissions.due_for(session, unit=find_org_unit(session, code=SCHOOL), year=2025) == \
        datetime(2025, 9, 15, 15, 59, 59, tzinfo=UTC)


def test_the_whole_cycle_with_a_return(session: Session, registrar: User, store: LocalFileStore) -> None:
    instance = started(session)
    reviewer = user(session, "reviewer")
    day = datetime(2026, 9, 12, 2, 0, tzinfo=UTC)
    tasks = open_tasks(session, instance)

    with pytest.raises(RuleViolation, match="花名册扫描件") as refused:
        complete(session, registrar, tasks["upload_roster"], {"cycle_roster": {"confirmed": True, "scan": [999999]}},
                 day)
    assert refused.value.details[0]["field"] == "scan"
    with pytest.raises(NotFound):
        complete(session, user(session, "registrar2"), tasks["upload_roster"],
                 {"cycle_roster": {"confirmed": True, "scan": [1]}}, day)
    scan = attachments.attach(session, actor=registrar, task_id=tasks["upload_roster"].id,
                              file_name="花名册（签字盖章）.pdf", data=PDF, store=store)
    complete(session, registrar, tasks["upload_roster"], {"cycle_roster": {"confirmed": True, "scan": [scan.id]}}, day)
    complete(session, registrar, tasks["submit_report"], {"cycle_report": {"confirmed": True}}, day)
    school = find_org_unit(session, code=SCHOOL)
    snapshot = report_submissions.latest(session, unit=school, year=2026)
    assert snapshot is not None and snapshot.instance_id == instance.id and snapshot.submitted_by_id == registrar.id

    review = open_tasks(session, instance)["review_cycle"]
    assert review.org_unit.code == "520199" and review.role == "county_reviewer"
    with pytest.raises(NotFound):  # the wrong role: the school cannot accept its own roster
        complete(session, registrar, review, {"decision": "approve"}, day)
    with pytest.raises(NotFound):  # nor the county's system administrator: reviewing is the reviewer's
        complete(session, user(session, "admin"), review, {"decision": "approve"}, day)
    complete(session, reviewer, review, {"decision": "return", "comment": "缺学校公章"}, day)
    again = open_tasks(session, instance)
    assert set(again) == {"enter_new_students", "upload_roster", "submit_report"}
    # The scan of the returned round does not count for the new one.
    with pytest.raises(RuleViolation, match="花名册扫描件"):
        complete(session, registrar, again["upload_roster"], {"cycle_roster": {"confirmed": True, "scan": [scan.id]}},
                 day)
    rescan = attachments.attach(session, actor=registrar, task_id=again["upload_roster"].id,
                                file_name="花名册（补盖章）.pdf", data=PDF, store=store)
    complete(session, registrar, again["upload_roster"], {"cycle_roster": {"confirmed": True, "scan": [rescan.id]}},
             day)
    complete(session, registrar, again["submit_report"], {"cycle_report": {"confirmed": True}}, day)
    assert len(report_submissions.history(session, unit=school, year=2026)) == 2
    complete(session, reviewer, open_tasks(session, instance)["review_cycle"], {"decision": "approve"}, day)
    cycle = annual_cycle.cycle_of(session, instance_id=instance.id)
    assert cycle is not None and cycle.roster_filed_at == day and cycle.roster_filed_by_id == reviewer.id
    # Both rounds' scans are the instance's; the second round's is the one on file.
    assert {a.id for a in attachments.of_instance(session, instance)} == {scan.id, rescan.id}
    assert cycle.roster_scans == [{"id": rescan.id, "file_name": "花名册（补盖章）.pdf"}]
    filed = session.scalars(select(AuditEntry).where(AuditEntry.action == "annual_cycle.filed",
                                                     AuditEntry.instance_id == instance.id)).one()
    assert filed.after["scans"] == cycle.roster_scans
    assert annual_cycle.filed_rosters(session, units=[school], year=2026) == {SCHOOL: cycle}
    assert instance.status == "running"

    complete(session, registrar, open_tasks(session, instance)["enter_new_students"],
             {"cycle_new_students": {"confirmed": True, "comment": "新生已全部录入"}}, day)
    session.refresh(instance)
    assert instance.status == "completed"
    assert cycle.new_students is not None and set(cycle.new_students) >= {"active", "pending", "voided"}


def test_new_students_cannot_be_confirmed_while_an_intake_waits_for_the_school(session: Session,
                                                                               registrar: User) -> None:
    from tests.factories import student_data

    instance = started(session)
    principal = make_user(session, "cycle_principal", role="school_principal", org_unit_code=SCHOOL)
    intake, _ = workflows.start_process(session, actor=registrar, process_id="student_intake",
                                        data={"student": student_data(seq=871, school_code=SCHOOL,
                                                                      enrolled_month="2026-09", grade=1,
                                                                      class_name="一年级（1）班")})
    review = session.scalars(select(HumanTask).where(HumanTask.instance_id == intake.id,
                                                     HumanTask.status == TaskStatus.open)).one()
    complete(session, principal, review, {"decision": "return", "comment": "出生日期有误"},
             datetime(2026, 9, 3, tzinfo=UTC))
    task = open_tasks(session, instance)["enter_new_students"]
    with pytest.raises(RuleViolation, match="待学籍管理员修改"):
        complete(session, registrar, task, {"cycle_new_students": {"confirmed": True}}, datetime(2026, 9, 4, tzinfo=UTC))


def test_another_school_cannot_see_the_cycle(session: Session, registrar: User) -> None:
    instance = started(session)
    task = open_tasks(session, instance)["submit_report"]
    with pytest.raises(NotFound):
        workflows.get_task(session, actor=user(session, "registrar2"), task_id=task.id)
