"""Scans of paper forms attached to an instance: type sniffed by content, size limit, scoped download."""

from fastapi.testclient import TestClient

from tests.api.conftest import token
from tests.api.test_inbox_api import start
from tests.api.test_pages import csrf_of, login

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def test_attach_list_and_download(client: TestClient) -> None:
    started = start(client, 701)
    review_id = started["open_tasks"][0]["id"]
    principal = token(client, "principal1")
    added = client.post(f"/api/tasks/{review_id}/attachments", headers=principal,
                        files={"file": ("监护人申请表.pdf", PDF, "application/pdf")})
    assert added.status_code == 201, added.text
    body = added.json()
    assert (body["file_name"], body["content_type"], body["size"]) == ("监护人申请表.pdf", "application/pdf", len(PDF))
    listed = client.get(f"/api/instances/{started['id']}/attachments", headers=token(client, "reviewer")).json()
    assert [a["file_name"] for a in listed["items"]] == ["监护人申请表.pdf"]
    download = client.get(body["url"], headers=token(client, "registrar1"))
    assert download.status_code == 200 and download.content == PDF
    assert download.headers["x-content-type-options"] == "nosniff"
    assert client.get(body["url"], headers=token(client, "registrar2")).status_code == 404


def test_bad_attachments_are_refused(client: TestClient) -> None:
    review_id = start(client, 703)["open_tasks"][0]["id"]
    principal = token(client, "principal1")
    html = client.post(f"/api/tasks/{review_id}/attachments", headers=principal,
                       files={"file": ("scan.pdf", b"<html><script>alert(1)</script>", "application/pdf")})
    assert html.status_code == 422 and "PDF、JPEG 或 PNG" in html.json()["message"]
    empty = client.post(f"/api/tasks/{review_id}/attachments", headers=principal,
                        files={"file": ("scan.pdf", b"", "application/pdf")})
    assert empty.status_code == 422
    big = client.post(f"/api/tasks/{review_id}/attachments", headers=principal,
                      files={"file": ("scan.pdf", b"%PDF-" + b"0" * (10 * 1024 * 1024), "application/pdf")})
    assert big.status_code == 422 and "10 MB" in big.json()["message"]
    watcher = client.post(f"/api/tasks/{review_id}/attachments", headers=token(client, "reviewer"),
                          files={"file": ("scan.pdf", PDF, "application/pdf")})
    assert watcher.status_code == 403


def test_attach_on_the_task_page(client: TestClient) -> None:
    review_id = start(client, 705)["open_tasks"][0]["id"]
    login(client, "principal1")
    page = client.get(f"/tasks/{review_id}")
    assert "上传纸质材料扫描件" in page.text
    done = client.post(f"/tasks/{review_id}/attachments", data={"csrf_token": csrf_of(page.text)},
                       files={"file": ("申请表.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "image/png")},
                       follow_redirects=True)
    assert done.status_code == 200 and "申请表.png" in done.text
    bad = client.post(f"/tasks/{review_id}/attachments", data={"csrf_token": csrf_of(page.text)},
                      files={"file": ("a.docx", b"PK\x03\x04 word", "application/octet-stream")})
    assert bad.status_code == 422 and "PDF、JPEG 或 PNG" in bad.text
