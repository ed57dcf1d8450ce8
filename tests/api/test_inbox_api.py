"""The inbox through the JSON API: tabs and counts, batch decisions, reassignment, drafts, views, withdrawal."""

from datetime import date

from fastapi.testclient import TestClient

from tests.api.conftest import token
from tests.factories import SCHOOL_2, student_data


def start(client: TestClient, seq: int, username: str = "registrar1", school: str = "2152019901") -> dict:
    response = client.post("/api/processes/student_intake/instances", headers=token(client, username),
                           json={"data": {"student": student_data(seq=seq, birth=date(2015, 11, 3), school_code=school,
                                                                  name=f"接口{seq}")}})
    assert response.status_code == 201, response.text
    return response.json()


def approve(client: TestClient, username: str, task_id: int, **extra: str) -> None:
    response = client.post(f"/api/tasks/{task_id}/complete", headers=token(client, username),
                           json={"data": {"decision": "approve", **extra}})
    assert response.status_code == 200, response.text


def to_confirmation(client: TestClient, seq: int) -> int:
    started = start(client, seq)
    approve(client, "principal1", started["open_tasks"][0]["id"])
    instance = client.get(f"/api/instances/{started['id']}", headers=token(client, "reviewer")).json()
    return instance["open_tasks"][0]["id"]


def test_tabs_with_counts(client: TestClient) -> None:
    started = start(client, 501)
    review_id = started["open_tasks"][0]["id"]
    principal = token(client, "principal1")
    listed = client.get("/api/tasks?tab=to_claim", headers=principal).json()
    assert review_id in [t["id"] for t in listed["items"]]
    assert set(listed["counts"]) == {"mine", "to_claim", "done"} and listed["counts"]["to_claim"] == listed["total"]
    client.post(f"/api/tasks/{review_id}/claim", headers=principal)
    mine = client.get("/api/tasks?tab=mine", headers=principal).json()
    assert review_id in [t["id"] for t in mine["items"]] and mine["counts"]["mine"] == mine["total"]
    scope = client.get("/api/tasks?tab=scope&school_code=2152019901", headers=token(client, "reviewer")).json()
    assert review_id in [t["id"] for t in scope["items"]] and "scope" in scope["counts"]
    assert client.get("/api/tasks?tab=bogus", headers=principal).status_code == 422


def test_county_sees_but_does_not_act_on_a_schools_step(client: TestClient) -> None:
    review_id = start(client, 503)["open_tasks"][0]["id"]
    reviewer = token(client, "reviewer")
    assert client.get(f"/api/tasks/{review_id}", headers=reviewer).status_code == 200
    claim = client.post(f"/api/tasks/{review_id}/claim", headers=reviewer)
    assert claim.status_code == 403 and "只能查看" in claim.json()["message"]
    done = client.post(f"/api/tasks/{review_id}/complete", headers=reviewer, json={"data": {"decision": "approve"}})
    assert done.status_code == 404
    assert client.get(f"/api/tasks/{review_id}", headers=token(client, "registrar2")).status_code == 404


def test_batch_complete_all_or_nothing(client: TestClient) -> None:
    reviewer = token(client, "reviewer")
    ids = [to_confirmation(client, seq) for seq in (505, 507)]
    done = client.post("/api/tasks/batch-complete", headers=reviewer,
                       json={"task_ids": ids, "data": {"decision": "approve"}})
    assert done.status_code == 200, done.text
    assert [i["ok"] for i in done.json()["items"]] == [True, True]
    for task_id in ids:
        assert client.get(f"/api/tasks/{task_id}", headers=reviewer).json()["status"] == "completed"

    more = [to_confirmation(client, seq) for seq in (509, 511)]
    refused = client.post("/api/tasks/batch-complete", headers=reviewer,
                          json={"task_ids": more, "data": {"decision": "return"}})
    assert refused.status_code == 409 and refused.json()["code"] == "batch_failed"
    assert all(not i["ok"] and "审核意见" in i["message"] for i in refused.json()["details"])
    for task_id in more:
        assert client.get(f"/api/tasks/{task_id}", headers=reviewer).json()["status"] == "open"
    empty = client.post("/api/tasks/batch-complete", headers=reviewer, json={"task_ids": [], "data": {}})
    assert empty.status_code == 422


def test_reassign_draft_and_withdraw(client: TestClient) -> None:
    review_id = start(client, 513, username="registrar2", school=SCHOOL_2)["open_tasks"][0]["id"]
    principal = token(client, "principal2")
    saved = client.put(f"/api/tasks/{review_id}/draft", headers=principal,
                       json={"data": {"decision": "return", "comment": "照片不清"}})
    assert saved.status_code == 200
    task = client.get(f"/api/tasks/{review_id}", headers=principal).json()
    assert task["draft"] == {"decision": "return", "comment": "照片不清"} and task["may_reassign"] is True
    assert client.put(f"/api/tasks/{review_id}/draft", headers=token(client, "reviewer"),
                      json={"data": {"comment": "x"}}).status_code == 403

    wrong = client.post(f"/api/tasks/{review_id}/reassign", headers=principal, json={"username": "registrar2"})
    assert wrong.status_code == 422 and wrong.json()["details"][0]["field"] == "to_username"

    started = start(client, 515)
    registrar = token(client, "registrar1")
    withdrawn = client.post(f"/api/instances/{started['id']}/withdraw", headers=registrar, json={"reason": "录错学校"})
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    again = client.post(f"/api/instances/{started['id']}/withdraw", headers=registrar, json={"reason": "录错学校"})
    assert again.status_code == 409
    assert client.post(f"/api/instances/{started['id']}/withdraw", headers=registrar, json={}).status_code == 422


def test_saved_views(client: TestClient) -> None:
    reviewer = token(client, "reviewer")
    created = client.post("/api/views", headers=reviewer,
                          json={"name": "本周到期", "query": "?tab=to_claim&due_this_week=1&sort=created"})
    assert created.status_code == 201
    view = created.json()
    assert view["url"] == f"/tasks?view={view['id']}" and "due_this_week=1" in view["query"]
    assert [v["name"] for v in client.get("/api/views", headers=reviewer).json()["items"]] == ["本周到期"]
    assert client.delete(f"/api/views/{view['id']}", headers=token(client, "principal1")).status_code == 403
    assert client.delete(f"/api/views/{view['id']}", headers=reviewer).status_code == 204
    assert client.post("/api/views", headers=reviewer, json={"name": ""}).status_code == 422
