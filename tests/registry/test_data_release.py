"""Data releases (Art. 24) on a real database: the file holds exactly what was approved, downloads are
counted, expire and run out, only the requester downloads, only the county's own reviewer approves, and a
bad request writes nothing.

Each test makes its own township and schools, so the scope it asks for holds only its own students,
whatever other tests committed to the shared database.
"""

import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry import data_releases, inbox, students, workflows
from registry.audit import AuditEntry
from registry.data_releases import DataRelease, DownloadState
from registry.errors import Conflict, InvalidTransition, NotFound, PermissionDenied, RuleViolation
from registry.file_store import LocalFileStore
from registry.org_units import OrgKind, OrgUnit, create_org_unit, find_org_unit
from registry.settings import local_zone
from registry.students import Student
from registry.users import Role, User, grant_role
from registry.workflows import HumanTask, ProcessInstance, TaskStatus
from tests.factories import make_school, make_user, student_data, user

BIRTH = date(2016, 6, 11)  # the ID numbers of this module's students: nobody else's
T0 = datetime(2026, 10, 12, 2, 0, tzinfo=UTC)
TODAY = date(2026, 10, 12)
SCHOOL_A, SCHOOL_B, TOWNSHIP = "2152099101", "2152099102", "520199991"


@pytest.fixture
def store(tmp_path: Path) -> LocalFileStore:
    return LocalFileStore(tmp_path / "files")


@pytest.fixture
def scope(session: Session) -> dict[str, OrgUnit]:
    """A township of two schools: A has two grade-3 students and one in grade 4, B one in grade 3."""
    a = make_school(session, code=SCHOOL_A, name="数据甲小学", township=TOWNSHIP, township_name="数据乡")
    b = make_school(session, code=SCHOOL_B, name="数据乙小学", township=TOWNSHIP)
    enter(session, seq=11, name="提供甲", school_code=SCHOOL_A, guardian_phone="13812345678")
    enter(session, seq=13, name="提供乙", school_code=SCHOOL_A, guardian_phone="13900001111")
    enter(session, seq=15, name="提供丙", school_code=SCHOOL_A, grade=4, class_name="四年级（1）班")
    enter(session, seq=17, name="提供丁", school_code=SCHOOL_B)
    township = find_org_unit(session, code=TOWNSHIP)
    assert township is not None
    return {"a": a, "b": b, "township": township}


def enter(session: Session, *, seq: int, **overrides: Any) -> Student:
    """An active student: entered and confirmed through the registry's own services."""
    student, _ = students.register_pending(session, actor=user(session, "aidcenter"),
                                           data=student_data(seq=seq, birth=BIRTH, **overrides), today=TODAY)
    students.activate(session, student_id=student.id, actor=user(session, "reviewer"), now=T0)
    return student


def request(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"org_units": [SCHOOL_A], "grades": [3], "fields": ["name", "grade", "id_number", "guardian_phone"],
                            "purpose": "县统计局学生人数统计核对", "recipient_department": "演示县统计局",
                            "recipient_person": "王统计"}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def start(session: Session, actor: User, **changes: Any) -> tuple[ProcessInstance, DataRelease]:
    instance, _ = workflows.start_process(session, actor=actor, process_id="data_release", data=request(**changes),
                                          now=T0)
    release = data_releases.for_instance(session, instance_id=instance.id)
    assert release is not None
    return instance, release


def open_task(session: Session, instance: ProcessInstance) -> HumanTask:
    return session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id,
                                                   HumanTask.status == TaskStatus.open)).one()


def decide(session: Session, instance: ProcessInstance, store: LocalFileStore | None, decision: str = "approve",
           by: str = "reviewer", comment: str | None = None, now: datetime = T0) -> None:
    data = {"decision": decision, **({"comment": comment} if comment else {})}
    workflows.complete_task(session, actor=user(session, by), task_id=open_task(session, instance).id, data=data,
                            now=now, files=store)


def sheet_rows(data: bytes, sheet: str = "学生名单") -> list[list[Any]]:
    return [list(row) for row in load_workbook(io.BytesIO(data))[sheet].iter_rows(values_only=True)]


def download(session: Session, release: DataRelease, store: LocalFileStore, *, by: str = "aidcenter",
             now: datetime = T0 + timedelta(hours=1)) -> bytes:
    _, data = data_releases.download(session, actor=user(session, by), now=now, store=store, ip="10.0.0.8",
                                     user_agent="pytest", release_id=release.id)
    return data


def test_approval_builds_a_file_of_exactly_the_approved_fields_and_scope_with_the_watermark(
        session: Session, scope: dict[str, OrgUnit], store: LocalFileStore) -> None:
    instance, release = start(session, user(session, "aidcenter"), full=["guardian_phone"])
    assert (release.status, release.requester_role, release.org_unit_id, release.rows_requested) == (
        "open", "county_aid_center", scope["a"].id, 2)
    task = open_task(session, instance)
    # Asked for school A, approved by the county: the step is the county's, not the scope's.
    assert (task.task_id, task.role, task.org_unit.code) == ("approve_request", "county_reviewer", "520199")
    decide(session, instance, store)

    session.flush()
    assert release.status == "approved" and release.rows == 2 and release.decided_by_id == user(session, "reviewer").id
    assert release.expires_at == T0 + timedelta(days=7) and release.max_downloads == 3 and release.downloads == 0
    assert release.token and len(release.token) >= 30 and store.exists(release.file_key or "")
    session.refresh(instance)
    assert instance.status == "completed"

    rows = sheet_rows(store.open(release.file_key or ""))
    expires = T0.astimezone(local_zone()) + timedelta(days=7)
    assert release.number == instance.id  # the 审批表's number: a copy leads to the signed approval
    mark = (f"数据提供审批 第 {instance.id} 号 · 仅限县统计局学生人数统计核对使用 · "
            f"有效期至 {expires:%Y-%m-%d %H:%M} · 请勿转发")
    assert rows[0][0] == mark and rows[-1][0] == mark
    # The template's column order, whatever order the request listed them in.
    assert rows[1] == ["姓名", "身份证件号", "年级", "监护人电话"]
    body = rows[2:-2]
    assert [r[0] for r in body] == ["提供甲", "提供乙"] and [r[2] for r in body] == [3, 3]
    assert [r[3] for r in body] == ["13812345678", "13900001111"]  # asked for in full and approved
    assert all("*" in r[1] for r in body) and student_data(seq=11, birth=BIRTH)["id_number"] not in str(rows)
    assert rows[-2][0] == "合计：2 人"
    book = load_workbook(io.BytesIO(store.open(release.file_key or "")))
    assert book["学生名单"].oddHeader.center.text == mark
    about = dict((r[0], r[1]) for r in sheet_rows(store.open(release.file_key or ""), "审批信息")[1:])
    assert about["接收单位"] == "演示县统计局" and about["人数"] == "2 人" and "数据甲小学" in about["提供范围"]
    approved = session.scalars(select(AuditEntry).where(AuditEntry.action == "data_release.approve",
                                                        AuditEntry.object_id == str(release.id))).one()
    assert approved.after["rows"] == 2 and approved.after["file_sha256"] == release.file_key


def test_full_id_numbers_leave_only_when_asked_for_and_approved(session: Session, scope: dict[str, OrgUnit],
                                                                 store: LocalFileStore) -> None:
    instance, release = start(session, user(session, "aidcenter"), org_units=[TOWNSHIP], grades=None,
                              fields=["id_number", "name"], full=["id_number"])
    decide(session, instance, store)
    session.flush()
    body = sheet_rows(store.open(release.file_key or ""))[2:-2]
    assert sorted(r[0] for r in body) == ["提供丁", "提供丙", "提供乙", "提供甲"]
    assert {r[1] for r in body} == {student_data(seq=s, birth=BIRTH)["id_number"] for s in (11, 13, 15, 17)}


def test_downloads_are_counted_recorded_and_refused_past_the_limit(session: Session, scope: dict[str, OrgUnit],
                                                                   store: LocalFileStore) -> None:
    instance, release = start(session, user(session, "aidcenter"), max_downloads=2)
    decide(session, instance, store)
    session.flush()
    _, first = data_releases.download(session, actor=user(session, "aidcenter"), now=T0, store=store, ip="10.0.0.8",
                                      user_agent="pytest", token=release.token)
    second = download(session, release, store)
    assert first == second == store.open(release.file_key or "") and release.downloads == 2
    assert data_releases.download_state(release, T0 + timedelta(hours=1)) == DownloadState.used_up
    with pytest.raises(InvalidTransition, match="下载次数已用完（共 2 次）"):
        download(session, release, store)
    entries = session.scalars(select(AuditEntry).where(AuditEntry.object_type == "data_release",
                                                       AuditEntry.object_id == str(release.id),
                                                       AuditEntry.action.like("data_release.download%"))
                              .order_by(AuditEntry.id)).all()
    assert [(e.action, e.after["ip"]) for e in entries] == [
        ("data_release.download", "10.0.0.8"), ("data_release.download", "10.0.0.8"),
        ("data_release.download_refused", "10.0.0.8")]
    assert [e.after.get("download") for e in entries[:2]] == [1, 2] and "用完" in (entries[2].reason or "")


def test_the_link_expires_after_the_validity(session: Session, scope: dict[str, OrgUnit], store: LocalFileStore) -> None:
    instance, release = start(session, user(session, "aidcenter"), valid_days=1)
    decide(session, instance, store)
    session.flush()
    download(session, release, store, now=T0 + timedelta(days=1) - timedelta(seconds=1))
    with pytest.raises(InvalidTransition, match="下载链接已过期"):
        download(session, release, store, now=T0 + timedelta(days=1))
    assert release.downloads == 1


def test_only_the_requester_downloads(session: Session, scope: dict[str, OrgUnit], store: LocalFileStore) -> None:
    instance, release = start(session, user(session, "aidcenter"))
    decide(session, instance, store)
    session.flush()
    colleague = make_user(session, "aidcenter_dr2", role="county_aid_center", org_unit_code="520199")
    with pytest.raises(PermissionDenied, match="只有申请人本人可以下载"):
        download(session, release, store, by="reviewer")  # sees the request, may not take the file
    with pytest.raises(PermissionDenied):
        download(session, release, store, by=colleague.username)
    with pytest.raises(NotFound):
        download(session, release, store, by="registrar1")  # does not even learn that it exists
    with pytest.raises(NotFound):
        data_releases.get_release(session, actor=user(session, "registrar1"), release_id=release.id)
    assert release.downloads == 0
    refused = session.scalars(select(AuditEntry.actor_id).where(
        AuditEntry.action == "data_release.download_refused", AuditEntry.object_id == str(release.id))).all()
    assert len(refused) == 3


def test_a_reviewer_of_another_county_cannot_approve(session: Session, scope: dict[str, OrgUnit],
                                                      store: LocalFileStore) -> None:
    create_org_unit(session, code="520299", name="邻县", kind=OrgKind.county)
    make_user(session, "reviewer_other_county", role="county_reviewer", org_unit_code="520299")
    instance, release = start(session, user(session, "aidcenter"))
    with pytest.raises(NotFound):
        decide(session, instance, store, by="reviewer_other_county")
    session.flush()
    assert release.status == "open" and release.file_key is None


def test_nobody_approves_their_own_request(session: Session, scope: dict[str, OrgUnit], store: LocalFileStore) -> None:
    both = make_user(session, "aid_and_review", role="county_aid_center", org_unit_code="520199")
    grant_role(session, user=both, role=Role.county_reviewer, org_unit_code="520199")
    instance, release = start(session, both)
    with pytest.raises(PermissionDenied, match="不能审批本人提出的"):
        decide(session, instance, store, by="aid_and_review")
    decide(session, instance, store)  # another reviewer may
    session.flush()
    assert release.status == "approved"


def test_a_township_officer_asks_for_their_township_and_a_return_comes_back_to_them(
        session: Session, scope: dict[str, OrgUnit], store: LocalFileStore) -> None:
    officer = make_user(session, "township_dr", role="township_officer", org_unit_code=TOWNSHIP)
    instance, release = start(session, officer, org_units=[SCHOOL_A, SCHOOL_B], fields=["name", "address"])
    assert release.org_unit_id == scope["township"].id and release.requester_role == "township_officer"
    assert release.rows_requested == 3
    assert open_task(session, instance).org_unit.code == "520199"
    decide(session, instance, store, "return", comment="请去掉现住址")
    revise = open_task(session, instance)
    assert (revise.task_id, revise.role, revise.org_unit_id) == ("revise_request_township", "township_officer",
                                                                 scope["township"].id)
    with pytest.raises(NotFound):  # a colleague does not rewrite someone's request, nor see it
        data_releases.revision_task(session, actor=make_user(session, "township_dr2", role="township_officer",
                                                             org_unit_code=TOWNSHIP), release_id=release.id)
    assert data_releases.revision_task(session, actor=officer, release_id=release.id).id == revise.id
    workflows.complete_task(session, actor=officer, task_id=revise.id, now=T0,
                            data={"data_release": request(org_units=[SCHOOL_A, SCHOOL_B], fields=["name", "sex"])})
    session.flush()
    assert release.fields == ["name", "sex"] and release.status == "open"
    decide(session, instance, store)
    session.flush()
    assert sheet_rows(store.open(release.file_key or ""))[1] == ["姓名", "性别"]
    assert release.rows == 3
    revised = session.scalars(select(AuditEntry).where(AuditEntry.action == "data_release.revise",
                                                       AuditEntry.object_id == str(release.id))).one()
    assert revised.before["fields"] == ["name", "address"] and revised.after["fields"] == ["name", "sex"]


def test_a_rejection_closes_the_request_and_builds_nothing(session: Session, scope: dict[str, OrgUnit],
                                                          store: LocalFileStore) -> None:
    instance, release = start(session, user(session, "aidcenter"))
    decide(session, instance, store, "reject", comment="用途不明确")
    session.flush()
    assert (release.status, release.close_comment, release.file_key, release.token) == (
        "rejected", "用途不明确", None, None)
    with pytest.raises(InvalidTransition, match="未获批准"):
        download(session, release, store)


def test_a_batch_approval_is_refused_each_release_is_decided_on_its_own(
        session: Session, scope: dict[str, OrgUnit], store: LocalFileStore) -> None:
    instance, release = start(session, user(session, "aidcenter"))
    ok, results = inbox.complete_many(session, actor=user(session, "reviewer"),
                                      task_ids=[open_task(session, instance).id], data={"decision": "approve"}, now=T0)
    assert not ok and "逐项审批" in results[0].message
    session.flush()
    assert release.status == "open"


def test_the_requester_withdraws_before_the_county_acts(session: Session, scope: dict[str, OrgUnit]) -> None:
    instance, release = start(session, user(session, "aidcenter"))
    workflows.withdraw(session, actor=user(session, "aidcenter"), instance_id=instance.id, reason="统计局已取消需求")
    session.flush()
    assert (release.status, release.close_comment) == ("withdrawn", "统计局已取消需求")


def test_files_of_expired_and_used_up_releases_are_purged(session: Session, scope: dict[str, OrgUnit],
                                                         store: LocalFileStore) -> None:
    instance, release = start(session, user(session, "aidcenter"), valid_days=2)
    decide(session, instance, store)
    session.flush()
    key = release.file_key or ""
    assert data_releases.purge_files(session, store=store, now=T0 + timedelta(days=1)) == 0
    assert data_releases.purge_files(session, store=store, now=T0 + timedelta(days=2)) == 1
    assert release.file_key is None and not store.exists(key)
    with pytest.raises(InvalidTransition, match="已过期"):
        download(session, release, store, now=T0 + timedelta(days=3))


BAD = [
    ({"fields": ["name", "salary"]}, "fields", "salary 不是学生信息的字段"),
    ({"fields": []}, "fields", "请至少选择一项"),
    ({"org_units": []}, "org_units", "请至少选择"),
    ({"org_units": ["9999999999"]}, "org_units", "找不到单位"),
    ({"valid_days": 31}, "valid_days", "1–30"),
    ({"valid_days": 0}, "valid_days", "1–30"),
    ({"max_downloads": 11}, "max_downloads", "1–10"),
    ({"full": ["id_number"], "fields": ["name"]}, "full", "请同时选择身份证件号"),
    ({"full": ["address"]}, "full", "只能选择身份证件号或监护人电话"),
    ({"statuses": ["voided"]}, "statuses", "已作废的记录不能提供"),
    ({"grades": [10]}, "grades", "1–9"),
    ({"grades": [9]}, "org_units", "没有符合条件的学生"),
    ({"purpose": "统计"}, "purpose", "至少 5 个字"),
    ({"recipient_person": None}, "recipient_person", "必填"),
    ({"salary": 1}, "salary", "未知字段"),
]


@pytest.mark.parametrize(("changes", "field", "message"), BAD, ids=[b[1] + ":" + b[2] for b in BAD])
def test_a_bad_request_names_the_problem_and_creates_nothing(session: Session, scope: dict[str, OrgUnit],
                                                            changes: dict[str, Any], field: str, message: str) -> None:
    def counts() -> tuple[int | None, ...]:
        # Differences, not totals: browser tests commit releases to the shared database.
        return (session.scalar(select(func.count()).select_from(DataRelease)),
                session.scalar(select(func.count()).select_from(ProcessInstance)),
                session.scalar(select(func.count()).select_from(AuditEntry)))

    before = counts()
    with pytest.raises(RuleViolation) as caught:
        start(session, user(session, "aidcenter"), **changes)
    assert any(d["field"] == field and message in d["message"] for d in caught.value.details), caught.value.details
    assert counts() == before


def test_every_problem_is_named_at_once(session: Session) -> None:
    with pytest.raises(RuleViolation) as caught:
        data_releases.file_release(session, actor=user(session, "aidcenter"),
                                   data={"org_units": [], "fields": ["salary"], "valid_days": 99, "purpose": ""})
    assert {d["field"] for d in caught.value.details} == {"org_units", "fields", "valid_days", "purpose",
                                                          "recipient_department", "recipient_person"}


@pytest.mark.parametrize(("username", "error", "message"), [
    ("registrar1", PermissionDenied, "只有县学生资助管理中心、乡镇中心校管理员或校长"),
    ("reviewer", PermissionDenied, "只有县学生资助管理中心"),
    ("township1", RuleViolation, "不在您的管辖范围内"),  # 城关镇's officer, asking for 数据乡's school
    ("principal1", RuleViolation, "不在您的管辖范围内"),
])
def test_requests_stay_within_the_requesters_scope(session: Session, scope: dict[str, OrgUnit], username: str,
                                                   error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        start(session, user(session, username))


def test_a_principal_asks_for_their_own_school(session: Session, scope: dict[str, OrgUnit],
                                               store: LocalFileStore) -> None:
    principal = make_user(session, "principal_dr", role="school_principal", org_unit_code=SCHOOL_A)
    instance, release = start(session, principal, grades=None)
    assert release.requester_role == "school_principal" and release.rows_requested == 3
    decide(session, instance, store, "return", comment="请说明用途")
    assert open_task(session, instance).task_id == "revise_request_school"


def test_approval_checks_the_scope_again(session: Session, scope: dict[str, OrgUnit], store: LocalFileStore) -> None:
    instance, release = start(session, user(session, "aidcenter"), org_units=[SCHOOL_B])
    (only,) = session.scalars(select(Student).where(Student.school_id == scope["b"].id)).all()
    students.void_active(session, actor=user(session, "reviewer"), student_id=only.id, reason="重复录入")
    with pytest.raises(Conflict, match="没有符合条件的学生"):
        decide(session, instance, store)


def test_neither_the_aid_centre_nor_a_principal_approves(session: Session, scope: dict[str, OrgUnit],
                                                         store: LocalFileStore) -> None:
    principal = make_user(session, "principal_dr_a", role="school_principal", org_unit_code=SCHOOL_A)
    for requester in (user(session, "aidcenter"), principal):
        instance, release = start(session, requester)
        task = open_task(session, instance)
        for by in ("aidcenter", "principal_dr_a", "principal1"):
            with pytest.raises(NotFound, match=f"找不到任务 {task.id}"):
                decide(session, instance, store, by=by)
        session.flush()
        assert (release.status, release.file_key, release.token, release.decided_by_id) == ("open", None, None, None)
        assert open_task(session, instance).id == task.id
        assert session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "data_release.approve", AuditEntry.object_id == str(release.id))) == 0


@pytest.mark.parametrize(("requester", "revise_task", "role"), [
    ("aidcenter", "revise_request_county", "county_aid_center"),
    ("principal_dr_b", "revise_request_school", "school_principal")])
def test_a_return_reaches_the_requesters_own_lane(session: Session, scope: dict[str, OrgUnit], store: LocalFileStore,
                                                  requester: str, revise_task: str, role: str) -> None:
    if requester == "principal_dr_b":
        make_user(session, requester, role="school_principal", org_unit_code=SCHOOL_A)
    asker = user(session, requester)
    instance, release = start(session, asker, fields=["name", "address"])
    decide(session, instance, store, "return", comment="请去掉现住址")
    revise = open_task(session, instance)
    assert (revise.task_id, revise.role, revise.org_unit_id) == (revise_task, role, scope["a"].id)
    assert data_releases.revision_task(session, actor=asker, release_id=release.id).id == revise.id
    with pytest.raises(NotFound):  # the county reviewer returned it; rewriting it is the requester's
        workflows.complete_task(session, actor=user(session, "reviewer"), task_id=revise.id, now=T0,
                                data={"data_release": request(fields=["name"])})
    workflows.complete_task(session, actor=asker, task_id=revise.id, now=T0,
                            data={"data_release": request(fields=["name", "sex"])})
    session.flush()
    assert release.fields == ["name", "sex"] and release.status == "open"
    approve = open_task(session, instance)
    assert (approve.task_id, approve.org_unit.code) == ("approve_request", "520199")
    decide(session, instance, store)
    session.flush()
    assert release.status == "approved" and sheet_rows(store.open(release.file_key or ""))[1] == ["姓名", "性别"]

