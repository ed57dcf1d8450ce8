"""Fast on a slow link: each page is at most 100 KB of HTML (all CSS and JavaScript are separate,
fingerprinted, cached files), and nothing is loaded from outside the server (county networks are
often closed)."""

import re
from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import workflows
from registry.workflows import HumanTask, TaskStatus
from tests.api.test_pages import login
from tests.factories import student_data, user

BUDGET = 100 * 1024
# A full inbox page (100 rows) and a full student list page (50 rows) are the heaviest pages.
FILLER = 100
ASSET = re.compile(r'<script\b[^>]*\bsrc="([^"]*)"|<link\b[^>]*\brel="stylesheet"[^>]*\bhref="([^"]*)"')
FINGERPRINTED = re.compile(r"/static/[\w./-]+\?v=[0-9a-f]{12}")


def fill_inbox(session: Session) -> tuple[int, int]:
    registrar = user(session, "registrar1")
    for seq in range(1, FILLER + 1):
        workflows.start_process(session, actor=registrar, process_id="student_intake", data={
            "student": student_data(seq=seq, birth=date(2014, 12, 4), name=f"页面{seq}", address="某某乡某某村" * 5)})
    session.commit()
    task = session.scalars(select(HumanTask).where(HumanTask.status == TaskStatus.open,
                                                   HumanTask.task_id == "review_intake")
                           .order_by(HumanTask.id.desc())).first()
    assert task is not None and task.instance.subject_id is not None
    return task.id, task.instance.subject_id


def test_main_pages_fit_the_budget_and_load_nothing_from_outside(client: TestClient, session: Session) -> None:
    task_id, student_id = fill_inbox(session)
    login(client, "principal1")
    sizes = {}
    for path in ("/", "/tasks", f"/tasks/{task_id}", "/students", f"/students/{student_id}", "/schools",
                 "/imports", "/reports", "/dashboard", f"/students/{student_id}/subsidy"):
        response = client.get(path)
        assert response.status_code == 200, path
        html = response.text
        sizes[path] = len(response.content)
        assert len(response.content) < BUDGET, (path, len(response.content))
        assets = [src or href for src, href in ASSET.findall(html)]
        assert assets, path
        for url in assets:
            assert FINGERPRINTED.fullmatch(url), (path, url)  # ours, and cached for a year
        assert "bpmn-viewer" not in " ".join(assets), path  # the diagram viewer loads only when a diagram is opened
        assert not re.search(r"""(src|href)=["'](https?:)?//""", html), path
    assert sizes["/tasks"] > 20_000, sizes  # the inbox really was full
