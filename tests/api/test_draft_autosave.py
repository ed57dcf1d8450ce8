"""The task page saves drafts the way api/static/drafts.js does: the session cookie plus the page's
CSRF token in X-CSRF-Token. Without the token a cookie-borne write is refused."""

import re
from datetime import date

from fastapi.testclient import TestClient

from tests.api.conftest import token
from tests.api.test_pages import csrf_of, login, logout
from tests.factories import student_data


def review_task(client: TestClient, seq: int) -> int:
    response = client.post("/api/processes/student_intake/instances", headers=token(client, "registrar1"),
                           json={"data": {"student": student_data(seq=seq, birth=date(2014, 12, 3),
                                                                  name=f"草稿{seq}")}})
    assert response.status_code == 201, response.text
    return response.json()["open_tasks"][0]["id"]


def test_page_script_saves_a_draft_with_the_pages_csrf_token(client: TestClient) -> None:
    task_id = review_task(client, 611)
    login(client, "principal1")
    page = client.get(f"/tasks/{task_id}")
    form = re.search(r'<form [^>]*id="task-form"[^>]*>', page.text).group(0)  # type: ignore[union-attr]
    draft_url = re.search(r'data-draft-url="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    assert draft_url == f"/api/tasks/{task_id}/draft" and 'data-timezone="Asia/Shanghai"' in form
    assert re.search(r'<script src="/static/drafts\.js\?v=[0-9a-f]{12}" defer>', page.text)
    assert 'id="draft-status"' in page.text and 'aria-live="polite"' in page.text

    body = {"data": {"decision": "return", "comment": "照片不清楚"}}
    refused = client.put(draft_url, json=body)
    assert refused.status_code == 403 and "CSRF" in refused.json()["message"]
    forged = client.put(draft_url, json=body, headers={"X-CSRF-Token": "not-the-token"})
    assert forged.status_code == 403
    saved = client.put(draft_url, json=body, headers={"X-CSRF-Token": csrf_of(page.text)})
    assert saved.status_code == 200, saved.text
    assert saved.json()["saved_at"].endswith("+00:00")  # the script shows it in the county's zone

    logout(client)
    login(client, "principal1")  # another session: another device
    again = client.get(f"/tasks/{task_id}").text
    assert "照片不清楚</textarea>" in again and "已恢复" in again
    assert re.search(r'value="return"\s+checked', again)


def test_no_draft_script_where_the_reader_may_not_act(client: TestClient) -> None:
    task_id = review_task(client, 613)
    login(client, "reviewer")  # the county sees the school's step but does not act on it
    page = client.get(f"/tasks/{task_id}")
    assert page.status_code == 200
    assert "drafts.js" not in page.text and 'id="task-form"' not in page.text
    assert "diagram.js" in page.text
