"""The whole intake through HTTP, as another program drives it (DESIGN.md "Contracts")."""

from pathlib import Path

from fastapi.testclient import TestClient

from tests.api.conftest import token
from tests.factories import SCHOOL_2, student_data


def open_task_of(client: TestClient, auth: dict[str, str], instance_id: int) -> dict:
    items = client.get("/api/tasks", headers=auth).json()["items"]
    mine = [t for t in items if t["instance_id"] == instance_id]
    assert len(mine) == 1, items
    return mine[0]


def test_registrar_principal_reviewer_take_a_student_to_active(client: TestClient) -> None:
    registrar, principal, reviewer = (token(client, u) for u in ("registrar1", "principal1", "reviewer"))

    me = client.get("/api/me", headers=registrar).json()
    assert me["username"] == "registrar1"
    assert me["roles"] == [{"role": "school_registrar",
                            "org_unit": {"code": "2152019901", "name": "城关镇中心小学", "kind": "school"}}]

    started = client.post("/api/processes/student_intake/instances", headers=registrar,
                          json={"data": {"student": student_data()}})
    assert started.status_code == 201, started.text
    instance = started.json()
    assert instance["status"] == "running" and instance["subject"]["type"] == "student"
    student_id = instance["subject"]["id"]

    task = open_task_of(client, principal, instance["id"])
    assert set(task) >= {"id", "process_id", "task_id", "title", "role", "org_unit", "due_at", "status",
                         "instance_id", "subject"}
    assert (task["process_id"], task["task_id"], task["role"]) == ("student_intake", "review_intake",
                                                                    "school_principal")
    detail = client.get(f"/api/tasks/{task['id']}", headers=principal).json()
    assert set(detail["form"]["properties"]) == {"decision", "comment"}
    assert [a["decision"] for a in detail["actions"]] == ["approve", "return", "reject"]
    assert f"编号 {student_id}" in detail["instructions"] and detail["data"]["student_id"] == student_id

    assert client.post(f"/api/tasks/{task['id']}/claim", headers=principal).status_code == 200
    done = client.post(f"/api/tasks/{task['id']}/complete", headers=principal, json={"data": {"decision": "approve"}})
    assert done.status_code == 200, done.text

    confirm = open_task_of(client, reviewer, instance["id"])
    assert confirm["task_id"] == "confirm_intake"
    done = client.post(f"/api/tasks/{confirm['id']}/complete", headers=reviewer,
                       json={"data": {"decision": "approve", "comment": "确认入库"}})
    assert done.status_code == 200, done.text

    student = client.get(f"/api/students/{student_id}", headers=registrar).json()
    assert student["status"] == "active"
    assert student["enrolment_periods"] == [{"school_code": "2152019901", "from_month": "2023-09", "to_month": None}]
    found = client.get("/api/students", headers=reviewer, params={"q": "张小明"}).json()
    assert found["total"] >= 1 and student_id in [s["id"] for s in found["items"]]
    view = client.get(f"/api/instances/{instance['id']}", headers=registrar).json()
    assert view["status"] == "completed" and view["open_tasks"] == []
    assert [h["action"] for h in view["history"]][0] == "process.start"
    assert "student.activate" in [h["action"] for h in view["history"]]


def test_registrar_of_other_school_gets_404_for_student_task_and_instance(client: TestClient) -> None:
    registrar = token(client, "registrar1")
    other = token(client, "registrar2")
    instance = client.post("/api/processes/student_intake/instances", headers=registrar,
                           json={"data": {"student": student_data()}}).json()
    student_id = instance["subject"]["id"]
    for path in (f"/api/students/{student_id}", f"/api/instances/{instance['id']}"):
        response = client.get(path, headers=other)
        assert response.status_code == 404, path
        assert response.json()["code"] == "not_found"
        assert "张小明" not in response.text
    listed = client.get("/api/students", headers=other, params={"q": "张小明"}).json()
    assert student_id not in [s["id"] for s in listed["items"]]
    principal_task = open_task_of(client, token(client, "principal1"), instance["id"])
    response = client.post(f"/api/tasks/{principal_task['id']}/complete", headers=token(client, "principal2"),
                           json={"data": {"decision": "approve"}})
    assert response.status_code == 404


def test_id_numbers_are_masked_for_roles_that_may_not_see_them(client: TestClient) -> None:
    registrar = token(client, "registrar1")
    data = student_data()
    instance = client.post("/api/processes/student_intake/instances", headers=registrar,
                           json={"data": {"student": data}}).json()
    student_id = instance["subject"]["id"]
    assert client.get(f"/api/students/{student_id}", headers=registrar).json()["id_number"] == data["id_number"]
    masked = client.get(f"/api/students/{student_id}", headers=token(client, "township1")).json()["id_number"]
    assert masked != data["id_number"] and masked.startswith(data["id_number"][:6]) and "*" in masked


def test_code_table_lists_codes_with_chinese_labels(client: TestClient) -> None:
    response = client.get("/api/code-tables/sex", headers=token(client, "registrar1"))
    assert response.json()["items"] == [{"code": "1", "label": "男"}, {"code": "2", "label": "女"}]
    assert client.get("/api/code-tables/nope", headers=token(client, "registrar1")).status_code == 404


def test_healthz_and_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    paths = client.get("/api/openapi.json").json()["paths"]
    assert {"/api/auth/token", "/api/me", "/api/tasks", "/api/tasks/{task_id}/complete",
            "/api/processes/{process_id}/instances", "/api/students/{student_id}"} <= set(paths)


def test_registrar_of_school_two_enters_at_school_two(client: TestClient) -> None:
    response = client.post("/api/processes/student_intake/instances", headers=token(client, "registrar2"),
                           json={"data": {"student": student_data(school_code=SCHOOL_2, seq=311)}})
    assert response.status_code == 201, response.text
    assert response.json()["org_unit"]["code"] == SCHOOL_2


def test_validate_accepts_the_seed_process_and_names_elements_of_a_broken_one(client: TestClient) -> None:
    auth = token(client, "processadmin")
    bpmn = (Path(__file__).resolve().parents[2] / "processes" / "student_intake.bpmn").read_bytes()
    ok = client.post("/api/process-definitions/validate", headers=auth, content=bpmn)
    assert ok.status_code == 200 and ok.json()["valid"] is True, ok.text
    assert ok.json()["processes"][0]["id"] == "student_intake"
    broken = bpmn.replace(b'name="school_principal"', b'name="headmaster"')
    result = client.post("/api/process-definitions/validate", headers=auth, content=broken).json()
    assert result["valid"] is False and any(e["element_id"] for e in result["errors"])
    garbage = client.post("/api/process-definitions/validate", headers=auth, content=b"\x00not xml")
    assert garbage.status_code == 200 and garbage.json()["valid"] is False
