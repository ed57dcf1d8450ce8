"""The roster pages through HTTP: the print-styled page, the PDF, and who gets neither."""

import io
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from registry.access import mask_id_number
from registry.settings import Settings
from tests.api.test_pages import login
from tests.factories import SCHOOL_1, admit

BIRTH = date(2015, 12, 19)  # this file's own birth date: ID numbers no other test makes


@pytest.fixture
def pupil(session: Session) -> dict[str, str]:
    student = admit(session, now=datetime(2025, 9, 20, 2, 0, tzinfo=UTC), seq=611, birth=BIRTH, name="花名册甲",
                    grade=5, class_name="五年级（2）班", enrolled_month="2025-09")
    session.commit()
    return {"name": student.name, "id_number": student.id_number}


def test_registrar_sees_the_print_page_with_names_and_masked_ids(client: TestClient, pupil: dict[str, str]) -> None:
    login(client, "registrar1")
    page = client.get(f"/schools/{SCHOOL_1}/roster", params={"year": 2025, "month": 10})
    assert page.status_code == 200, page.text
    assert "受益学生花名册" in page.text and "城关镇中心小学" in page.text and "2025–2026 学年" in page.text
    assert pupil["name"] in page.text and "五年级（2）班" in page.text
    assert mask_id_number(pupil["id_number"]) in page.text and pupil["id_number"] not in page.text
    assert "@page" in page.text and "landscape" in page.text and "<thead>" in page.text
    assert f'/schools/{SCHOOL_1}/roster.pdf?year=2025&amp;month=10' in page.text
    assert 'onclick="window.print()"' in page.text


def test_the_class_filter_is_a_get_form(client: TestClient, pupil: dict[str, str]) -> None:
    login(client, "registrar1")
    page = client.get(f"/schools/{SCHOOL_1}/roster", params={"year": 2025, "class": "四年级（1）班"})
    assert page.status_code == 200 and pupil["name"] not in page.text and "本月没有受益学生" in page.text
    page = client.get(f"/schools/{SCHOOL_1}/roster", params={"year": 2025, "class": "五年级（2）班"})
    assert pupil["name"] in page.text and '<option value="五年级（2）班" selected>' in page.text


def test_registrar_of_other_school_gets_404(client: TestClient, pupil: dict[str, str]) -> None:
    login(client, "registrar2")
    for path in (f"/schools/{SCHOOL_1}/roster", f"/schools/{SCHOOL_1}/roster.pdf"):
        response = client.get(path, params={"year": 2025})
        assert response.status_code == 404 and pupil["name"] not in response.text


def test_process_admin_gets_403(client: TestClient) -> None:
    login(client, "processadmin")
    assert client.get(f"/schools/{SCHOOL_1}/roster").status_code == 403


def test_the_pdf_has_a_chinese_file_name_and_the_students(client: TestClient, pupil: dict[str, str]) -> None:
    login(client, "registrar1")
    response = client.get(f"/schools/{SCHOOL_1}/roster.pdf", params={"year": 2025, "month": 9})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    disposition = response.headers["content-disposition"]
    assert f"filename*=UTF-8''{quote('受益学生花名册-城关镇中心小学-2025年9月.pdf')}" in disposition
    assert 'filename="roster-2152019901-2025-09.pdf"' in disposition
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    assert pupil["name"] in text and mask_id_number(pupil["id_number"]) in text


@pytest.fixture
def fontless_client(tmp_path: Path, sessions: sessionmaker[Session]) -> Iterator[TestClient]:
    settings = Settings(env="test", data_dir=tmp_path, secret_key="test-secret-key-not-for-production",
                        pdf_font=str(tmp_path / "no-such-font.ttc"))
    with TestClient(create_app(settings, sessions), raise_server_exceptions=False) as c:
        yield c


def test_without_a_font_the_pdf_says_so_and_the_page_still_prints(fontless_client: TestClient,
                                                                  pupil: dict[str, str]) -> None:
    login(fontless_client, "registrar1")
    response = fontless_client.get(f"/schools/{SCHOOL_1}/roster.pdf", params={"year": 2025})
    assert response.status_code == 503 and "没有可用的中文字体" in response.text and "网页版" in response.text
    page = fontless_client.get(f"/schools/{SCHOOL_1}/roster", params={"year": 2025})
    assert page.status_code == 200 and pupil["name"] in page.text
