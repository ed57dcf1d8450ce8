"""Issue 8's last gaps through HTTP: a failing script after a completion answers 200 with a Chinese
notice (API and page), a process made from the template is started by its first lane's role, and the
inbox leaves out the tasks of a suspended instance."""

from fastapi.testclient import TestClient

from tests.api.conftest import token
from tests.api.test_pages import csrf_of, login, logout
from tests.registry.test_process_operations import START_FORM, from_template


def deploy(client: TestClient, bpmn: bytes, *, process_id: str | None = None, forms: dict | None = None) -> dict:
    url = f"/api/processes/{process_id}/versions" if process_id else "/api/processes"
    response = client.post(url, headers=token(client, "processadmin"),
                           json={"bpmn": bpmn.decode(), "note": "测试", "forms": forms or {}})
    assert response.status_code == 201, response.text
    return response.json()


def start(client: TestClient, process_id: str, username: str = "reviewer", **body: object) -> dict:
    response = client.post(f"/api/processes/{process_id}/instances", headers=token(client, username),
                           json={"data": {}, **body})
    assert response.status_code == 201, response.text
    return response.json()


def test_failing_script_after_a_completion_answers_200_with_a_chinese_notice_and_retry_finishes(
        client: TestClient) -> None:
    deploy(client, from_template("api_failing", script="result = 1 / 0"))
    started = start(client, "api_failing")
    (task,) = started["open_tasks"]
    reviewer, admin = token(client, "reviewer"), token(client, "processadmin")

    response = client.post(f"/api/tasks/{task['id']}/complete", headers=reviewer,
                           json={"data": {"decision": "approve", "comment": "同意"}})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "completed"
    (notice,) = response.json()["warnings"]
    assert notice["code"] == "next_step_failed" and "计算结果" in notice["message"] and "流程管理员" in notice["message"]
    instance = client.get(f"/api/instances/{started['id']}", headers=reviewer).json()
    assert instance["status"] == "error"
    assert [h["action"] for h in instance["history"]][-2:] == ["task.complete", "process.error"]

    listed = client.get("/api/instances?status=error&process_id=api_failing", headers=admin).json()["items"]
    assert listed[0]["error"]["element_id"] == "compute" and listed[0]["error"]["element_name"] == "计算结果"
    bell = client.get("/api/notifications", headers=admin)
    assert bell.status_code == 200 and "计算结果" in bell.text
    login(client, "processadmin")
    page = client.get(f"/processes/instances/{started['id']}")
    assert "出错环节：compute（计算结果）" in page.text and "办理人的提交已保存" in page.text

    fixed = deploy(client, from_template("api_failing", script="result = 1"), process_id="api_failing")
    moved = client.post("/api/processes/api_failing/migration", headers=admin,
                        json={"to_version": fixed["version"], "instance_ids": [started["id"]]})
    assert moved.status_code == 200 and moved.json()["movable"] == 1, moved.text
    retried = client.post(f"/api/instances/{started['id']}/retry", headers=admin)
    assert retried.status_code == 200 and retried.json()["status"] == "completed", retried.text


def test_the_task_page_says_the_step_was_recorded_and_the_next_one_failed(client: TestClient) -> None:
    deploy(client, from_template("page_failing", script="result = 1 / 0"))
    (task,) = start(client, "page_failing")["open_tasks"]
    login(client, "reviewer")
    page = client.get(f"/tasks/{task['id']}")
    response = client.post(f"/tasks/{task['id']}", data={"csrf_token": csrf_of(page.text), "decision": "approve"},
                           follow_redirects=True)
    assert response.status_code == 200
    assert "您的办理已记录" in response.text and "计算结果" in response.text and "已通知流程管理员" in response.text
    assert "任务已提交。" not in response.text
    # The next, unrelated completion is a plain success again.
    deploy(client, from_template("page_fine"))
    (other,) = start(client, "page_fine")["open_tasks"]
    page = client.get(f"/tasks/{other['id']}")
    response = client.post(f"/tasks/{other['id']}", data={"csrf_token": csrf_of(page.text), "decision": "approve"},
                           follow_redirects=True)
    assert "任务已提交。" in response.text and "您的办理已记录" not in response.text


def test_a_template_process_is_started_by_its_lane_role_and_refused_to_others(client: TestClient) -> None:
    deploy(client, from_template("api_generic"))
    refused = client.post("/api/processes/api_generic/instances", headers=token(client, "registrar1"),
                          json={"data": {}})
    assert refused.status_code == 403 and "县营养办审核员" in refused.json()["message"]
    extra = client.post("/api/processes/api_generic/instances", headers=token(client, "reviewer"),
                        json={"data": {"x": 1}})
    assert extra.status_code == 422 and extra.json()["details"][0]["field"] == "data"

    login(client, "processadmin")
    listed = client.get("/processes").text
    assert "由县营养办审核员在“发起流程”页面发起" in listed and listed.count('class="meta starting-rule"') == 1
    started = start(client, "api_generic")
    assert started["status"] == "running" and started["org_unit"]["code"] == "520199"
    reviewer = token(client, "reviewer")
    inbox = client.get("/api/tasks?tab=to_claim&process_id=api_generic", headers=reviewer).json()
    (task,) = [t for t in inbox["items"] if t["instance_id"] == started["id"]]
    done = client.post(f"/api/tasks/{task['id']}/complete", headers=reviewer, json={"data": {"decision": "approve"}})
    assert done.status_code == 200 and done.json()["warnings"] == []
    assert client.get(f"/api/instances/{started['id']}", headers=reviewer).json()["status"] == "completed"


def test_start_form_errors_name_the_field(client: TestClient) -> None:
    deploy(client, from_template("api_form", start_form="api_start_form"), forms={"api_start_form": START_FORM})
    response = client.post("/api/processes/api_form/instances", headers=token(client, "reviewer"),
                           json={"data": {}})
    assert response.status_code == 422 and "事项标题" in response.json()["message"]
    assert response.json()["details"][0]["field"] == "title"
    assert start(client, "api_form", data={"title": "食堂检查"})["status"] == "running"


def test_the_start_page_lists_what_the_user_may_start_and_starts_it(client: TestClient) -> None:
    deploy(client, from_template("page_generic", start_form="page_start_form"), forms={"page_start_form": START_FORM})
    login(client, "registrar1")
    assert "page_generic" not in client.get("/start").text
    logout(client)

    login(client, "reviewer")
    home = client.get("/")
    assert 'href="/start"' in home.text
    page = client.get("/start")
    assert page.status_code == 200 and 'action="/start/page_generic"' in page.text and "事项标题" in page.text
    bad = client.post("/start/page_generic", data={"csrf_token": csrf_of(page.text), "org_unit": "520199"})
    assert bad.status_code == 422 and "事项标题" in bad.text
    response = client.post("/start/page_generic", data={"csrf_token": csrf_of(page.text), "org_unit": "520199",
                                                        "title": "食堂检查"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/instances/")
    tasks = client.get("/tasks?tab=to_claim&process_id=page_generic")
    assert "审核" in tasks.text and "共 1 项" in tasks.text


def test_a_suspended_instances_task_leaves_the_inbox_with_a_note(client: TestClient) -> None:
    deploy(client, from_template("page_held"))
    started = start(client, "page_held")
    admin = token(client, "processadmin")
    assert client.post(f"/api/instances/{started['id']}/suspend", headers=admin,
                       json={"reason": "核查"}).status_code == 200
    reviewer = token(client, "reviewer")
    listed = client.get("/api/tasks?tab=to_claim&process_id=page_held", headers=reviewer).json()
    assert listed["total"] == 0 and listed["counts"]["to_claim"] == 0
    login(client, "reviewer")
    page = client.get("/tasks?tab=to_claim&process_id=page_held")
    assert "另有 1 项任务所属流程已暂停或出错" in page.text
    assert client.post(f"/api/instances/{started['id']}/resume", headers=admin, json={}).status_code == 200
    assert client.get("/api/tasks?tab=to_claim&process_id=page_held", headers=reviewer).json()["total"] == 1
