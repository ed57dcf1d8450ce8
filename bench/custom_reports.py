"""Custom reports (registry/custom_reports.py `run`) for a 60k-student county's school year on SQLite.

    python bench/custom_reports.py [--students 60000] [--runs 10] [--seed 1]

Target (issue 7): grouped by school, ≤ 1 s on SQLite (my choice: the standard county report's 300 ms
budget plus the per-group sets; a user waits for it on a page). Also timed, without a target: by school and
month (each pupil in each month on roll: ~12 groups a pupil) and by township, grade and sex.

The database is bench/reports.py's: a throwaway SQLite file with the generated county, students bulk-loaded
with one enrolment period each, each school's record with its meal model, a county top-up from March and a
fifth of the county's students moved to another school from January. Each timed run is one request's work:
a new session, `find_user`, `ReportDefinition.parse` and `run(...).as_json()` as the county reviewer.
"""

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from generate import current_school_year  # noqa: E402
from intake import prepare  # noqa: E402
from reports import add_changes, add_schools  # noqa: E402
from search import REVIEWER, build_tree, create_actors, load_students, plan, throwaway_database  # noqa: E402

from registry import custom_reports  # noqa: E402
from registry.users import find_user  # noqa: E402

TARGET_MS = 1000.0
MEASURES = ["students_total", "beneficiaries", "subsidy_total", "boarding_allowance_total"]
CASES = {"by school": ["school"], "by school and month": ["school", "month"],
         "by township, grade and sex": ["township", "grade", "sex"]}


def one_run(sessions: sessionmaker[Session], year: int, dimensions: list[str]) -> tuple[float, dict]:
    t0 = time.perf_counter()
    with sessions() as session:
        user = find_user(session, username=REVIEWER)
        assert user is not None
        definition = custom_reports.ReportDefinition.parse({"dimensions": dimensions, "measures": MEASURES,
                                                           "year": year})
        body = custom_reports.run(session, actor=user, definition=definition).as_json()
    return time.perf_counter() - t0, body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=60_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: nproc {len(os.sched_getaffinity(0))}, Python {platform.python_version()}, load average {load};"
          f" database sqlite; N={args.students:,}; seed {args.seed}")
    p = plan(args.students, args.seed)
    year = current_school_year()
    results: dict[str, tuple[list[float], dict]] = {}
    with throwaway_database("sqlite", "") as url:
        engine, sessions = prepare(url)
        try:
            school_ids = build_tree(sessions, p.counties)
            add_schools(sessions, p.counties, school_ids)
            load_students(engine, url, p, school_ids)
            create_actors(sessions, p.actor_county)
            moved = add_changes(sessions, p.actor_county.code, year)
            print(f"county {p.actor_county.code}: {p.actor_county.student_count:,} students, "
                  f"{len(p.actor_county.schools)} schools; {moved:,} moved from January; school year {year}")
            for name, dimensions in CASES.items():
                _, body = one_run(sessions, year, dimensions)  # warm-up: the first query pays for the cold cache
                times = [one_run(sessions, year, dimensions)[0] * 1000 for _ in range(args.runs)]
                results[name] = (times, body)
        finally:
            engine.dispose()
    for name, (times, body) in results.items():
        totals = body["totals"]
        median, worst = statistics.median(times), max(times)
        verdict = f"(target ≤ {TARGET_MS:.0f} ms) → {'PASS' if median <= TARGET_MS else 'MISS'}" \
            if name == "by school" else "(no target)"
        print(f"{name}: {len(body['rows'])} rows, {totals['students_total']:,} students, "
              f"{totals['beneficiaries']:,} beneficiaries, subsidy {totals['subsidy_total']:,.2f} 元; "
              f"ms over {args.runs} runs: median {median:.0f}, max {worst:.0f}  {verdict}")


if __name__ == "__main__":
    main()
