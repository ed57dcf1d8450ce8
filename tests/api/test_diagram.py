"""An instance's diagram: the deployed BPMN with the step waiting for someone and the steps done,
through the API for the viewer and as a plain list on the task page (what a reader without
JavaScript gets)."""

import re
from datetime import date

from fastapi.testclient import TestClient

from tests.api.conftest import token
from tests.api.test_pages import login
from tests.factories import student_data


def start_intake(client: TestClient, seq: int) -> dict:
    response = client.post("/api/processes/student_intake/instances", headers=token(client, "registrar1"),
                           json={"data": {"student": student_data(seq=seq, birth=date(2014, 12, 3),
                                                                  name=f"流程图{seq}")}})
    assert response.status_code == 201, response.text
    return response.json()


def test_diagram_marks_the_waiting_step_and_the_steps_done(client: TestClient) -> None:
    started = start_intake(client, 601)
    principal = token(client, "principal1")
    diagram = client.get(f"/api/instances/{started['id']}/diagram", headers=principal)
    assert diagram.status_code == 200, diagram.text
    body = diagram.json()
    assert body["bpmn"].startswith("<?xml") and 'id="review_intake"' in body["bpmn"]
    assert body["active"] == ["review_intake"]
    assert body["completed"] == ["check_duplicates"]  # a service task: it has no inbox row
    states = {s["id"]: s["state"] for s in body["steps"]}
    assert states["check_duplicates"] == "completed" and states["review_intake"] == "active"
    assert states["confirm_intake"] == ""
    assert body["lane_labels"]["school_principal"] == "校长"

    review_id = started["open_tasks"][0]["id"]
    done = client.post(f"/api/tasks/{review_id}/complete", headers=principal, json={"data": {"decision": "approve"}})
    assert done.status_code == 200, done.text
    after = client.get(f"/api/instances/{started['id']}/diagram", headers=token(client, "reviewer")).json()
    assert after["active"] == ["confirm_intake"]
    assert after["completed"] == ["check_duplicates", "review_intake"]


def test_diagram_is_scoped_like_the_instance(client: TestClient) -> None:
    started = start_intake(client, 603)
    url = f"/api/instances/{started['id']}/diagram"
    other_school = client.get(url, headers=token(client, "registrar2"))
    assert other_school.status_code == 404 and other_school.json()["code"] == "not_found"
    assert client.get(url).status_code == 401
    assert client.get("/api/instances/999999999/diagram", headers=token(client, "reviewer")).status_code == 404
    assert client.get("/api/instances/0/diagram", headers=token(client, "reviewer")).status_code == 422


def test_task_page_lists_the_steps_without_javascript(client: TestClient) -> None:
    started = start_intake(client, 605)
    login(client, "principal1")
    page = client.get(f"/tasks/{started['open_tasks'][0]['id']}")
    assert page.status_code == 200
    section = re.search(r'<details id="diagram".*?</details>', page.text, re.S)
    assert section, "no 流程图 section"
    html = section.group(0)
    assert "<summary>流程图</summary>" in html
    assert f'data-diagram-url="/api/instances/{started["id"]}/diagram"' in html
    assert '<li class="step-completed">名单查重（已完成）</li>' in html
    assert '<li class="step-active">校长审核（当前步骤）</li>' in html
    assert '<li class="step-pending">确认入库</li>' in html
