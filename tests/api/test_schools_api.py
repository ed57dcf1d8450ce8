"""School records (Art. 11): scoped reads, county-only edits with history, and the student timeline."""

from fastapi.testclient import TestClient

from tests.api.conftest import token
from tests.factories import student_data


def test_schools_are_listed_within_the_callers_scope(client: TestClient) -> None:
    county = client.get("/api/schools", headers=token(client, "reviewer")).json()
    assert county["total"] == 4
    township = client.get("/api/schools", headers=token(client, "township1")).json()
    assert sorted(s["code"] for s in township["items"]) == ["2152019901", "2152019902"]
    own = client.get("/api/schools", headers=token(client, "registrar1")).json()
    assert [s["code"] for s in own["items"]] == ["2152019901"]
    record = own["items"][0]
    assert record["name"] == "城关镇中心小学" and record["school_type"] == "211" and record["subsidy_rate"] == "5.00"
    assert set(record) >= {"code", "name", "sponsor_type", "urban_rural", "school_type", "subsidy_rate",
                           "meal_model", "address", "postcode", "phone", "fax", "email", "website",
                           "principal_name", "principal_phone", "principal_mobile"}


def test_a_school_outside_the_scope_is_404(client: TestClient) -> None:
    response = client.get("/api/schools/2152019903", headers=token(client, "registrar1"))
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_county_admin_edits_a_school_and_the_history_shows_before_and_after(client: TestClient) -> None:
    admin = token(client, "admin")
    response = client.patch("/api/schools/2152019903", headers=admin, params={"reason": "换了校长"},
                            json={"principal_name": "李新", "principal_mobile": "13912345678", "meal_model": "4"})
    assert response.status_code == 200, response.text
    assert response.json()["principal_name"] == "李新" and response.json()["meal_model"] == "4"
    history = client.get("/api/schools/2152019903/history", headers=admin).json()["items"]
    change = history[-1]
    assert change["action"] == "school.update" and change["actor"] == "admin" and change["reason"] == "换了校长"
    assert change["before"] == {"principal_name": "校长3", "principal_mobile": "13800000003", "meal_model": "1"}
    assert change["after"] == {"principal_name": "李新", "principal_mobile": "13912345678", "meal_model": "4"}


def test_bad_school_values_are_refused_naming_each_field_and_change_nothing(client: TestClient) -> None:
    admin = token(client, "admin")
    response = client.patch("/api/schools/2152019901", headers=admin,
                            json={"postcode": "12", "meal_model": "9", "phone": "abc", "colour": "red"})
    assert response.status_code == 422
    assert {d["field"] for d in response.json()["details"]} == {"postcode", "meal_model", "phone", "colour"}
    assert client.get("/api/schools/2152019901", headers=admin).json()["postcode"] == "556000"
    code_change = client.patch("/api/schools/2152019901", headers=admin, json={"code": "2152019999"})
    assert code_change.status_code == 422


def test_only_the_county_admin_may_edit_a_school(client: TestClient) -> None:
    for username in ("registrar1", "principal1", "reviewer"):
        response = client.patch("/api/schools/2152019901", headers=token(client, username), json={"fax": ""})
        assert response.status_code == 403, username


def test_student_history_is_a_timeline_with_ids_masked_for_those_who_may_not_see_them(client: TestClient) -> None:
    registrar = token(client, "registrar1")
    data = student_data()
    instance = client.post("/api/processes/student_intake/instances", headers=registrar,
                           json={"data": {"student": data}}).json()
    student_id = instance["subject"]["id"]
    own = client.get(f"/api/students/{student_id}/history", headers=registrar).json()["items"]
    assert own[0]["action"] == "student.register" and own[0]["actor"] == "registrar1"
    assert own[0]["after"]["id_number"] == data["id_number"]
    masked = client.get(f"/api/students/{student_id}/history", headers=token(client, "township1")).json()["items"]
    assert masked[0]["after"]["id_number"] != data["id_number"] and "*" in masked[0]["after"]["id_number"]
    assert client.get(f"/api/students/{student_id}/history", headers=token(client, "registrar2")).status_code == 404


def admitted(client: TestClient) -> int:
    registrar, principal, reviewer = (token(client, u) for u in ("registrar1", "principal1", "reviewer"))
    instance = client.post("/api/processes/student_intake/instances", headers=registrar,
                           json={"data": {"student": student_data()}}).json()
    for auth in (principal, reviewer):
        task = [t for t in client.get("/api/tasks", headers=auth).json()["items"]
                if t["instance_id"] == instance["id"]][0]
        assert client.post(f"/api/tasks/{task['id']}/complete", headers=auth,
                           json={"data": {"decision": "approve"}}).status_code == 200
    return instance["subject"]["id"]


def test_patch_student_corrects_before_the_lock_and_refuses_process_fields(client: TestClient) -> None:
    student_id = admitted(client)
    registrar = token(client, "registrar1")
    shown = client.get(f"/api/students/{student_id}", headers=registrar).json()
    assert shown["key_fields_lock_date"] is not None
    response = client.patch(f"/api/students/{student_id}", headers=registrar, params={"reason": "录入笔误"},
                            json={"name": "张晓明", "class_name": "三年级（2）班"})
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "张晓明"
    refused = client.patch(f"/api/students/{student_id}", headers=registrar, json={"boarding_mode": "2"})
    assert refused.status_code == 409 and refused.json()["details"][0]["field"] == "boarding_mode"
    assert client.patch(f"/api/students/{student_id}", headers=token(client, "registrar2"),
                        json={"class_name": "x"}).status_code == 404


def test_county_policy_read_and_set_by_the_county_admin(client: TestClient) -> None:
    admin = token(client, "admin")
    assert client.get("/api/county-policy", headers=admin).json() == {"key_field_grace_days": 30,
                                                                      "key_field_lock_dates": {}}
    response = client.patch("/api/county-policy", headers=admin,
                            json={"key_field_lock_dates": {"2026": "2026-10-31"}})
    assert response.status_code == 200 and response.json()["key_field_lock_dates"] == {"2026": "2026-10-31"}
    assert client.patch("/api/county-policy", headers=token(client, "registrar1"),
                        json={"key_field_grace_days": 5}).status_code == 403
    bad = client.patch("/api/county-policy", headers=admin, json={"key_field_grace_days": "soon"})
    assert bad.status_code == 422 and bad.json()["details"][0]["field"] == "key_field_grace_days"


def jpeg(width: int = 295, height: int = 413) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 120, 80)).save(out, format="JPEG")
    return out.getvalue()


def test_registrar_uploads_a_photo_that_others_in_scope_can_view(client: TestClient) -> None:
    registrar = token(client, "registrar1")
    student_id = client.post("/api/processes/student_intake/instances", headers=registrar,
                             json={"data": {"student": student_data()}}).json()["subject"]["id"]
    assert client.get(f"/api/students/{student_id}/photo", headers=registrar).status_code == 404
    response = client.put(f"/api/students/{student_id}/photo", headers=registrar,
                          files={"photo": ("照片.png", jpeg(), "image/png")})
    assert response.status_code == 200, response.text
    full = client.get(f"/api/students/{student_id}/photo", headers=token(client, "reviewer"))
    thumb = client.get(f"/api/students/{student_id}/photo", params={"thumbnail": "true"}, headers=registrar)
    assert full.headers["content-type"] == "image/jpeg" and full.content[:3] == b"\xff\xd8\xff"
    assert len(thumb.content) < len(full.content)
    assert client.get(f"/api/students/{student_id}/photo", headers=token(client, "registrar2")).status_code == 404
    history = client.get(f"/api/students/{student_id}/history", headers=registrar).json()["items"]
    assert history[-1]["action"] == "student.photo"


def test_a_photo_that_is_not_an_image_is_refused_in_chinese(client: TestClient) -> None:
    registrar = token(client, "registrar1")
    student_id = client.post("/api/processes/student_intake/instances", headers=registrar,
                             json={"data": {"student": student_data()}}).json()["subject"]["id"]
    response = client.put(f"/api/students/{student_id}/photo", headers=registrar,
                          files={"photo": ("photo.jpg", b"%PDF-1.4 not a photo", "image/jpeg")})
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "photo" and "学生照片" in response.json()["message"]
    assert client.put(f"/api/students/{student_id}/photo", headers=token(client, "principal1"),
                      files={"photo": ("p.jpg", jpeg(), "image/jpeg")}).status_code == 403


def test_export_masks_ids_for_every_role_and_is_audited(client: TestClient, session) -> None:  # type: ignore[no-untyped-def]
    import io

    from openpyxl import load_workbook

    registrar = token(client, "registrar1")
    data = student_data(name="导出测试")
    client.post("/api/processes/student_intake/instances", headers=registrar, json={"data": {"student": data}})

    def id_cells(auth: dict[str, str]) -> list[str]:
        response = client.get("/api/students/export.xlsx", headers=auth, params={"q": "导出测试"})
        assert response.status_code == 200, response.text
        sheet = load_workbook(io.BytesIO(response.content)).active
        return [str(cell.value) for row in sheet.iter_rows() for cell in row
                if cell.value and str(cell.value).startswith("520102")]

    # Art. 24: a registrar reads full IDs on screen, but full data leaves only through a data release.
    for auth in (registrar, token(client, "township1")):
        masked = id_cells(auth)
        assert masked and masked[0] != data["id_number"] and "*" in masked[0]
    from sqlalchemy import select

    from registry.audit import AuditEntry

    exports = session.scalars(select(AuditEntry).where(AuditEntry.action == "student.export")).all()
    assert [(e.after["rows"], e.after["masked"]) for e in exports] == [(1, True), (1, True)]


def test_the_import_template_downloads_with_chinese_headers(client: TestClient) -> None:
    import io

    from openpyxl import load_workbook

    response = client.get("/api/students/template.xlsx", headers=token(client, "registrar1"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    headers = [cell.value for cell in next(load_workbook(io.BytesIO(response.content)).active.iter_rows(max_row=1))]
    assert "姓名*" in headers or any(str(h).startswith("姓名") for h in headers)
    assert any(str(h).startswith("身份证件号") for h in headers)
