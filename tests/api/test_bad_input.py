"""Bad input gets a clear answer ({code, message, details}) and changes nothing."""

from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from itsdangerous import URLSafeTimedSerializer

from tests.api.conftest import token
from tests.factories import make_id_number, student_data

START = "/api/processes/student_intake/instances"


def students_total(client: TestClient, auth: dict[str, str]) -> int:
    return client.get("/api/students", headers=auth).json()["total"]


def assert_error(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message", "details"} and body["message"]
    return body


def test_malformed_json_is_422(client: TestClient) -> None:
    auth = token(client, "registrar1")
    before = students_total(client, auth)
    response = client.post(START, headers={**auth, "Content-Type": "application/json"}, content=b"{not json")
    assert_error(response, 422)
    assert students_total(client, auth) == before


@pytest.mark.parametrize("body, field", [
    ({"data": {"student": {**student_data(), "favourite_colour": "red"}}}, "student.favourite_colour"),
    ({"data": {"student": {**student_data(), "grade": "three"}}}, "student.grade"),
    ({"data": {"student": student_data(), "extra": 1}}, "extra"),
    ({"data": {}}, "student"),
    ({"data": {"student": {k: v for k, v in student_data().items() if k != "name"}}}, "student.name"),
])
def test_unknown_fields_and_wrong_types_name_the_field(client: TestClient, body: dict, field: str) -> None:
    auth = token(client, "registrar1")
    before = students_total(client, auth)
    details = assert_error(client.post(START, headers=auth, json=body), 422)["details"]
    assert field in [d["field"] for d in details], details
    assert students_total(client, auth) == before


def test_unknown_top_level_field_is_refused(client: TestClient) -> None:
    body = assert_error(client.post(START, headers=token(client, "registrar1"),
                                    json={"data": {"student": student_data()}, "oops": 1}), 422)
    assert "oops" in body["message"] or any("oops" in d["field"] for d in body["details"])


def test_bad_check_digit_is_refused_naming_id_number(client: TestClient) -> None:
    data = student_data()
    last = data["id_number"][-1]
    data["id_number"] = data["id_number"][:-1] + ("1" if last != "1" else "2")
    details = assert_error(client.post(START, headers=token(client, "registrar1"), json={"data": {"student": data}}),
                           422)["details"]
    assert [d for d in details if d["field"] == "id_number" and "校验" in d["message"]]


def test_id_number_born_in_the_future_is_refused(client: TestClient) -> None:
    future = date.today() + timedelta(days=40)
    data = student_data(birth=future)
    data["id_number"] = make_id_number(birth=future)
    details = assert_error(client.post(START, headers=token(client, "registrar1"), json={"data": {"student": data}}),
                           422)["details"]
    assert {"birth_date", "id_number"} & {d["field"] for d in details}


def test_unknown_task_and_process_are_404(client: TestClient) -> None:
    auth = token(client, "principal1")
    assert_error(client.post("/api/tasks/999999/complete", headers=auth, json={"data": {"decision": "approve"}}), 404)
    assert_error(client.get("/api/tasks/999999", headers=auth), 404)
    assert_error(client.post("/api/processes/no_such_process/instances", headers=token(client, "registrar1"),
                             json={"data": {}}), 404)


def test_already_completed_task_is_409(client: TestClient) -> None:
    instance = client.post(START, headers=token(client, "registrar1"), json={"data": {"student": student_data()}}).json()
    task_id = instance["open_tasks"][0]["id"]
    auth = token(client, "principal1")
    assert client.post(f"/api/tasks/{task_id}/complete", headers=auth, json={"data": {"decision": "approve"}}).status_code == 200
    assert_error(client.post(f"/api/tasks/{task_id}/complete", headers=auth, json={"data": {"decision": "approve"}}), 409)


def test_review_decision_outside_the_enum_is_422(client: TestClient) -> None:
    instance = client.post(START, headers=token(client, "registrar1"), json={"data": {"student": student_data()}}).json()
    task_id = instance["open_tasks"][0]["id"]
    details = assert_error(client.post(f"/api/tasks/{task_id}/complete", headers=token(client, "principal1"),
                                       json={"data": {"decision": "maybe"}}), 422)["details"]
    assert details[0]["field"] == "decision"


def test_forged_expired_and_missing_tokens_are_401(client: TestClient, settings) -> None:  # type: ignore[no-untyped-def]
    assert_error(client.get("/api/me"), 401)
    assert_error(client.get("/api/me", headers={"Authorization": "Bearer not-a-token"}), 401)
    forged = URLSafeTimedSerializer("someone-elses-secret", salt="mealroll.api-token").dumps({"uid": 1})
    assert_error(client.get("/api/me", headers={"Authorization": f"Bearer {forged}"}), 401)
    expired_settings = settings.model_copy(update={"token_max_age_seconds": -1})
    client.app.state.settings = expired_settings
    valid_but_old = token(client, "registrar1")
    assert_error(client.get("/api/me", headers=valid_but_old), 401)


def test_wrong_password_is_401(client: TestClient) -> None:
    assert_error(client.post("/api/auth/token", data={"username": "registrar1", "password": "wrong-password"}), 401)
    assert_error(client.post("/api/auth/token", data={"username": "nobody", "password": "wrong-password"}), 401)


@pytest.mark.parametrize("method, path", [
    ("get", "/api/students/14856636709638022200007957678129152"),
    ("get", "/api/instances/766538096698439368704"),
    ("post", "/api/tasks/9961882406640651538131845120/complete"),
    ("get", "/api/tasks?offset=47361976078567473152"),
    ("get", "/api/schools?offset=944337598421182971904"),
])
def test_numbers_too_large_for_a_row_id_are_refused_not_a_server_error(client: TestClient, method: str,
                                                                        path: str) -> None:
    # Found by schemathesis: SQLite and PostgreSQL integers overflowed into a 500.
    response = getattr(client, method)(path, headers=token(client, "reviewer"))
    assert_error(response, 422)
