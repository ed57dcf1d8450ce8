"""Every form field on the main pages has a name a screen reader can say, and focus is visible."""

import re
from html.parser import HTMLParser
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import workflows
from registry.workflows import HumanTask, ProcessInstance, TaskStatus
from tests.api.test_pages import login, logout
from tests.factories import SCHOOL_1, admit, student_data, user

UNNAMED_TYPES = {"hidden", "submit", "button", "reset", "image"}
APP_CSS = Path(__file__).resolve().parents[2] / "api" / "static" / "app.css"


class FieldNames(HTMLParser):
    """Collects the form fields that have no label: no <label for=id>, not inside a <label>, no aria-label."""

    def __init__(self) -> None:
        super().__init__()
        self.label_depth = 0
        self.labelled_ids: set[str] = set()
        self.candidates: list[tuple[str | None, str]] = []  # (id, how it reads) of fields not named otherwise

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "label":
            self.label_depth += 1
            if a.get("for"):
                self.labelled_ids.add(a["for"] or "")
        if tag not in ("input", "select", "textarea"):
            return
        if tag == "input" and (a.get("type") or "text").lower() in UNNAMED_TYPES:
            return
        if self.label_depth or (a.get("aria-label") or "").strip() or (a.get("aria-labelledby") or "").strip():
            return
        self.candidates.append((a.get("id"), f"<{tag} {' '.join(f'{k}={v!r}' for k, v in attrs)}>"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "label" and self.label_depth:
            self.label_depth -= 1

    def unnamed(self) -> list[str]:
        return [shown for field_id, shown in self.candidates if not field_id or field_id not in self.labelled_ids]


def unnamed_fields(html: str) -> list[str]:
    parser = FieldNames()
    parser.feed(html)
    parser.close()
    return parser.unnamed()


def test_the_checker_tells_named_fields_from_unnamed_ones() -> None:
    html = ('<label for="a">A</label><input id="a"><label>B <select name="b"></select></label>'
            '<input aria-label="C"><input type="hidden" name="d"><button type="submit">E</button>'
            '<input id="f"><textarea name="g"></textarea><input type="checkbox" name="h"><label for="i">I</label>')
    unnamed = unnamed_fields(html)
    assert len(unnamed) == 3 and "'f'" in unnamed[0] and "'g'" in unnamed[1] and "'h'" in unnamed[2]


def open_intake_task(session: Session, seq: int, *, approved_by: tuple[str, ...] = ()) -> HumanTask:
    """An intake waiting at the step after `approved_by`."""
    instance, _ = workflows.start_process(session, actor=user(session, "registrar1"), process_id="student_intake",
                                          data={"student": student_data(seq=seq, name="无障碍测试生")})
    for username in (*approved_by, None):
        task = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id,
                                                       HumanTask.status == TaskStatus.open)).one()
        if username:
            workflows.complete_task(session, actor=user(session, username), task_id=task.id,
                                    data={"decision": "approve"})
    session.commit()
    return task


def test_every_form_field_on_the_main_pages_has_a_label(client: TestClient, session: Session) -> None:
    student = admit(session, seq=731)
    instance_id = session.scalars(select(ProcessInstance.id).where(ProcessInstance.subject_type == "student",
                                                                   ProcessInstance.subject_id == student.id)).one()
    review = open_intake_task(session, 733)
    confirm = open_intake_task(session, 735, approved_by=("principal1",))
    pages = {
        None: ["/login"],
        "registrar1": ["/", "/tasks", "/tasks?tab=done", "/students", "/students/new", f"/students/{student.id}",
                       f"/students/{student.id}/edit", f"/students/{student.id}/transfer",
                       f"/students/{student.id}/status-change",
                       f"/students/{student.id}/key-field-change", "/graduations", "/transfers/new",
                       "/transfers/new/into-county", "/imports", "/schools", f"/schools/{SCHOOL_1}",
                       f"/instances/{instance_id}", f"/instances/{instance_id}/sheet",
                       f"/instances/{review.instance_id}"],
        "principal1": ["/tasks", f"/tasks/{review.id}"],
        "reviewer": ["/tasks", f"/tasks/{confirm.id}", f"/students/{student.id}", "/students", "/reports",
                     f"/reports?school={SCHOOL_1}", "/reports/students?figure=beneficiaries", "/dashboard",
                     f"/students/{student.id}/subsidy"],
        "admin": [f"/schools/{SCHOOL_1}/edit"],
    }
    found: dict[str, list[str]] = {}
    for username, paths in pages.items():
        if username:
            login(client, username)
        for path in paths:
            response = client.get(path)
            assert response.status_code == 200, f"{username} {path}: {response.status_code}"
            if unnamed := unnamed_fields(response.text):
                found[f"{username} {path}"] = unnamed
        if username:
            logout(client)
    assert not found, found


def test_keyboard_focus_is_visible() -> None:
    css = APP_CSS.read_text(encoding="utf-8")
    assert re.search(r":focus-visible\s*\{[^}]*outline:\s*[1-9]", css)
    assert not re.search(r"outline:\s*(none|0)\b", css), "an outline removed: keyboard users lose their place"
