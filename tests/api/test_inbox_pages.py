"""The inbox page: tabs with counts, filters in the URL, saved views, batch decisions with per-item results."""

import re
from urllib.parse import parse_qs, urlparse

from fastapi.testclient import TestClient

from tests.api.test_inbox_api import to_confirmation
from tests.api.test_pages import csrf_of, login


def test_tabs_filters_and_views(client: TestClient) -> None:
    to_confirmation(client, 601)
    login(client, "reviewer")
    page = client.get("/tasks?tab=to_claim&process_id=student_intake&overdue=1&sort=created")
    assert page.status_code == 200
    for label in ("我的任务", "待认领", "我已办", "辖区全部待办"):
        assert label in page.text
    assert re.search(r'aria-current="page">待认领 <span class="count">\d+</span>', page.text)
    assert 'name="overdue" value="1" checked' in page.text and '<option value="created" selected>' in page.text

    saved = client.post("/tasks/views", data={"name": "逾期录入", "csrf_token": csrf_of(page.text),
                                               "query": "tab=to_claim&process_id=student_intake&overdue=1"},
                        follow_redirects=False)
    assert saved.status_code == 303
    link = saved.headers["location"]
    assert parse_qs(urlparse(link).query)["view"]
    opened = client.get(link)
    assert "任务：逾期录入" in opened.text and 'name="overdue" value="1" checked' in opened.text

    login(client, "principal1")  # the same link opens for a colleague, on their own tasks
    assert client.get(link).status_code == 200

    junk = client.get("/tasks?tab=scope&sort=evil&page=abc")  # a principal has no scope tab: falls back
    assert junk.status_code == 200 and 'aria-current="page">待认领' in junk.text


def test_batch_confirmation_on_the_page(client: TestClient) -> None:
    ids = [to_confirmation(client, seq) for seq in (603, 605)]
    login(client, "reviewer")
    page = client.get("/tasks?tab=to_claim&process_id=student_intake")
    assert "批量办理所选的“确认入库”" in page.text
    for task_id in ids:
        assert f'name="task_{task_id}"' in page.text

    refused = client.post("/tasks/batch?tab=to_claim&process_id=student_intake",
                          data={"csrf_token": csrf_of(page.text), "decision": "return",
                                **{f"task_{i}": str(i) for i in ids}})
    assert refused.status_code == 409 and "全部未提交" in refused.text and "审核意见" in refused.text

    done = client.post("/tasks/batch?tab=to_claim&process_id=student_intake",
                       data={"csrf_token": csrf_of(page.text), "decision": "approve",
                             **{f"task_{i}": str(i) for i in ids}})
    assert done.status_code == 200 and "已办理 2 项：通过" in done.text
    for task_id in ids:
        assert f'name="task_{task_id}"' not in done.text

    nothing = client.post("/tasks/batch", data={"csrf_token": csrf_of(page.text), "decision": "approve"})
    assert nothing.status_code == 422 and "请至少选择一项任务" in nothing.text
    forged = client.post("/tasks/batch", data={"csrf_token": "x", "decision": "approve", f"task_{ids[0]}": "1"})
    assert forged.status_code == 403


def test_no_batch_form_where_a_step_asks_more_than_a_decision(client: TestClient) -> None:
    login(client, "registrar1")
    page = client.get("/tasks?tab=done")
    assert "批量办理" not in page.text


def test_task_page_claim_unclaim_reassign_and_draft(client: TestClient) -> None:
    from tests.api.conftest import token
    from tests.api.test_inbox_api import start

    review_id = start(client, 611)["open_tasks"][0]["id"]
    client.put(f"/api/tasks/{review_id}/draft", headers=token(client, "principal1"),
               json={"data": {"decision": "return", "comment": "家长电话缺一位"}})
    login(client, "principal1")
    page = client.get(f"/tasks/{review_id}")
    assert "已恢复" in page.text and "家长电话缺一位" in page.text
    assert 'value="return" checked' in page.text
    claimed = client.post(f"/tasks/{review_id}/claim", data={"csrf_token": csrf_of(page.text)}, follow_redirects=True)
    assert "放弃认领" in claimed.text and "办理中" in claimed.text
    released = client.post(f"/tasks/{review_id}/unclaim", data={"csrf_token": csrf_of(claimed.text)},
                           follow_redirects=True)
    assert "尚未认领" in released.text
    assert "转派给他人" in released.text and "principal1" in released.text
    moved = client.post(f"/tasks/{review_id}/reassign", data={"csrf_token": csrf_of(released.text),
                                                              "username": "principal1", "reason": "本人办理"},
                        follow_redirects=True)
    assert "已转派给" in moved.text
    wrong = client.post(f"/tasks/{review_id}/reassign", data={"csrf_token": csrf_of(released.text),
                                                              "username": "registrar1"})
    assert wrong.status_code == 422 and "不能办理此任务" in wrong.text

    login(client, "reviewer")  # the county sees the school's step but has no form
    watched = client.get(f"/tasks/{review_id}")
    assert watched.status_code == 200 and "您可以查看进度" in watched.text and 'id="task-form"' not in watched.text


def test_home_shows_counts_and_next_deadlines(client: TestClient) -> None:
    from tests.api.test_inbox_api import start

    start(client, 613)  # the principal's review is due in 3 days (P3D)
    login(client, "principal1")
    home = client.get("/")
    assert home.status_code == 200 and "项待认领" in home.text and "近期截止" in home.text
    assert re.search(r"<strong>\d{4}年\d+月\d+日</strong>：\d+ 项任务到期", home.text)


def test_the_duplicate_resolution_page_shows_the_other_record(client: TestClient) -> None:
    from tests.api.test_inbox_api import start

    start(client, 615)
    twin = start(client, 615, username="registrar2", school="2152019902")
    [resolve] = twin["open_tasks"]
    assert resolve["task_id"] == "resolve_duplicate"
    login(client, "reviewer")
    page = client.get(f"/tasks/{resolve['id']}")
    assert "县内同一证件号的其他学籍" in page.text and "接口615" in page.text and "待审核" in page.text
    assert "含有数字或拉丁字母" in page.text  # the name's warning, shown beside the decision
