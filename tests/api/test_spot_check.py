"""Spot checks through HTTP: the JSON API (start, report, a school's part, evidence with a scan attachment) and
the pages (the auditor's start form, the report and its print version, the school's evidence page, the
auditor's findings page, the principal's rectification page, the task page's link), with refusals."""

import re
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.attachments import Attachment
from registry.audit import AuditEntry
from registry.org_units import OrgUnit
from registry.spot_checks.models import PartStatus, SpotCheck, SpotCheckSchool
from tests.api.conftest import token
from tests.api.test_pages import csrf_of, login, logout
from tests.spot_check_factories import PDF, PNG, enrol, school_with_staff

BIRTH_YEAR = 2008  # this module's students' ID numbers: no other test uses the year
SCHOOL, OTHER = "2152019961", "2152019962"


def born(day: int) -> date:
    return date(BIRTH_YEAR, 1 + day // 28, 1 + day % 28)


@pytest.fixture
def school(session: Session) -> OrgUnit:
    """A school of its own with four pupils, one a boarder with 一补; and a second school with two."""
    unit = school_with_staff(session, SCHOOL, "接口抽查小学")
    for i in range(4):
        extra = {"boarding_mode": "2", "boarding_allowance": True} if i == 0 else {}
        enrol(session, unit, seq=201 + 2 * i, birth=born(i), name=f"抽查{'甲乙丙丁'[i]}", **extra)
    other = school_with_staff(session, OTHER, "接口抽查中学")
    for i in range(2):
        enrol(session, other, seq=201 + 2 * i, birth=born(10 + i), name=f"另校{'甲乙'[i]}")
    session.commit()
    return unit


def start(client: TestClient, **data: Any) -> dict[str, Any]:
    body = {"school_codes": [SCHOOL], "students_per_school": 3, "focus": ["beneficiaries"], "seed": "424242", **data}
    response = client.post("/api/processes/spot_check/instances", headers=token(client, "auditor"), json={"data": body})
    assert response.status_code == 201, response.text
    return response.json()


def check_of(session: Session, instance_id: int) -> SpotCheck:
    session.expire_all()
    return session.scalars(select(SpotCheck).where(SpotCheck.instance_id == instance_id)).one()


def school_task(client: TestClient, username: str, part_id: int) -> dict[str, Any]:
    part = client.get(f"/api/spot-checks/schools/{part_id}", headers=token(client, username)).json()
    (task,) = part["open_tasks"]
    return task


# The JSON API ------------------------------------------------------------------------------------------------


def test_a_check_started_over_the_api_has_a_json_report_for_the_county_only(client: TestClient, school: OrgUnit,
                                                                             session: Session) -> None:
    started = start(client)
    check = check_of(session, started["id"])
    auditor = token(client, "auditor")

    listed = client.get("/api/spot-checks", headers=auditor).json()
    assert check.id in [c["id"] for c in listed["items"]] and listed["total"] >= 1
    report = client.get(f"/api/spot-checks/{check.id}", headers=token(client, "reviewer")).json()
    assert (report["seed"], report["params"]["students_per_school"], report["reproducible"]) == ("424242", 3, True)
    (part,) = report["schools"]
    assert (part["school"]["code"], part["eligible"], part["sampled"], part["status"]) == (SCHOOL, 4, 3, "evidence")
    assert part["open_tasks"][0]["task_id"] == "provide_evidence"

    again = client.post("/api/processes/spot_check/instances", headers=auditor, json={"data": {
        "school_codes": [SCHOOL], "students_per_school": 3, "focus": ["beneficiaries"], "seed": "424242"}})
    again_report = client.get(f"/api/spot-checks/{check_of(session, again.json()['id']).id}", headers=auditor).json()
    assert [s["student_id"] for s in again_report["schools"][0]["students"]] == \
        [s["student_id"] for s in part["students"]]  # the same seed over the same records: the same sample

    for username in (f"reg{SCHOOL}", "registrar1", "township1"):
        assert client.get(f"/api/spot-checks/{check.id}", headers=token(client, username)).status_code == 404
    assert client.get(f"/api/spot-checks/schools/{part['id']}", headers=token(client, f"reg{SCHOOL}")).status_code == 200
    assert client.get(f"/api/spot-checks/schools/{part['id']}", headers=token(client, f"reg{OTHER}")).status_code == 404
    assert client.get("/api/spot-checks", headers=token(client, f"reg{SCHOOL}")).json()["items"] == []


@pytest.mark.parametrize(("data", "field"), [
    ({"focus": ["ghosts"]}, "focus"),
    ({"school_codes": [], "school_count": 0}, "school_count"),
    ({"school_codes": []}, "school_codes"),
    ({"seed": "seed"}, "seed"),
])
def test_bad_start_data_is_422_naming_the_field(client: TestClient, school: OrgUnit, session: Session,
                                                data: dict[str, Any], field: str) -> None:
    before = session.scalar(select(func.count()).select_from(SpotCheck))
    body = {"school_codes": [SCHOOL], "students_per_school": 3, "focus": ["beneficiaries"], **data}
    response = client.post("/api/processes/spot_check/instances", headers=token(client, "auditor"), json={"data": body})
    assert response.status_code == 422, response.text
    assert field in {d["field"] for d in response.json()["details"]}
    assert session.scalar(select(func.count()).select_from(SpotCheck)) == before


def test_only_the_auditor_may_start(client: TestClient, school: OrgUnit) -> None:
    for username in ("reviewer", f"reg{SCHOOL}"):
        response = client.post("/api/processes/spot_check/instances", headers=token(client, username), json={"data": {
            "school_codes": [SCHOOL], "students_per_school": 3, "focus": ["beneficiaries"]}})
        assert response.status_code == 403, response.text


def test_evidence_over_the_api_names_a_scan_uploaded_to_the_task(client: TestClient, school: OrgUnit,
                                                                  session: Session) -> None:
    check = check_of(session, start(client, students_per_school=1)["id"])
    part = check.parts[0]
    registrar = token(client, f"reg{SCHOOL}")
    task = school_task(client, f"reg{SCHOOL}", part.id)
    refused = client.post(f"/api/tasks/{task['id']}/attachments", headers=registrar,
                          files={"file": ("a.txt", b"plain text", "text/plain")})
    assert refused.status_code == 422
    scan = client.post(f"/api/tasks/{task['id']}/attachments", headers=registrar,
                       files={"file": ("a.pdf", PDF, "application/pdf")}).json()
    student_id = part.students[0].student_id
    done = client.post(f"/api/tasks/{task['id']}/complete", headers=registrar, json={"data": {"spot_check_evidence": {
        "students": [{"student_id": student_id, "present": True, "scan_attachment_id": scan["id"]}]}}})
    assert done.status_code == 200, done.text
    view = client.get(f"/api/spot-checks/schools/{part.id}", headers=registrar).json()
    assert view["status"] == "findings" and view["students"][0]["scan"]["id"] == scan["id"]
    # The auditor's step is not the school's to do.
    findings = school_task(client, "auditor", part.id)
    assert client.post(f"/api/tasks/{findings['id']}/complete", headers=registrar,
                       json={"data": {"spot_check_findings": {"students": []}}}).status_code == 404


# The pages ----------------------------------------------------------------------------------------------------


def test_the_auditor_starts_a_check_on_the_page_and_errors_keep_the_input(client: TestClient, school: OrgUnit,
                                                                           session: Session) -> None:
    login(client, "auditor")
    page = client.get("/spot-checks/new")
    assert page.status_code == 200 and "抽取样本并下发" in page.text and "接口抽查小学" in page.text
    form = {"csrf_token": csrf_of(page.text), "title": "页面抽查", "mode": "named", "students_per_school": "2",
            "focus": ["boarders"], "seed": "77", "month": ""}
    refused = client.post("/spot-checks/new", data=form)
    assert refused.status_code == 422
    assert re.search(r'has-error">\s*<legend>抽查学校', refused.text)
    assert 'value="页面抽查"' in refused.text and 'value="77"' in refused.text  # the input is kept
    assert 'name="focus" value="boarders" checked' in refused.text

    started = client.post("/spot-checks/new", data={**form, "school_codes": [SCHOOL, OTHER]}, follow_redirects=False)
    assert started.status_code == 422 and "接口抽查中学（2152019962）在" in started.text  # no boarders there
    started = client.post("/spot-checks/new", data={**form, "school_codes": [SCHOOL]}, follow_redirects=False)
    assert started.status_code == 303, started.text
    report = client.get(started.headers["location"])
    assert report.status_code == 200
    assert "已抽取样本并下发到 1 所学校，随机种子 77" in report.text and "按记录重新抽样结果一致" in report.text
    assert "接口抽查小学：符合条件的学生只有 1 人，少于每校抽查人数 2，全部抽取" in report.text

    check_id = int(started.headers["location"].split("/")[2].split("?")[0])
    printed = client.get(f"/spot-checks/{check_id}/print")
    assert printed.status_code == 200 and "window.print()" in printed.text
    assert session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "spot_check.print", AuditEntry.object_id == str(check_id))) == 1
    assert client.post("/spot-checks/new", data={k: v for k, v in form.items() if k != "csrf_token"}).status_code == 403


def test_start_page_and_list_are_the_countys(client: TestClient, school: OrgUnit) -> None:
    login(client, f"reg{SCHOOL}")
    assert client.get("/spot-checks/new").status_code == 403
    assert client.get("/spot-checks").status_code == 403
    logout(client)
    login(client, "reviewer")
    assert client.get("/spot-checks").status_code == 200
    assert client.get("/spot-checks/new").status_code == 403  # oversees, does not start


def test_the_school_saves_and_submits_evidence_per_student_on_its_page(client: TestClient, school: OrgUnit,
                                                                       session: Session) -> None:
    check = check_of(session, start(client, students_per_school=2)["id"])
    part_id = check.parts[0].id
    first, second = (r.student_id for r in check.parts[0].students)
    task = school_task(client, f"reg{SCHOOL}", part_id)

    login(client, f"reg{OTHER}")
    assert client.get(f"/spot-checks/schools/{part_id}").status_code == 404
    logout(client)
    login(client, f"reg{SCHOOL}")
    task_page = client.get(f"/tasks/{task['id']}")
    assert f'href="/spot-checks/schools/{part_id}">逐人填写抽查材料' in task_page.text
    assert 'name="spot_check_evidence.students"' not in task_page.text  # no generic form for per-student rows
    page = client.get(f"/spot-checks/schools/{part_id}")
    assert page.status_code == 200 and f'name="present_{first}"' in page.text

    form = {"csrf_token": csrf_of(page.text), f"present_{first}": "yes", f"note_{first}": "在校",
            f"present_{second}": "no", f"note_{second}": "已随父母外出务工", "submit": "save"}
    bad = client.post(f"/spot-checks/schools/{part_id}/evidence", data=form,
                      files={f"scan_{first}": ("a.pdf", PDF, "application/pdf"),
                             f"scan_{second}": ("b.doc", b"\xd0\xcf\x11\xe0 word", "application/msword")})
    assert bad.status_code == 422
    assert "只能上传 PDF、JPEG 或 PNG" in bad.text and "本次选择的扫描件未保存，请重新选择" in bad.text
    assert 'value="已随父母外出务工"' in bad.text  # the input is kept
    assert session.scalar(select(func.count()).select_from(Attachment).where(
        Attachment.instance_id == check.parts[0].instance_id)) == 0  # nothing was stored

    saved = client.post(f"/spot-checks/schools/{part_id}/evidence", data=form,
                        files={f"scan_{first}": ("a.pdf", PDF, "application/pdf")}, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"].endswith("?saved=1")
    incomplete = client.post(f"/spot-checks/schools/{part_id}/evidence",
                             data={**form, f"note_{second}": "", "submit": "submit"})
    assert incomplete.status_code == 422
    assert "不在校，请在说明中写明去向或原因" in incomplete.text and "请上传纸质档案扫描件" in incomplete.text

    submitted = client.post(f"/spot-checks/schools/{part_id}/evidence", data={**form, "submit": "submit"},
                            files={f"scan_{second}": ("b.png", PNG, "image/png")}, follow_redirects=False)
    assert submitted.status_code == 303, submitted.text
    session.expire_all()
    part = session.get(SpotCheckSchool, part_id)
    assert part is not None and part.status == PartStatus.findings
    assert [(r.present, r.scan_id is not None) for r in part.students] == [(True, True), (False, True)]
    after = client.get(f"/spot-checks/schools/{part_id}")
    assert 'name="present_' not in after.text and "已随父母外出务工" in after.text  # read-only now


def test_findings_rectification_and_verification_through_the_pages(client: TestClient, school: OrgUnit,
                                                                   session: Session) -> None:
    check = check_of(session, start(client, students_per_school=2)["id"])
    part_id = check.parts[0].id
    first, second = (r.student_id for r in check.parts[0].students)
    evidence = {"spot_check_evidence": {"students": [{"student_id": first, "present": True, "note": "在校"},
                                                     {"student_id": second, "present": True, "note": "在校"}]}}
    task = school_task(client, f"reg{SCHOOL}", part_id)
    assert client.post(f"/api/tasks/{task['id']}/complete", headers=token(client, f"reg{SCHOOL}"),
                       json={"data": evidence}).status_code == 200

    login(client, f"reg{SCHOOL}")
    assert 'name="finding_' not in client.get(f"/spot-checks/schools/{part_id}").text
    csrf = csrf_of(client.get("/").text)
    assert client.post(f"/spot-checks/schools/{part_id}/findings",
                       data={"csrf_token": csrf, f"finding_{first}": "none", f"finding_{second}": "none"}).status_code == 404
    logout(client)

    login(client, "auditor")
    page = client.get(f"/spot-checks/schools/{part_id}")
    assert f'name="finding_{first}"' in page.text
    form = {"csrf_token": csrf_of(page.text), f"finding_{first}": "none", f"finding_{second}": "mismatch",
            "summary": "一人班级不符"}
    refused = client.post(f"/spot-checks/schools/{part_id}/findings", data=form)
    assert refused.status_code == 422 and "信息不符，请说明发现的问题" in refused.text
    assert 'value="mismatch" selected' in refused.text
    done = client.post(f"/spot-checks/schools/{part_id}/findings",
                       data={**form, f"finding_note_{second}": "班级与学籍卡不符"}, follow_redirects=False)
    assert done.status_code == 303
    logout(client)

    login(client, f"pri{SCHOOL}")
    page = client.get(f"/spot-checks/schools/{part_id}")
    assert f'name="measure_{second}"' in page.text and f'name="measure_{first}"' not in page.text
    form = {"csrf_token": csrf_of(page.text), f"measure_{second}": "已更正班级"}
    refused = client.post(f"/spot-checks/schools/{part_id}/rectification", data=form)
    assert refused.status_code == 422 and "整改报告：必填" in refused.text and 'value="已更正班级"' in refused.text
    done = client.post(f"/spot-checks/schools/{part_id}/rectification", data={**form, "report": "已整改"},
                       files={"file": ("r.pdf", PDF, "application/pdf")}, follow_redirects=False)
    assert done.status_code == 303
    logout(client)

    login(client, "auditor")
    verify = school_task(client, "auditor", part_id)
    task_page = client.get(f"/tasks/{verify['id']}")
    assert "第 1 轮整改报告" in task_page.text and "已更正班级" in task_page.text and 'name="decision"' in task_page.text
    returned = client.post(f"/tasks/{verify['id']}", data={"csrf_token": csrf_of(task_page.text), "decision": "return",
                                                            "comment": "请附学籍卡复印件"}, follow_redirects=False)
    assert returned.status_code == 303
    logout(client)

    login(client, f"pri{SCHOOL}")
    page = client.get(f"/spot-checks/schools/{part_id}")
    assert "第 1 轮整改被退回：请附学籍卡复印件" in page.text
    client.post(f"/spot-checks/schools/{part_id}/rectification",
                data={"csrf_token": csrf_of(page.text), f"measure_{second}": "已更正并附复印件", "report": "已补材料"})
    logout(client)

    login(client, "auditor")
    verify = school_task(client, "auditor", part_id)
    task_page = client.get(f"/tasks/{verify['id']}")
    client.post(f"/tasks/{verify['id']}", data={"csrf_token": csrf_of(task_page.text), "decision": "approve"})
    report = client.get(f"/spot-checks/{check.id}")
    assert "第 1 轮整改" in report.text and "退回重新整改" in report.text and "第 2 轮整改" in report.text
    assert "整改到位" in report.text and "已办结" in report.text
    conclude = client.get("/api/tasks?process_id=spot_check&tab=to_claim", headers=token(client, "auditor")).json()
    (task,) = [t for t in conclude["items"] if t["instance_id"] == check.instance_id]
    task_page = client.get(f"/tasks/{task['id']}")
    assert "已办结 1 / 1 所" in task_page.text
    client.post(f"/tasks/{task['id']}", data={"csrf_token": csrf_of(task_page.text),
                                              "spot_check_conclusion.conclusion": "发现 1 个问题，已整改到位"})
    final = client.get(f"/api/spot-checks/{check.id}", headers=token(client, "auditor")).json()
    assert final["status"] == "concluded" and final["conclusion"] == "发现 1 个问题，已整改到位"
    assert [r["decision"] for r in final["schools"][0]["rectifications"]] == ["return", "approve"]


def test_the_instance_pages_of_a_check_and_of_a_school_part(client: TestClient, school: OrgUnit,
                                                            session: Session) -> None:
    check = check_of(session, start(client, students_per_school=1)["id"])
    part = check.parts[0]
    login(client, "auditor")
    parent = client.get(f"/instances/{check.instance_id}")
    assert parent.status_code == 200 and "抽查" in parent.text
    assert client.get(f"/api/instances/{check.instance_id}/diagram", headers=token(client, "auditor")).status_code == 200
    logout(client)
    login(client, f"reg{SCHOOL}")
    child = client.get(f"/instances/{part.instance_id}")
    assert child.status_code == 200 and "提供抽查材料" in child.text
    assert client.get(f"/instances/{check.instance_id}").status_code == 404  # the county's, not the school's
    logout(client)
    login(client, f"reg{OTHER}")
    assert client.get(f"/instances/{part.instance_id}").status_code == 404


def unnamed_fields(html: str) -> list[str]:
    from tests.api.test_accessibility import FieldNames

    parser = FieldNames()
    parser.feed(html)
    return parser.unnamed()


def test_every_field_of_the_spot_check_forms_has_a_name_a_screen_reader_can_say(client: TestClient, school: OrgUnit,
                                                                                   session: Session) -> None:
    check = check_of(session, start(client, students_per_school=2)["id"])
    part = check.parts[0]
    login(client, "auditor")
    assert unnamed_fields(client.get("/spot-checks/new").text) == []
    logout(client)
    login(client, f"reg{SCHOOL}")
    page = client.get(f"/spot-checks/schools/{part.id}")
    assert 'name="present_' in page.text and unnamed_fields(page.text) == []
    task = school_task(client, f"reg{SCHOOL}", part.id)
    rows = [{"student_id": r.student_id, "present": True, "note": "在校"} for r in part.students]
    client.post(f"/api/tasks/{task['id']}/complete", headers=token(client, f"reg{SCHOOL}"),
                json={"data": {"spot_check_evidence": {"students": rows}}})
    logout(client)
    login(client, "auditor")
    page = client.get(f"/spot-checks/schools/{part.id}")
    assert 'name="finding_' in page.text and unnamed_fields(page.text) == []
    findings = [{"student_id": r.student_id, "finding": "other", "note": "缺照片"} for r in part.students]
    task = school_task(client, "auditor", part.id)
    client.post(f"/api/tasks/{task['id']}/complete", headers=token(client, "auditor"),
                json={"data": {"spot_check_findings": {"students": findings}}})
    logout(client)
    login(client, f"pri{SCHOOL}")
    page = client.get(f"/spot-checks/schools/{part.id}")
    assert 'name="measure_' in page.text and unnamed_fields(page.text) == []
