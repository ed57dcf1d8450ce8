"""A county-wide data release (信息提供审批, Art. 24) of a generated county: the approval builds the file.

    python bench/data_release.py [--database sqlite|postgres] [--students 60000] [--fields all|few]
        [--postgres-url URL]

registry/data_releases.py builds the approved XLSX inside the approval's own transaction (the county
reviewer's click); this measures that step at county scale. It loads a throwaway database as
bench/search.py does (the generated county, students active), gives the county an aid-center officer
and a reviewer, files a request for the whole county (`--fields all`: the 28 contract fields with full
ID numbers, the worst case; `few`: name, sex, school, grade, class), and times the start (validation +
count) and the approval (query, write, store), then one download.
"""

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from search import build_tree, load_students, plan, prepare, throwaway_database  # noqa: E402

from registry import data_releases, workflows  # noqa: E402
from registry.db import unit_of_work  # noqa: E402
from registry.file_store import LocalFileStore  # noqa: E402
from registry.users import Role, create_user, find_user, grant_role  # noqa: E402
from registry.workflows import HumanTask, TaskStatus  # noqa: E402

FEW = ["name", "sex", "school_code", "grade", "class_name"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--students", type=int, default=60_000)
    parser.add_argument("--fields", choices=["all", "few"], default="all")
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/mealroll_bench_release")
    args = parser.parse_args()
    p = plan(args.students, 1)
    county = p.actor_county
    with throwaway_database(args.database, args.postgres_url) as url, tempfile.TemporaryDirectory() as files:
        engine, sessions = prepare(url)
        try:
            load_students(engine, url, p, build_tree(sessions, p.counties))
            with unit_of_work(sessions) as session:
                for username, role in (("bench_aid", Role.county_aid_center), ("bench_reviewer", Role.county_reviewer)):
                    made = create_user(session, username=username, display_name=username, password="bench-pass-2026")
                    grant_role(session, user=made, role=role, org_unit_code=county.code)
            fields = list(data_releases.RELEASABLE_FIELDS) if args.fields == "all" else FEW
            data = {"org_units": [county.code], "fields": fields, "full": ["id_number"] if args.fields == "all" else [],
                    "purpose": "县级基准测试统计", "recipient_department": "基准测试局", "recipient_person": "基准"}
            store = LocalFileStore(Path(files))
            t0 = time.perf_counter()
            with unit_of_work(sessions) as session:
                instance, _ = workflows.start_process(session, actor=find_user(session, username="bench_aid"),
                                                      process_id="data_release", data=data)
            started = time.perf_counter() - t0
            with unit_of_work(sessions) as session:
                task_id = session.query(HumanTask.id).filter(HumanTask.instance_id == instance.id,
                                                             HumanTask.status == TaskStatus.open).scalar()
            t0 = time.perf_counter()
            with unit_of_work(sessions) as session:
                workflows.complete_task(session, actor=find_user(session, username="bench_reviewer"), task_id=task_id,
                                        data={"decision": "approve"}, files=store)
            approved = time.perf_counter() - t0
            with unit_of_work(sessions) as session:
                release = data_releases.for_instance(session, instance_id=instance.id)
                assert release is not None
                t0 = time.perf_counter()
                _, blob = data_releases.download(session, actor=find_user(session, username="bench_aid"),
                                                 now=datetime.now(UTC), store=store, ip=None, user_agent=None,
                                                 release_id=release.id)
                downloaded = time.perf_counter() - t0
                rows = release.rows
            print(f"{args.database}, county {county.code} {county.name}: {rows:,} students × {len(fields)} fields"
                  f" ({'full ID numbers' if args.fields == 'all' else 'masked'}): start {started:.1f} s,"
                  f" approval (build + store) {approved:.1f} s, file {len(blob) / 2**20:.1f} MB,"
                  f" download {downloaded:.2f} s")
        finally:
            engine.dispose()


if __name__ == "__main__":
    main()
