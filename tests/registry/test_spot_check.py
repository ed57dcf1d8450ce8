"""Spot checks (抽查, Art. 25, 26) through the service layer on a real database: the reproducible draw,
the focus and scope of the sample, evidence, findings, rectification with its return loop, deadlines,
who may do what, and input that changes nothing."""

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry import student_status, workflows
from registry.attachments import Attachment
from registry.audit import AuditEntry
from registry.errors import Conflict, InvalidTransition, NotFound, PermissionDenied, RuleViolation
from registry.file_store import LocalFileStore
from registry.org_units import OrgUnit, find_org_unit
from registry.rules import sampling
from registry.spot_checks import draw, views
from registry.spot_checks.models import CheckStatus, Focus, PartStatus, SpotCheck, SpotCheckSchool
from registry.students import Student
from registry.workflows import HumanTask, InstanceStatus, ProcessInstance, TaskStatus
from tests.factories import user
from tests.spot_check_factories import (
    PDF,
    PNG,
    STARTED,
    act,
    admit_to,
    check_instance,
    evidence_for,
    findings_for,
    open_task,
    open_tasks,
    part_of,
    school_with_staff,
    staff,
    start_check,
)

A, B, C = "2152019951", "2152019952", "2152019953"
DAY = timedelta(days=1)


# Every student of this module is born in 2009: no other test uses that year, so ID numbers never clash.
def born(day: int) -> date:
    return date(2009, 1 + day // 28, 1 + day % 28)


@pytest.fixture
def store(tmp_path: Path) -> LocalFileStore:
    return LocalFileStore(tmp_path / "files")


def school_a(session: Session, *, meal_model: str = "1") -> tuple[OrgUnit, list[Student]]:
    """Six pupils: two day pupils, three boarders (two with 一补, which only boarders get), and a day pupil
    who dropped out from 2025-10."""
    school = school_with_staff(session, A, "抽查测试甲小学", meal_model=meal_model)
    kinds = [{"boarding_mode": "1"}, {"boarding_mode": "1"}, {"boarding_mode": "2"},
             {"boarding_mode": "2", "boarding_allowance": True}, {"boarding_mode": "2", "boarding_allowance": True},
             {"boarding_mode": "1"}]
    pupils = [admit_to(session, school, seq=101 + 2 * i, birth=born(i), **kind) for i, kind in enumerate(kinds)]
    student_status.change_status(session, student_id=pupils[5].id, to_status="dropped_out",
                                 effective_month="2025-10", reason="随父母外出", actor=user(session, "reviewer"))
    return school, pupils


def school_b(session: Session, *, meal_model: str = "1", count: int = 3, first_day: int = 40) -> tuple[OrgUnit, list[Student]]:
    school = school_with_staff(session, B, "抽查测试乙小学", meal_model=meal_model)
    return school, [admit_to(session, school, seq=101 + 2 * i, birth=born(first_day + i)) for i in range(count)]


def params(**changes: Any) -> draw.Params:
    return draw.Params(**{"students_per_school": 2, "focus": (Focus.beneficiaries,), **changes})


def county(session: Session) -> OrgUnit:
    unit = find_org_unit(session, code="520199")
    assert unit is not None
    return unit


def ids(students: list[Student]) -> set[int]:
    return {s.id for s in students}


# The draw -------------------------------------------------------------------------------------------------


def test_the_same_seed_over_the_same_records_gives_the_same_sample(session: Session) -> None:
    _, pupils = school_a(session)
    school_b(session)
    wanted = params(school_codes=(A, B), students_per_school=3)

    first = draw.draw_sample(session, county=county(session), month="2025-09", seed=20250908, params=wanted)
    again = draw.draw_sample(session, county=county(session), month="2025-09", seed=20250908, params=wanted)
    other = [draw.draw_sample(session, county=county(session), month="2025-09", seed=s, params=wanted).sample
             for s in range(1, 30)]

    assert first.sample == again.sample
    assert [s.code for s in first.sample.schools] == [A, B]
    assert {len(s.student_ids) for s in first.sample.schools} == {3}
    assert any(o.schools != first.sample.schools for o in other)  # the seed matters

    check = start_check(session, school_codes=[A, B], students_per_school=3, focus=["beneficiaries"],
                        month="2025-09", seed="20250908")
    assert check.seed == 20250908
    assert draw.recorded_sample(check) == {s.code: s.student_ids for s in first.sample.schools}
    assert views.reproducible(check)
    # From the check's record alone, whatever happens to the students afterwards.
    assert draw.redraw(check) == first.sample
    assert set(part_of(check, A).candidate_ids) == ids(pupils)  # all six were subsidised in 2025-09


def test_a_seed_is_generated_and_recorded_when_none_is_given(session: Session) -> None:
    school_a(session)
    check = start_check(session, school_codes=[A], students_per_school=2, focus=["beneficiaries"], month="2025-09")
    assert 0 <= check.seed < 10**12
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "spot_check.draw",
                                                     AuditEntry.object_id == str(check.id))).one()
    assert entry.after["seed"] == str(check.seed)
    assert entry.after["sample"] == {A: sorted(r.student_id for r in part_of(check, A).students)}
    assert views.reproducible(check)


@pytest.mark.parametrize("alter", ["seed", "sample"])
def test_an_altered_record_no_longer_reproduces(session: Session, alter: str) -> None:
    school_a(session)
    # A fixed seed: with a random one, seed + 1 draws the same 2 of 6 pupils one time in 15.
    check = start_check(session, school_codes=[A], students_per_school=2, focus=["beneficiaries"],
                        month="2025-09", seed="20250908")
    assert views.reproducible(check)
    if alter == "seed":
        check.seed += 1
    else:
        part = part_of(check, A)
        unsampled = sorted(set(part.candidate_ids) - {s.student_id for s in part.students})
        part.students[0].student_id = unsampled[0]
    assert not views.reproducible(check)


@pytest.mark.parametrize(("focus", "expected"), [
    (["boarders"], {2, 3, 4}),
    (["boarding_allowance"], {3, 4}),
    (["boarders", "boarding_allowance"], {2, 3, 4}),
    (["beneficiaries", "boarders"], {0, 1, 2, 3, 4, 5}),
])
def test_the_sample_holds_only_students_of_the_focus(session: Session, focus: list[str], expected: set[int]) -> None:
    _, pupils = school_a(session)
    check = start_check(session, school_codes=[A], students_per_school=50, focus=focus, month="2025-09")
    part = part_of(check, A)
    assert {r.student_id for r in part.students} == {pupils[i].id for i in expected}
    assert part.eligible == len(expected)
    boarders = {r.student_id for r in part.students if "boarders" in r.matched}
    assert boarders == ({pupils[i].id for i in (2, 3, 4)} if "boarders" in focus else set())
    allowance = {r.student_id for r in part.students if "boarding_allowance" in r.matched}
    assert allowance == ({pupils[3].id, pupils[4].id} if "boarding_allowance" in focus else set())


def test_the_month_decides_who_was_subsidised(session: Session) -> None:
    school, pupils = school_a(session)

    def subsidised(month: str) -> dict[int, tuple[str, ...]]:
        return draw.candidates(session, schools=[school], month=month, focus=[Focus.beneficiaries])[A]

    september, october, before = subsidised("2025-09"), subsidised("2025-10"), subsidised("2023-08")
    assert set(september) == ids(pupils)
    assert set(october) == ids(pupils[:5])  # dropped out from 2025-10: no longer a beneficiary there
    assert before == {}  # enrolled 2023-09


def test_a_school_with_fewer_candidates_than_asked_gives_all_and_the_check_says_so(session: Session) -> None:
    _, pupils = school_a(session)
    check = start_check(session, school_codes=[A], students_per_school=20, focus=["boarders"], month="2025-09")
    assert {r.student_id for r in part_of(check, A).students} == {pupils[2].id, pupils[3].id, pupils[4].id}
    assert check.notes == ["抽查测试甲小学：符合条件的学生只有 3 人，少于每校抽查人数 20，全部抽取"]


def test_a_school_count_draws_among_schools_with_candidates_of_the_chosen_meal_models(session: Session) -> None:
    # 混合供餐 (4): no demo school has it, so these three schools are the whole population.
    school_a(session, meal_model="4")
    school_b(session, meal_model="4")
    school_with_staff(session, C, "抽查测试丙教学点", meal_model="4")  # no students at all

    check = start_check(session, school_count=5, students_per_school=2, focus=["beneficiaries"], meal_models=["4"],
                        month="2025-09", seed=7)
    assert check.eligible_schools == [A, B]
    assert sorted(p.school.code for p in check.parts) == [A, B]
    assert check.notes[:2] == ["1 所学校在 2025-09 没有受益学生，未参与抽取：抽查测试丙教学点",
                               "随机抽取学校数 5 多于符合条件的学校数 2：2 所学校全部入选"]

    one = start_check(session, school_count=1, students_per_school=2, focus=["beneficiaries"], meal_models=["4"],
                      month="2025-09", seed=7)
    assert len(one.parts) == 1 and one.parts[0].school.code in (A, B)
    expected = sampling.draw(seed=7, per_school=2, school_count=1, population=[
        sampling.SchoolPopulation(code=p.school.code, student_ids=tuple(p.candidate_ids)) for p in check.parts])
    assert draw.recorded_sample(one) == {s.code: s.student_ids for s in expected.schools}


# Bad input changes nothing ----------------------------------------------------------------------------------


def _nothing_started(session: Session, before: tuple[int, int, int]) -> None:
    assert counts(session) == before


def counts(session: Session) -> tuple[int, int, int]:
    return (session.scalar(select(func.count()).select_from(SpotCheck)) or 0,
            session.scalar(select(func.count()).select_from(SpotCheckSchool)) or 0,
            session.scalar(select(func.count()).select_from(ProcessInstance)
                           .where(ProcessInstance.process_id.in_(["spot_check", "spot_check_school"]))) or 0)


@pytest.mark.parametrize(("data", "field", "words"), [
    ({"school_count": 0}, "school_count", "不能小于 1"),
    ({}, "school_codes", "请选择学校"),
    ({"school_codes": [A], "school_count": 2}, "school_codes", "只能选一种"),
    ({"school_codes": ["2152019999"]}, "school_codes", "不是演示县的学校"),
    ({"school_codes": [A], "focus": ["ghosts"]}, "focus", "未知的重点 'ghosts'"),
    ({"school_codes": [A], "focus": []}, "focus", "至少选择一项"),
    ({"school_codes": [A], "seed": "12ab"}, "seed", "1 至 18 位数字"),
    ({"school_codes": [A], "seed": "1" * 19}, "seed", "1 至 18 位数字"),
    ({"school_codes": [A], "month": "2025-11"}, "month", "不能晚于本月"),
    ({"school_codes": [A], "month": "2025-13"}, "month", "格式应为 YYYY-MM"),
    ({"school_codes": [A], "meal_models": ["3"]}, "school_codes", "供餐模式为学校食堂，不在所选供餐模式内"),
    ({"school_codes": [A], "meal_models": ["9"]}, "meal_models", "未知的代码 9"),
    ({"school_codes": [A], "students_per_school": 0}, "students_per_school", "不能小于 1"),
    ({"school_codes": [C]}, "school_codes", "没有符合抽查重点的学生"),
    ({"school_count": 1, "meal_models": ["2"]}, "meal_models", "没有符合条件的学校"),
])
def test_bad_parameters_are_refused_beside_their_field_and_nothing_is_started(
        session: Session, data: dict[str, Any], field: str, words: str) -> None:
    school_a(session)
    school_with_staff(session, C, "抽查测试丙教学点")
    before = counts(session)
    # As a request does: the unit of work rolls back on the error (here its savepoint).
    with pytest.raises(RuleViolation) as refused, session.begin_nested():
        start_check(session, **{"students_per_school": 2, "focus": ["beneficiaries"], **data})
    fields = {d["field"]: d["message"] for d in refused.value.details}
    assert field in fields and words in fields[field] + refused.value.message, refused.value.details
    _nothing_started(session, before)


@pytest.mark.parametrize("username", ["reviewer", "aidcenter", "registrar1", "principal1"])
def test_only_the_auditor_starts_a_check(session: Session, username: str) -> None:
    school_a(session)
    before = counts(session)
    with pytest.raises(PermissionDenied), session.begin_nested():
        start_check(session, username=username, school_codes=[A], students_per_school=2, focus=["beneficiaries"])
    _nothing_started(session, before)


def test_a_school_part_is_never_started_by_hand(session: Session) -> None:
    school_a(session)
    check = start_check(session, school_codes=[A], students_per_school=2, focus=["beneficiaries"], month="2025-09")
    with pytest.raises(Conflict):
        workflows.start_process(session, actor=user(session, "auditor"), process_id="spot_check_school",
                                data={"check_school_id": part_of(check, A).id})


# Evidence, findings, rectification ---------------------------------------------------------------------------


def test_each_sampled_school_gets_its_own_evidence_task_with_a_ten_day_deadline(session: Session) -> None:
    school, _ = school_a(session)
    other, _ = school_b(session)
    check = start_check(session, school_codes=[A, B], students_per_school=2, focus=["beneficiaries"], month="2025-09")

    assert check.status == CheckStatus.running
    conclude = open_task(session, check.instance_id)  # type: ignore[arg-type]
    assert (conclude.task_id, conclude.role, conclude.org_unit.code, conclude.due_at) == (
        "conclude_check", "auditor", "520199", None)
    for part, unit in ((part_of(check, A), school), (part_of(check, B), other)):
        instance = session.get(ProcessInstance, part.instance_id)
        assert instance is not None and instance.org_unit_id == unit.id and instance.subject_id == part.id
        task = open_task(session, instance.id)
        assert (task.task_id, task.role, task.org_unit_id) == ("provide_evidence", "school_registrar", unit.id)
        assert task.due_at == STARTED + 10 * DAY
        mine, _ = workflows.list_tasks(session, actor=staff(session, "reg", unit))
        assert [t.id for t in mine] == [task.id]


def test_another_school_neither_sees_nor_answers_a_schools_part(session: Session, store: LocalFileStore) -> None:
    school_a(session)
    school_b(session)
    check = start_check(session, school_codes=[A], students_per_school=2, focus=["beneficiaries"], month="2025-09")
    part = part_of(check, A)
    task = open_task(session, part.instance_id)  # type: ignore[arg-type]
    for outsider in (user(session, f"reg{B}"), user(session, "registrar1")):
        with pytest.raises(NotFound):
            workflows.get_task(session, actor=outsider, task_id=task.id)
        with pytest.raises(NotFound):
            workflows.complete_task(session, actor=outsider, task_id=task.id, data=evidence_for(part))
        with pytest.raises(NotFound):
            views.get_part(session, actor=outsider, part_id=part.id)
        with pytest.raises(NotFound):
            views.save_evidence(session, actor=outsider, part_id=part.id, answers=[], scans={}, store=store)
        with pytest.raises(NotFound):
            workflows.get_instance(session, actor=outsider, instance_id=part.instance_id)  # type: ignore[arg-type]
        with pytest.raises(NotFound):
            views.report(session, actor=outsider, check_id=check.id)
    # The school itself sees its part, not the check's report (other schools' samples).
    registrar = user(session, f"reg{A}")
    assert views.get_part(session, actor=registrar, part_id=part.id) is part
    with pytest.raises(NotFound):
        views.report(session, actor=registrar, check_id=check.id)


def test_evidence_then_findings_without_problems_closes_the_school(session: Session) -> None:
    school_a(session)
    check = start_check(session, school_codes=[A], students_per_school=3, focus=["beneficiaries"], month="2025-09")
    part = part_of(check, A)
    act(session, part.instance_id, f"reg{A}", evidence_for(part), task_id="provide_evidence")  # type: ignore[arg-type]
    assert part.status == PartStatus.findings and part.evidence_by.username == f"reg{A}"  # type: ignore[union-attr]
    assert all(r.present is True for r in part.students)

    act(session, part.instance_id, "auditor", findings_for(part), task_id="record_findings")  # type: ignore[arg-type]

    instance = session.get(ProcessInstance, part.instance_id)
    assert instance is not None and instance.status == InstanceStatus.completed
    assert part.status == PartStatus.closed and part.closed_at is not None and part.rectifications == []
    assert {r.finding for r in part.students} == {"none"}


def test_evidence_needs_an_answer_and_a_scan_or_a_note_for_every_student(session: Session) -> None:
    school_a(session)
    check = start_check(session, school_codes=[A], students_per_school=3, focus=["beneficiaries"], month="2025-09")
    part = part_of(check, A)
    first, second, third = (r.student_id for r in part.students)
    data = evidence_for(part, **{f"s{first}": {"present": None}, f"s{second}": {"present": False, "note": ""},
                                 f"s{third}": {"note": ""}})
    data["spot_check_evidence"]["students"] = [{k: v for k, v in row.items() if v is not None}
                                               for row in data["spot_check_evidence"]["students"]]
    with pytest.raises(RuleViolation) as refused, session.begin_nested():
        act(session, part.instance_id, f"reg{A}", data)  # type: ignore[arg-type]
    fields = {d["field"] for d in refused.value.details}
    assert fields == {f"present_{first}", f"note_{second}", f"scan_{second}", f"scan_{third}"}
    session.expire_all()
    assert part.status == PartStatus.evidence and {r.present for r in part.students} == {None}
    assert open_task(session, part.instance_id).task_id == "provide_evidence"  # type: ignore[arg-type]


def test_a_scan_that_is_not_a_pdf_or_an_image_is_refused_and_nothing_is_saved(session: Session,
                                                                               store: LocalFileStore) -> None:
    school_a(session)
    check = start_check(session, school_codes=[A], students_per_school=2, focus=["beneficiaries"], month="2025-09")
    part = part_of(check, A)
    first, second = (r.student_id for r in part.students)
    registrar = user(session, f"reg{A}")
    answers = [{"student_id": first, "present": True}, {"student_id": second, "present": False, "note": "转学"}]
    with pytest.raises(RuleViolation) as refused:
        views.save_evidence(session, actor=registrar, part_id=part.id, answers=answers,
                            scans={first: ("a.pdf", PDF), second: ("b.docx", b"PK\x03\x04 not a scan")}, store=store)
    assert [d["field"] for d in refused.value.details] == [f"scan_{second}"]
    assert session.scalar(select(func.count()).select_from(Attachment)
                          .where(Attachment.instance_id == part.instance_id)) == 0
    assert [r.present for r in part.students] == [None, None]

    views.save_evidence(session, actor=registrar, part_id=part.id, answers=answers,
                        scans={first: ("a.pdf", PDF), second: ("b.png", PNG)}, store=store)
    assert [r.present for r in part.students] == [True, False]
    assert all(r.scan_id for r in part.students)
    # The saved answers are what the task takes: submitting them completes the step.
    act(session, part.instance_id, f"reg{A}", views.evidence_payload(part))  # type: ignore[arg-type]
    assert part.status == PartStatus.findings


def test_a_scan_of_another_instance_cannot_be_named(session: Session, store: LocalFileStore) -> None:
    school_a(session)
    school_b(session)
    check = start_check(session, school_codes=[A, B], students_per_school=1, focus=["beneficiaries"], month="2025-09")
    a, b = part_of(check, A), part_of(check, B)
    views.save_evidence(session, actor=user(session, f"reg{B}"), part_id=b.id,
                        answers=[{"student_id": b.students[0].student_id, "present": True}],
                        scans={b.students[0].student_id: ("b.pdf", PDF)}, store=store)
    foreign = b.students[0].scan_id
    data = evidence_for(a, **{f"s{a.students[0].student_id}": {"scan_attachment_id": foreign}})
    with pytest.raises(RuleViolation) as refused:
        act(session, a.instance_id, f"reg{A}", data)  # type: ignore[arg-type]
    assert refused.value.details[0]["field"] == f"scan_{a.students[0].student_id}"


def test_only_the_auditor_records_findings(session: Session) -> None:
    school_a(session)
    check = start_check(session, school_codes=[A], students_per_school=2, focus=["beneficiaries"], month="2025-09")
    part = part_of(check, A)
    act(session, part.instance_id, f"reg{A}", evidence_for(part))  # type: ignore[arg-type]
    task = open_task(session, part.instance_id)  # type: ignore[arg-type]
    for username in (f"reg{A}", f"pri{A}", "registrar1"):
        with pytest.raises(NotFound):
            workflows.complete_task(session, actor=user(session, username), task_id=task.id, data=findings_for(part))
    # The county reviewer oversees the step but does not hold it.
    assert workflows.get_task(session, actor=user(session, "reviewer"), task_id=task.id) is not None
    with pytest.raises(NotFound):
        workflows.complete_task(session, actor=user(session, "reviewer"), task_id=task.id, data=findings_for(part))
    assert part.status == PartStatus.findings


def test_a_finding_needs_a_note(session: Session) -> None:
    school_a(session)
    check = start_check(session, school_codes=[A], students_per_school=2, focus=["beneficiaries"], month="2025-09")
    part = part_of(check, A)
    act(session, part.instance_id, f"reg{A}", evidence_for(part))  # type: ignore[arg-type]
    first = part.students[0].student_id
    with pytest.raises(RuleViolation) as refused:
        act(session, part.instance_id, "auditor", findings_for(part, **{f"s{first}": ("mismatch", "")}))  # type: ignore[arg-type]
    assert [d["field"] for d in refused.value.details] == [f"finding_note_{first}"]
    data = findings_for(part)
    data["spot_check_findings"]["students"].pop()
    with pytest.raises(RuleViolation) as missing:
        act(session, part.instance_id, "auditor", data)  # type: ignore[arg-type]
    assert [d["field"] for d in missing.value.details] == [f"finding_{part.students[1].student_id}"]


def test_findings_lead_to_rectification_and_a_return_to_another_round(session: Session) -> None:
    school_a(session)
    check = start_check(session, school_codes=[A], students_per_school=3, focus=["beneficiaries"], month="2025-09")
    part = part_of(check, A)
    first, second, _ = (r.student_id for r in part.students)
    act(session, part.instance_id, f"reg{A}", evidence_for(part, **{f"s{first}": {"present": False, "note": "外出务工随父母"}}))  # type: ignore[arg-type]
    findings = findings_for(part, **{f"s{first}": ("absent", "已随父母外出，仍在享受补助"),
                                     f"s{second}": ("mismatch", "班级与纸质档案不符")})
    act(session, part.instance_id, "auditor", findings, now=STARTED + 12 * DAY)  # type: ignore[arg-type]
    assert part.status == PartStatus.rectification

    rectify = open_task(session, part.instance_id)  # type: ignore[arg-type]
    assert (rectify.task_id, rectify.role, rectify.org_unit.code) == ("rectify", "school_principal", A)
    assert rectify.due_at == STARTED + 27 * DAY  # 15 days from when it opened
    # The registrar does not hold the rectification; the principal does, and must cover every finding.
    with pytest.raises(NotFound):
        workflows.complete_task(session, actor=user(session, f"reg{A}"), task_id=rectify.id, data={})
    partial = {"spot_check_rectification": {"report": "已整改", "students": [{"student_id": first, "measure": "办理辍学"}]}}
    with pytest.raises(RuleViolation) as refused:
        act(session, part.instance_id, f"pri{A}", partial)  # type: ignore[arg-type]
    assert [d["field"] for d in refused.value.details] == [f"measure_{second}"]

    full = {"spot_check_rectification": {"report": "已整改", "students": [
        {"student_id": first, "measure": "办理辍学，停止补助"}, {"student_id": second, "measure": "更正班级"}]}}
    act(session, part.instance_id, f"pri{A}", full, now=STARTED + 14 * DAY)  # type: ignore[arg-type]
    assert part.status == PartStatus.verification
    with pytest.raises(RuleViolation):
        act(session, part.instance_id, "auditor", {"decision": "return"})  # type: ignore[arg-type]
    act(session, part.instance_id, "auditor", {"decision": "return", "comment": "未附辍学审批材料"},  # type: ignore[arg-type]
        now=STARTED + 15 * DAY)
    assert part.status == PartStatus.rectification

    again = open_task(session, part.instance_id)  # type: ignore[arg-type]
    assert again.task_id == "rectify" and again.due_at == STARTED + 30 * DAY
    act(session, part.instance_id, f"pri{A}", full, now=STARTED + 16 * DAY)  # type: ignore[arg-type]
    act(session, part.instance_id, "auditor", {"decision": "approve", "comment": "已整改到位"},  # type: ignore[arg-type]
        now=STARTED + 17 * DAY)

    assert part.status == PartStatus.closed
    assert [(r.round, r.decision, r.comment) for r in part.rectifications] == [
        (1, "return", "未附辍学审批材料"), (2, "approve", "已整改到位")]
    assert part.rectifications[0].measures == {str(first): "办理辍学，停止补助", str(second): "更正班级"}
    view = views.part_view(session, actor=user(session, "auditor"), part=part)
    assert [(r["round"], r["due_at"], r["late"]) for r in view["rectifications"]] == [
        (1, STARTED + 27 * DAY, False), (2, STARTED + 30 * DAY, False)]


def test_deadlines_mark_the_evidence_and_the_rectification_overdue(session: Session) -> None:
    school_a(session)
    check = start_check(session, school_codes=[A], students_per_school=1, focus=["beneficiaries"], month="2025-09")
    part = part_of(check, A)
    instance_id = part.instance_id
    assert instance_id is not None
    workflows.advance_instance(session, instance_id=instance_id, now=STARTED + 10 * DAY - timedelta(seconds=1))
    evidence = open_task(session, instance_id)
    session.refresh(evidence)
    assert not evidence.overdue
    workflows.advance_instance(session, instance_id=instance_id, now=STARTED + 10 * DAY + timedelta(seconds=1))
    session.refresh(evidence)
    assert evidence.overdue and evidence.status == TaskStatus.open  # flagged, still the school's to do

    act(session, instance_id, f"reg{A}", evidence_for(part), now=STARTED + 11 * DAY)
    first = part.students[0].student_id
    act(session, instance_id, "auditor", findings_for(part, **{f"s{first}": ("other", "纸质档案缺照片")}),
        now=STARTED + 12 * DAY)
    rectify = open_task(session, instance_id)
    workflows.advance_instance(session, instance_id=instance_id, now=STARTED + 27 * DAY + timedelta(seconds=1))
    session.refresh(rectify)
    assert rectify.overdue and rectify.status == TaskStatus.open
    report = views.report(session, actor=user(session, "auditor"), check_id=check.id)
    assert {o["task_id"] for o in report["schools"][0]["overdue"]} == {"provide_evidence", "rectify"}


def test_the_check_is_concluded_only_when_every_school_is_closed(session: Session) -> None:
    school_a(session)
    school_b(session)
    check = start_check(session, school_codes=[A, B], students_per_school=1, focus=["beneficiaries"], month="2025-09")
    a, b = part_of(check, A), part_of(check, B)
    conclusion = {"spot_check_conclusion": {"conclusion": "抽查 2 所学校 2 名学生，未发现问题"}}
    act(session, a.instance_id, f"reg{A}", evidence_for(a))  # type: ignore[arg-type]
    act(session, a.instance_id, "auditor", findings_for(a))  # type: ignore[arg-type]
    with pytest.raises(RuleViolation) as refused:
        act(session, check.instance_id, "auditor", conclusion)  # type: ignore[arg-type]
    assert "抽查测试乙小学（待学校提供材料）" in refused.value.message
    assert check.status == CheckStatus.running

    act(session, b.instance_id, f"reg{B}", evidence_for(b))  # type: ignore[arg-type]
    act(session, b.instance_id, "auditor", findings_for(b))  # type: ignore[arg-type]
    act(session, check.instance_id, "auditor", conclusion)  # type: ignore[arg-type]
    assert check.status == CheckStatus.concluded and check.conclusion.startswith("抽查 2 所学校")  # type: ignore[union-attr]
    assert check_instance(session, check).status == InstanceStatus.completed


def test_the_report_has_the_parameters_seed_sample_evidence_findings_and_rectifications(session: Session) -> None:
    school_a(session)
    check = start_check(session, school_codes=[A], students_per_school=2, focus=["boarders", "boarding_allowance"],
                        month="2025-09", seed="88", title="秋季抽查")
    part = part_of(check, A)
    first = part.students[0].student_id
    act(session, part.instance_id, f"reg{A}", evidence_for(part))  # type: ignore[arg-type]
    act(session, part.instance_id, "auditor", findings_for(part, **{f"s{first}": ("ineligible", "不是寄宿生")}))  # type: ignore[arg-type]

    report = views.report(session, actor=user(session, "reviewer"), check_id=check.id)
    assert (report["title"], report["seed"], report["month"], report["status_label"]) == ("秋季抽查", "88", "2025-09", "进行中")
    assert report["params"]["focus_labels"] == ["寄宿生", "享受一补学生"]
    assert report["params"]["school_codes"] == [A] and report["reproducible"] is True
    school = report["schools"][0]
    assert (school["school"]["code"], school["eligible"], school["sampled"], school["status"]) == (A, 3, 2, "rectification")
    row = next(s for s in school["students"] if s["student_id"] == first)
    assert (row["present"], row["finding_label"], row["finding_note"]) == (True, "不应享受", "不是寄宿生")
    assert row["id_number"].endswith(session.get(Student, first).id_number[-4:])  # type: ignore[union-attr]
    assert report["totals"] == {"schools": 1, "students": 2, "present": 2, "absent": 0, "with_findings": 1,
                                "findings_by_kind": {"不应享受": 1}, "schools_with_findings": 1, "closed": 0}
    assert [t["task_id"] for t in school["open_tasks"]] == ["rectify"]


def to_rectification(session: Session) -> SpotCheckSchool:
    """School A's part with one finding, waiting for its principal's rectification."""
    school_a(session)
    school_b(session)  # another school of the township, with a principal of its own
    check = start_check(session, school_codes=[A], students_per_school=2, focus=["beneficiaries"], month="2025-09")
    part = part_of(check, A)
    first = part.students[0].student_id
    act(session, part.instance_id, f"reg{A}", evidence_for(part))  # type: ignore[arg-type]
    act(session, part.instance_id, "auditor", findings_for(part, **{f"s{first}": ("mismatch", "班级与纸质档案不符")}))  # type: ignore[arg-type]
    return part


def rectification(part: SpotCheckSchool) -> dict[str, Any]:
    return {"spot_check_rectification": {"report": "已整改", "students": [
        {"student_id": r.student_id, "measure": "已更正班级"} for r in part.students if r.finding != "none"]}}


def test_another_schools_principal_cannot_rectify(session: Session) -> None:
    part = to_rectification(session)
    task = open_task(session, part.instance_id)  # type: ignore[arg-type]
    assert (task.task_id, task.role, task.org_unit.code) == ("rectify", "school_principal", A)
    for username in (f"pri{B}", "principal1"):
        with pytest.raises(NotFound, match=f"找不到任务 {task.id}"):
            workflows.complete_task(session, actor=user(session, username), task_id=task.id, data=rectification(part))
        with pytest.raises(NotFound):
            workflows.get_task(session, actor=user(session, username), task_id=task.id)
    assert part.status == PartStatus.rectification and part.rectifications == []
    assert open_task(session, part.instance_id).id == task.id  # type: ignore[arg-type]


def test_the_county_reviewer_sees_but_cannot_verify_a_rectification(session: Session) -> None:
    part = to_rectification(session)
    act(session, part.instance_id, f"pri{A}", rectification(part), task_id="rectify")  # type: ignore[arg-type]
    task = open_task(session, part.instance_id)  # type: ignore[arg-type]
    # The lane is the auditor's (监督检查员), at the county: not the county reviewer's, nor the school's.
    assert (task.task_id, task.role, task.org_unit.code) == ("verify_rectification", "auditor", "520199")
    reviewer = user(session, "reviewer")
    assert workflows.get_task(session, actor=reviewer, task_id=task.id).id == task.id  # oversees it
    for actor in (reviewer, user(session, f"pri{A}")):
        with pytest.raises(NotFound, match=f"找不到任务 {task.id}"):
            workflows.complete_task(session, actor=actor, task_id=task.id,
                                    data={"decision": "approve", "comment": "已整改到位"})
    session.expire_all()
    assert part.status == PartStatus.verification and [r.decision for r in part.rectifications] == [None]
    assert open_task(session, part.instance_id).id == task.id  # type: ignore[arg-type]


# Withdrawing -------------------------------------------------------------------------------------------------


def test_the_auditor_withdraws_the_whole_check_before_any_school_acts(session: Session) -> None:
    school_a(session)
    school_b(session)
    check = start_check(session, school_codes=[A, B], students_per_school=1, focus=["beneficiaries"], month="2025-09")
    parts = list(check.parts)
    # One school alone cannot be dropped from the sample.
    with pytest.raises(InvalidTransition), session.begin_nested():
        workflows.withdraw(session, actor=user(session, "auditor"), instance_id=parts[0].instance_id,  # type: ignore[arg-type]
                           reason="不抽这所")

    workflows.withdraw(session, actor=user(session, "auditor"), instance_id=check.instance_id,  # type: ignore[arg-type]
                       reason="参数有误，重新抽取")
    assert check.status == CheckStatus.withdrawn
    for part in check.parts:
        assert part.status == PartStatus.withdrawn
        assert session.get(ProcessInstance, part.instance_id).status == InstanceStatus.withdrawn  # type: ignore[union-attr]
        assert open_tasks(session, part.instance_id) == []  # type: ignore[arg-type]


def test_the_check_cannot_be_withdrawn_once_a_school_has_acted(session: Session) -> None:
    school_a(session)
    check = start_check(session, school_codes=[A], students_per_school=1, focus=["beneficiaries"], month="2025-09")
    part = part_of(check, A)
    workflows.claim_task(session, actor=user(session, f"reg{A}"), task_id=open_task(session, part.instance_id).id)  # type: ignore[arg-type]
    with pytest.raises(InvalidTransition) as refused:
        workflows.withdraw(session, actor=user(session, "auditor"), instance_id=check.instance_id,  # type: ignore[arg-type]
                           reason="重新抽取")
    assert "抽查测试甲小学已开始办理" in refused.value.message


def test_the_first_school_task_is_in_the_schools_inbox_not_another_schools(session: Session) -> None:
    school_a(session)
    check = start_check(session, school_codes=[A], students_per_school=1, focus=["beneficiaries"], month="2025-09")
    task = open_task(session, part_of(check, A).instance_id)  # type: ignore[arg-type]
    theirs, _ = workflows.list_tasks(session, actor=user(session, "registrar1"))
    assert task.id not in {t.id for t in theirs}
    assert session.get(HumanTask, task.id).title == "提供抽查材料"  # type: ignore[union-attr]
