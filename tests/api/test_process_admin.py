"""Process administration through HTTP: deploy, versions, diff, migration, operating instances, pages."""

import re
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from registry import workflows
from registry.workflows import InstanceTimer
from tests.api.conftest import token
from tests.api.test_accessibility import unnamed_fields
from tests.api.test_pages import csrf_of, login
from tests.factories import student_data

INTAKE = (Path(__file__).resolve().parents[2] / "processes" / "student_intake.bpmn").read_text(encoding="utf-8")
CONFIRM_DUE = ('<spiffworkflow:property name="due" value="P5D" />\n        </spiffworkflow:properties>\n'
               '        <spiffworkflow:instructionsForEndUser>请确认学生')


def longer_confirm(days: int) -> str:
    return INTAKE.replace(CONFIRM_DUE, CONFIRM_DUE.replace('"P5D"', f'"P{days}D"'), 1)


def start_intake(client: TestClient, seq: int) -> int:
    response = client.post("/api/processes/student_intake/instances", headers=token(client, "registrar1"),
                           json={"data": {"student": student_data(seq=seq)}})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_deploy_list_diff_and_download(client: TestClient) -> None:
    admin = token(client, "processadmin")
    items = client.get("/api/processes/student_intake/versions", headers=admin).json()["items"]
    # Numbers count on from the newest deployed; the diff is against the newest in use (a browser test may have
    # deployed, then retired, a version with other changes in the same database).
    before = items[0]["version"]
    in_use = next(v["version"] for v in items if v["retired_at"] is None)
    response = client.post("/api/processes/student_intake/versions", headers=admin,
                           json={"bpmn": longer_confirm(11), "note": "确认入库期限改为 11 天"})
    assert response.status_code == 201, response.text
    assert response.json()["version"] == before + 1 and response.json()["created"]

    versions = client.get("/api/processes/student_intake/versions", headers=admin).json()["items"]
    assert versions[0]["note"] == "确认入库期限改为 11 天" and versions[0]["deployed_by"]
    diff = client.get(f"/api/processes/student_intake/diff?old={in_use}&new={before + 1}", headers=admin).json()
    assert [e["id"] for e in diff["changed"]] == ["confirm_intake"]
    download = client.get(f"/api/processes/student_intake/versions/{before + 1}/bpmn", headers=admin)
    assert download.status_code == 200 and 'value="P11D"' in download.text
    processes = client.get("/api/processes", headers=admin).json()["items"]
    assert "student_intake" in {p["process_id"] for p in processes}


def test_invalid_deploy_names_the_element_and_changes_nothing(client: TestClient) -> None:
    admin = token(client, "processadmin")
    before = client.get("/api/processes/student_intake/versions", headers=admin).json()["total"]
    broken = INTAKE.replace('sourceRef="gateway_review" targetRef="confirm_intake"',
                            'sourceRef="gateway_review" targetRef="nowhere"', 1)
    response = client.post("/api/processes/student_intake/versions", headers=admin,
                           json={"bpmn": broken, "note": "坏的"})
    assert response.status_code == 422
    assert response.json()["details"]
    assert client.get("/api/processes/student_intake/versions", headers=admin).json()["total"] == before


def test_garbage_and_escapes_are_refused_without_a_500(client: TestClient) -> None:
    admin = token(client, "processadmin")
    for bpmn in ("not xml", "<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>",
                 INTAKE.replace('decision == "approve"', "().__class__.__base__.__subclasses__()", 1)):
        response = client.post("/api/processes/student_intake/versions", headers=admin, json={"bpmn": bpmn, "note": "x"})
        assert response.status_code == 422, response.text


def test_only_process_admin_deploys_and_new_id_collision_is_refused(client: TestClient) -> None:
    response = client.post("/api/processes/student_intake/versions", headers=token(client, "admin"),
                           json={"bpmn": longer_confirm(6), "note": "x"})
    assert response.status_code == 403
    response = client.post("/api/processes", headers=token(client, "processadmin"),
                           json={"bpmn": longer_confirm(6), "note": "x"})
    assert response.status_code == 409 and "student_intake" in response.json()["message"]


def test_migration_dry_run_and_batch_over_http(client: TestClient) -> None:
    admin = token(client, "processadmin")
    instance_id = start_intake(client, 301)
    new = client.post("/api/processes/student_intake/versions", headers=admin,
                      json={"bpmn": longer_confirm(13), "note": "13 天"}).json()["version"]
    plan = client.get(f"/api/processes/student_intake/migration?to={new}", headers=admin).json()
    assert any(i["instance_id"] == instance_id and i["movable"] for i in plan["items"])
    done = client.post("/api/processes/student_intake/migration", headers=admin,
                       json={"to_version": new, "instance_ids": [instance_id]}).json()
    assert done["movable"] == 1
    assert client.get(f"/api/instances/{instance_id}", headers=admin).json()["version"] == new


def test_suspend_resume_cancel_over_http(client: TestClient) -> None:
    instance_id = start_intake(client, 302)
    admin = token(client, "admin")
    assert client.post(f"/api/instances/{instance_id}/suspend", headers=admin, json={"reason": ""}).status_code == 422
    assert client.post(f"/api/instances/{instance_id}/suspend", headers=token(client, "registrar1"),
                       json={"reason": "x"}).status_code == 403
    response = client.post(f"/api/instances/{instance_id}/suspend", headers=admin, json={"reason": "核查"})
    assert response.status_code == 200 and response.json()["status"] == "suspended"
    tasks = client.get("/api/tasks", headers=token(client, "principal1")).json()["items"]
    task = next(t for t in tasks if t["instance_id"] == instance_id)
    refused = client.post(f"/api/tasks/{task['id']}/complete", headers=token(client, "principal1"),
                          json={"data": {"decision": "approve"}})
    assert refused.status_code == 409 and "暂停" in refused.json()["message"]
    assert client.post(f"/api/instances/{instance_id}/resume", headers=admin, json={}).json()["status"] == "running"
    assert client.post(f"/api/instances/{instance_id}/retry", headers=token(client, "processadmin")).status_code == 409
    response = client.post(f"/api/instances/{instance_id}/cancel", headers=admin, json={"reason": "重复"})
    assert response.json()["status"] == "cancelled"
    listed = client.get("/api/instances?status=cancelled&process_id=student_intake", headers=admin).json()
    assert instance_id in {i["id"] for i in listed["items"]}
    assert client.get("/api/instances?status=bogus", headers=admin).status_code == 422


def test_pages_render_for_the_process_admin(client: TestClient) -> None:
    instance_id = start_intake(client, 303)
    login(client, "processadmin")
    for url in ("/processes", "/processes/student_intake", "/processes/student_intake/edit", "/processes/new",
                "/processes/instances", "/processes/instances?status=error&version=x",
                f"/processes/instances/{instance_id}", "/processes/student_intake/migrate?to=1"):
        page = client.get(url)
        assert page.status_code == 200, (url, page.text[:300])
        assert unnamed_fields(page.text) == [], url
    editor = client.get("/processes/student_intake/edit").text
    assert len(editor.encode()) < 100_000  # the modeler and its styles are cached files; the page carries the XML
    assert "bpmn-modeler.production.min.js" in editor and "modeler-setup" in editor
    assert "</script><" not in editor.split('id="modeler-setup">')[1].split("</script>")[0]


def test_instance_page_operations_with_reasons(client: TestClient) -> None:
    instance_id = start_intake(client, 304)
    login(client, "processadmin")
    page = client.get(f"/processes/instances/{instance_id}")
    csrf = csrf_of(page.text)
    refused = client.post(f"/processes/instances/{instance_id}/suspend", data={"csrf_token": csrf, "reason": ""})
    assert refused.status_code == 422 and "原因" in refused.text
    done = client.post(f"/processes/instances/{instance_id}/suspend", data={"csrf_token": csrf, "reason": "核查"},
                       follow_redirects=True)
    assert done.status_code == 200 and "已暂停" in done.text
    unknown = client.post(f"/processes/instances/{instance_id}/explode", data={"csrf_token": csrf})
    assert unknown.status_code == 404
    bad_version = client.post(f"/processes/instances/{instance_id}/migrate", data={"csrf_token": csrf, "to_version": "x"})
    assert bad_version.status_code == 422


def test_registrar_gets_403_on_admin_pages(client: TestClient) -> None:
    login(client, "registrar1")
    assert client.get("/processes").status_code == 403
    assert client.get("/processes/student_intake/edit").status_code == 403


def test_diff_page_marks_the_changed_task(client: TestClient) -> None:
    admin = token(client, "processadmin")
    new = client.post("/api/processes/student_intake/versions", headers=admin,
                      json={"bpmn": longer_confirm(14), "note": "14 天"}).json()["version"]
    login(client, "processadmin")
    page = client.get(f"/processes/student_intake/diff?old={new - 1}&new={new}")
    assert page.status_code == 200
    assert re.search(r'data-kind="changed">.*confirm_intake', page.text, re.S)


def test_new_process_from_the_template_deploys(client: TestClient) -> None:
    login(client, "processadmin")
    page = client.get("/processes/new")
    template = page.text.split('id="modeler-setup">')[1].split("</script>")[0]
    assert "new_process" in template
    from registry.process_admin import NEW_PROCESS_TEMPLATE
    response = client.post("/api/processes", headers=token(client, "processadmin"),
                           json={"bpmn": NEW_PROCESS_TEMPLATE.replace("new_process", "pa_api_process"), "note": "新流程",
                                 "forms": {"pa_api_form": {"type": "object", "properties": {
                                     "comment": {"type": "string", "title": "意见"}}}}})
    assert response.status_code == 201, response.text
    assert response.json()["process_id"] == "pa_api_process"


def test_retire_and_reinstate_on_the_versions_page(client: TestClient) -> None:
    admin = token(client, "processadmin")
    new = client.post("/api/processes/student_intake/versions", headers=admin,
                      json={"bpmn": longer_confirm(17), "note": "17 天"}).json()["version"]
    login(client, "processadmin")
    page = client.get("/processes/student_intake")
    csrf = csrf_of(page.text)
    refused = client.post(f"/processes/student_intake/versions/{new}/retire", data={"csrf_token": csrf, "reason": ""})
    assert refused.status_code == 422 and "原因" in refused.text
    done = client.post(f"/processes/student_intake/versions/{new}/retire", data={"csrf_token": csrf, "reason": "错了"},
                       follow_redirects=True)
    assert done.status_code == 200 and "已停用" in done.text
    assert client.post("/api/processes/student_intake/versions/1/retire", headers=admin,
                       json={"reason": "x"}).status_code == 409  # the only one still in use
    listed = client.get("/api/processes/student_intake/versions", headers=admin).json()["items"]
    assert listed[0]["retired_at"]
    assert client.post(f"/api/processes/student_intake/versions/{new}/reinstate", headers=admin).status_code == 200


def test_errored_instance_is_listed_with_its_element_and_retried_after_a_fix(client: TestClient, session: Session) -> None:
    admin = token(client, "processadmin")
    instance_id = start_intake(client, 305)
    principal = token(client, "principal1")
    task = next(t for t in client.get("/api/tasks", headers=principal).json()["items"] if t["instance_id"] == instance_id)
    assert client.post(f"/api/tasks/{task['id']}/complete", headers=principal,
                       json={"data": {"decision": "approve"}}).status_code == 200
    start = INTAKE.index('<bpmn:serviceTask id="mark_overdue"')
    end = INTAKE.index("</bpmn:serviceTask>", start) + len("</bpmn:serviceTask>")
    broken = (INTAKE[:start] + '<bpmn:scriptTask id="mark_overdue" name="标记逾期"><bpmn:incoming>flow_overdue_mark'
              '</bpmn:incoming><bpmn:outgoing>flow_mark_end</bpmn:outgoing><bpmn:script>overdue_marked = 1 / 0'
              '</bpmn:script></bpmn:scriptTask>' + INTAKE[end:])
    bad = client.post("/api/processes/student_intake/versions", headers=admin, json={"bpmn": broken, "note": "坏"})
    assert bad.status_code == 201, bad.text
    client.post("/api/processes/student_intake/migration", headers=admin,
                json={"to_version": bad.json()["version"], "instance_ids": [instance_id]})
    due = session.get(InstanceTimer, instance_id).due_at
    workflows.advance_instance(session, instance_id=instance_id, now=due + timedelta(minutes=1))
    session.commit()

    listed = client.get("/api/instances?status=error", headers=admin).json()["items"]
    errored = next(i for i in listed if i["id"] == instance_id)
    assert errored["error"]["element_id"] == "mark_overdue"
    login(client, "processadmin")
    page = client.get("/processes/instances?status=error")
    assert "mark_overdue" in page.text
    detail = client.get(f"/processes/instances/{instance_id}")
    assert "出错环节：mark_overdue" in detail.text
    fixed = client.post("/api/processes/student_intake/versions", headers=admin,
                        json={"bpmn": INTAKE.replace('name="标记逾期"', 'name="标记逾期（修正）"', 1), "note": "修正"})
    moved = client.post("/api/processes/student_intake/migration", headers=admin,
                        json={"to_version": fixed.json()["version"], "instance_ids": [instance_id]}).json()
    assert moved["movable"] == 1
    retried = client.post(f"/processes/instances/{instance_id}/retry", data={"csrf_token": csrf_of(detail.text)},
                          follow_redirects=True)
    assert "已重试" in retried.text
    assert client.get(f"/api/instances/{instance_id}", headers=admin).json()["status"] == "running"
    assert client.post(f"/api/instances/{instance_id}/retry", headers=admin).status_code == 409
