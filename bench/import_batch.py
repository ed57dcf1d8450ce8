"""Time a school's whole upload through batch_intake (target: check and stage 60k rows from XLSX ≤ 30 s).

    .venv/bin/python bench/import_batch.py [--rows 60000] [--database sqlite|postgres|both] [--postgres-url URL]

On a throwaway database (migrated, processes deployed, demo county seeded) it generates an XLSX of
N valid students at one school (bench/import_rows.py's generator), then times what a registrar
and the county wait for: `imports.upload`, `imports.check_batch` (read, validate, county-wide
duplicate check, stage every row, build and store the row report), then the principal's approval
and the county's confirmation that inserts N active students with enrolment periods and history.
A real county loads 35k–60k students across its schools; one school of 60k is the worst case.
"""

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import psycopg
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from import_rows import generate  # noqa: E402
from intake import prepare  # noqa: E402

from registry import imports, workflows  # noqa: E402
from registry.db import unit_of_work  # noqa: E402
from registry.file_store import LocalFileStore  # noqa: E402
from registry.students import Student  # noqa: E402
from registry.users import find_user  # noqa: E402
from registry.workflows import HumanTask, TaskStatus  # noqa: E402

TARGET_SECONDS = 30.0
SCHOOL = "2152019901"  # 演示县第一小学 of the demo county


@contextmanager
def throwaway(kind: str, pg_url: str) -> Iterator[tuple[str, Path]]:
    with tempfile.TemporaryDirectory(prefix="mealroll-bench-") as tmp:
        if kind == "sqlite":
            yield f"sqlite:///{tmp}/bench.db", Path(tmp)
            return
        target = make_url(pg_url)
        admin = dict(host=target.host, port=target.port or 5432, user=target.username, password=target.password,
                     dbname="postgres")
        with psycopg.connect(**admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{target.database}"')  # fails if it exists: never drop someone's data
        try:
            yield target.render_as_string(hide_password=False), Path(tmp)
        finally:
            with psycopg.connect(**admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')


def run(kind: str, data: bytes, pg_url: str) -> dict[str, float]:
    with throwaway(kind, pg_url) as (url, folder):
        engine, sessions = prepare(url)
        store = LocalFileStore(folder / "files")
        timings: dict[str, float] = {}
        try:
            started = time.perf_counter()
            with unit_of_work(sessions) as session:
                registrar = find_user(session, username="registrar1")
                batch, _ = imports.upload(session, actor=registrar, school_code=SCHOOL, file_name="bench.xlsx",
                                          data=data, store=store)
                imports.claim(session, batch_id=batch.id, now=batch.created_at)
            timings["upload"] = time.perf_counter() - started

            started = time.perf_counter()
            imports.check_batch(sessions, batch.id, store=store, today=date.today())
            timings["check and stage"] = time.perf_counter() - started

            with unit_of_work(sessions) as session:
                checked = session.get(imports.ImportBatch, batch.id)
                counts = dict(checked.counts)
                instance, _ = workflows.start_process(session, actor=find_user(session, username="registrar1"),
                                                      process_id="batch_intake", data={"batch_id": batch.id})
                review = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id,
                                                                 HumanTask.status == TaskStatus.open)).one()
                workflows.complete_task(session, actor=find_user(session, username="principal1"), task_id=review.id,
                                        data={"decision": "approve"})
                confirm = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id,
                                                                  HumanTask.status == TaskStatus.open)).one()
            started = time.perf_counter()
            with unit_of_work(sessions) as session:
                workflows.complete_task(session, actor=find_user(session, username="reviewer"), task_id=confirm.id,
                                        data={"decision": "approve"})
            timings["county confirms (insert)"] = time.perf_counter() - started
            with sessions() as session:
                active = session.scalar(select(func.count()).select_from(Student).where(Student.status == "active"))
            print(f"  {kind}: rows by outcome after the check {counts}; active students after confirmation {active}")
        finally:
            engine.dispose()
        return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--postgres-url",
                        default=f"postgresql+psycopg://postgres@127.0.0.1:5432/mealroll_bench_{os.getpid()}")
    args = parser.parse_args()
    print(f"machine: nproc {os.cpu_count()}, Python {platform.python_version()}, "
          f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}; rows {args.rows}")
    started = time.perf_counter()
    data = generate(args.rows, args.seed, date.today(), school=SCHOOL)
    print(f"generate XLSX: {time.perf_counter() - started:.1f} s, {len(data) / 1e6:.1f} MB")
    kinds = ("sqlite", "postgres") if args.database == "both" else (args.database,)
    for kind in kinds:
        timings = run(kind, data, args.postgres_url)
        for step, seconds in timings.items():
            print(f"  {kind:8} {step:26} {seconds:6.1f} s")
        staged = timings["check and stage"] + timings["upload"]
        verdict = "PASS" if staged <= TARGET_SECONDS else "MISS"
        print(f"  {kind:8} upload + check and stage: {staged:.1f} s (target ≤ {TARGET_SECONDS:.0f} s) {verdict}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of this process (generator included): {peak:.0f} MB")


if __name__ == "__main__":
    main()
