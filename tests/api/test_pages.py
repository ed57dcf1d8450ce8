"""The minimal pages: login with CSRF, the inbox, the task page and new-student intake, in Chinese."""

import re

from fastapi.testclient import TestClient

from tests.conftest import DEMO_PASSWORD
from tests.factories import student_data

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, html[:500]
    return match.group(1)


def login(client: TestClient, username: str) -> None:
    page = client.get("/login")
    assert page.status_code == 200 and 'name="username"' in page.text and 'name="password"' in page.text
    response = client.post("/login", data={"username": username, "password": DEMO_PASSWORD,
                                           "csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert response.status_code == 303, response.text


def logout(client: TestClient) -> None:
    page = client.get("/")
    client.post("/logout", data={"csrf_token": csrf_of(page.text)})
    client.cookies.clear()


def student_form(data: dict, csrf: str) -> dict[str, str]:
    form = {f"student.{k}": str(v) for k, v in data.items() if not isinstance(v, bool)}
    form["csrf_token"] = csrf
    return form


def test_pages_redirect_to_login_when_not_signed_in(client: TestClient) -> None:
    for path in ("/", "/tasks", "/students", "/students/new", "/schools", "/schools/2152019901"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login"), path


def test_login_without_csrf_token_is_refused(client: TestClient) -> None:
    client.get("/login")
    response = client.post("/login", data={"username": "registrar1", "password": DEMO_PASSWORD},
                           follow_redirects=False)
    assert response.status_code == 403
    assert "CSRF" in response.text
    assert client.get("/", follow_redirects=False).status_code == 303


def test_wrong_password_shows_a_chinese_message(client: TestClient) -> None:
    page = client.get("/login")
    response = client.post("/login", data={"username": "registrar1", "password": "nope-nope",
                                           "csrf_token": csrf_of(page.text)})
    assert response.status_code == 401 and "用户名或密码错误" in response.text


def test_intake_through_the_pages(client: TestClient) -> None:
    login(client, "registrar1")
    page = client.get("/students/new")
    assert page.status_code == 200 and "录入学生信息" in page.text and 'lang="zh-CN"' in page.text
    response = client.post("/students/new", data=student_form(student_data(), csrf_of(page.text)),
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    student_url = response.headers["location"].split("?")[0]
    logout(client)

    login(client, "principal1")
    inbox = client.get("/tasks")
    assert "校长审核" in inbox.text
    task_url = re.search(r'href="(/tasks/\d+)"', inbox.text).group(1)  # type: ignore[union-attr]
    task_page = client.get(task_url)
    assert "张小明" in task_page.text and "通过" in task_page.text and "退回修改" in task_page.text
    done = client.post(task_url, data={"decision": "approve", "csrf_token": csrf_of(task_page.text)},
                       follow_redirects=False)
    assert done.status_code == 303, done.text
    logout(client)

    login(client, "reviewer")
    inbox = client.get("/tasks")
    assert "确认入库" in inbox.text
    task_url = re.search(r'href="(/tasks/\d+)"', inbox.text).group(1)  # type: ignore[union-attr]
    task_page = client.get(task_url)
    # Returning without a reason: refused next to the field, the choice kept, in Chinese.
    refused = client.post(task_url, data={"decision": "return", "csrf_token": csrf_of(task_page.text)})
    assert refused.status_code == 422
    assert "审核意见" in refused.text or "comment" in refused.text
    assert 'value="return" checked' in refused.text
    done = client.post(task_url, data={"decision": "approve", "csrf_token": csrf_of(refused.text)},
                       follow_redirects=False)
    assert done.status_code == 303
    assert "在籍" in client.get(student_url).text


def test_invalid_student_form_comes_back_filled_with_errors_next_to_fields(client: TestClient) -> None:
    login(client, "registrar1")
    page = client.get("/students/new")
    data = student_data(name="王小红")
    data["id_number"] = data["id_number"][:-1] + ("1" if data["id_number"][-1] != "1" else "2")
    response = client.post("/students/new", data=student_form(data, csrf_of(page.text)))
    assert response.status_code == 422
    assert 'value="王小红"' in response.text
    assert re.search(r'f-student-id_number.*?class="error"[^>]*>[^<]*校验', response.text, re.S)


def test_task_form_posted_without_csrf_changes_nothing(client: TestClient) -> None:
    login(client, "registrar1")
    page = client.get("/students/new")
    client.post("/students/new", data=student_form(student_data(), csrf_of(page.text)))
    logout(client)
    login(client, "principal1")
    task_url = re.search(r'href="(/tasks/\d+)"', client.get("/tasks").text).group(1)  # type: ignore[union-attr]
    response = client.post(task_url, data={"decision": "approve"})
    assert response.status_code == 403
    assert "校长审核" in client.get("/tasks").text


def test_school_pages_show_the_record_and_its_history_in_chinese(client: TestClient) -> None:
    login(client, "township1")
    listing = client.get("/schools")
    assert listing.status_code == 200 and "城关镇中心小学" in listing.text and "新场乡中心小学" not in listing.text
    page = client.get("/schools/2152019901")
    assert "办学类型" in page.text and "211 小学" in page.text and "建立学校信息" in page.text
    assert client.get("/schools/2152019903").status_code == 404


def test_county_admin_edits_a_school_on_its_page_with_errors_beside_the_fields(client: TestClient) -> None:
    login(client, "admin")
    page = client.get("/schools/2152019902/edit")
    assert page.status_code == 200 and "修改学校信息" in page.text and 'value="0855-8880002"' in page.text
    form = {"csrf_token": csrf_of(page.text), "name": "城关镇第一中学", "postcode": "12345", "phone": "0855-8880002",
            "school_type": "311", "meal_model": "1", "subsidy_rate": "5.00", "reason": "核对"}
    refused = client.post("/schools/2152019902/edit", data=form)
    assert refused.status_code == 422 and "邮政编码：应为 6 位数字" in refused.text and 'value="12345"' in refused.text
    form["postcode"] = "556001"
    saved = client.post("/schools/2152019902/edit", data={**form, "csrf_token": csrf_of(refused.text)},
                        follow_redirects=False)
    assert saved.status_code == 303
    page = client.get("/schools/2152019902")
    assert "556001" in page.text and "556000 → 556001" in page.text and "核对" in page.text
    assert "演示县城关镇" in page.text  # fields the form did not send are kept


def test_school_edit_by_anyone_else_is_refused(client: TestClient) -> None:
    login(client, "reviewer")
    page = client.get("/schools/2152019902/edit")
    form = {"csrf_token": csrf_of(page.text), "name": "城关镇第一中学", "postcode": "556009"}
    assert client.post("/schools/2152019902/edit", data=form).status_code == 403
