"""A real worker with beat takes an uploaded student list off the database and checks it."""

from pathlib import Path

from registry import imports
from registry.db import unit_of_work
from registry.file_store import LocalFileStore
from registry.imports import BatchStatus, ImportBatch
from tests.factories import SCHOOL_1, user
from tests.registry.test_imports import pupil, xlsx
from tests.workers.conftest import wait_until


def status_of(sessions, batch_id: int) -> str:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return session.get(ImportBatch, batch_id).status


def test_worker_checks_a_queued_upload(committed_sessions, start_worker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = LocalFileStore(tmp_path / "var" / "files")  # the worker's MEALROLL_DATA_DIR is tmp_path/var
    with unit_of_work(committed_sessions) as session:
        batch, _ = imports.upload(session, actor=user(session, "registrar1"), school_code=SCHOOL_1,
                                  file_name="名单.xlsx", data=xlsx([pupil(951), pupil(953), pupil(955, sex="9")]),
                                  store=store)
        batch_id = batch.id

    _, log = start_worker()
    wait_until(lambda: status_of(committed_sessions, batch_id) == BatchStatus.validated,
               what="the upload checked by the worker", log=log)
    with committed_sessions() as session:
        checked = session.get(ImportBatch, batch_id)
        assert (checked.rows_total, checked.rows_done) == (3, 3)
        assert checked.counts["new"] == 2 and checked.counts["invalid"] == 1
    assert "could not be checked" not in log.read_text(errors="replace")
