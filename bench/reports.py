"""The Art. 12 county report for a school year, at county scale (SQLite) and province scale (PostgreSQL).

    python bench/reports.py [--database sqlite|postgres] [--students 60000] [--runs 10] [--seed 1]
        [--postgres-url URL]

Targets (issue 7): the county report for a school year ≤ 300 ms for a 60k-student county on SQLite,
≤ 1 s for one county inside a 4M-student province on PostgreSQL.

The database is built as bench/search.py builds it (a throwaway SQLite file or PostgreSQL database,
migrated and seeded, the generated county or province, students bulk-loaded as active with one
enrolment period each), plus each school's Art. 11 record with its generated meal model, and, so that
the report has something to explain, a county top-up from March (a rate change inside the year) and a
fifth of each county's students transferred to another school of their county from January (two
enrolment periods). Each timed report is one request's work: a new session, `find_user`, and
`reports.county_report(...).county_json()` as the county_reviewer of the largest county loaded whole.
"""

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session, sessionmaker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from generate import current_school_year  # noqa: E402
from intake import prepare  # noqa: E402
from search import REVIEWER, build_tree, create_actors, load_students, plan, throwaway_database  # noqa: E402

from registry import reports  # noqa: E402
from registry.db import unit_of_work  # noqa: E402
from registry.org_units import OrgUnit  # noqa: E402
from registry.schools import School  # noqa: E402
from registry.subsidy import SubsidyRate  # noqa: E402
from registry.users import find_user  # noqa: E402

TARGETS_MS = {"sqlite": 300.0, "postgresql": 1000.0}
SCHOOL_FIELDS = ("sponsor_type", "urban_rural", "school_type", "subsidy_rate", "meal_model")


def add_schools(sessions: sessionmaker[Session], counties, school_ids: dict[str, int]) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work(sessions) as session:
        rows = [{"org_unit_id": school_ids[s["code"]], **{f: s[f] or None for f in SCHOOL_FIELDS}}
                for county in counties for s in county.schools]
        session.execute(insert(School), rows)


def add_changes(sessions: sessionmaker[Session], county_code: str, year: int) -> int:
    """A top-up from March and every fifth student of the county moved to the next school from January."""
    january, before = f"{year + 1}-01", f"{year}-12"
    with unit_of_work(sessions) as session:
        county = session.scalars(select(OrgUnit).where(OrgUnit.code == county_code)).one()
        session.add(SubsidyRate(county_id=county.id, kind="topup", effective_month=f"{year + 1}-03",
                                per_day="1.00", days_per_year=200, note="bench"))
        schools = list(session.scalars(select(OrgUnit.id).where(OrgUnit.path.like(county.path + "%"),
                                                                OrgUnit.kind == "school").order_by(OrgUnit.id)))
        following = dict(zip(schools, schools[1:] + schools[:1], strict=True))
        ids = ",".join(map(str, schools))
        moved = session.execute(text(f"SELECT p.id, p.student_id, p.school_id FROM enrolment_period p "
                                     f"WHERE p.school_id IN ({ids}) AND p.student_id % 5 = 0")).all()
        session.execute(text("UPDATE enrolment_period SET to_month = :before WHERE id = :id"),
                        [{"before": before, "id": m.id} for m in moved])
        session.execute(text("INSERT INTO enrolment_period (student_id, school_id, from_month, grade, class_name, "
                             "boarding_mode, boarding_allowance, left_behind, migrant_child) SELECT :student, :school, "
                             ":january, grade, class_name, boarding_mode, boarding_allowance, left_behind, migrant_child "
                             "FROM student WHERE id = :student"),
                        [{"student": m.student_id, "school": following[m.school_id], "january": january}
                         for m in moved])
    return len(moved)


def one_report(sessions: sessionmaker[Session], year: int) -> tuple[float, dict, float]:
    """Wall time, the body, and this process's CPU time (which other work on the machine disturbs less)."""
    t0, c0 = time.perf_counter(), time.process_time()
    with sessions() as session:
        user = find_user(session, username=REVIEWER)
        assert user is not None
        body = reports.county_report(session, actor=user, year=year).county_json()
    return time.perf_counter() - t0, body, time.process_time() - c0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--students", type=int, default=60_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="print a pyinstrument profile of one report")
    parser.add_argument("--postgres-url",
                        default=f"postgresql+psycopg://postgres@127.0.0.1:5432/mealroll_bench_reports_{os.getpid()}")
    args = parser.parse_args()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: nproc {len(os.sched_getaffinity(0))}, Python {platform.python_version()}, load average {load};"
          f" database {args.database}; N={args.students:,}; seed {args.seed}")
    p = plan(args.students, args.seed)
    year = current_school_year()
    with throwaway_database(args.database, args.postgres_url) as url:
        engine, sessions = prepare(url)
        try:
            school_ids = build_tree(sessions, p.counties)
            add_schools(sessions, p.counties, school_ids)
            steps = load_students(engine, url, p, school_ids)
            print("load: " + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items()))
            create_actors(sessions, p.actor_county)
            moved = add_changes(sessions, p.actor_county.code, year)
            if engine.dialect.name == "postgresql":
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("ANALYZE enrolment_period"))
            print(f"county {p.actor_county.code} {p.actor_county.name}: {p.actor_county.student_count:,} students,"
                  f" {len(p.actor_county.schools)} schools; {moved:,} moved to another school from January;"
                  f" school year {year}")
            _, body, _ = one_report(sessions, year)  # warm-up: the first query pays for the cold cache
            runs = [one_report(sessions, year) for _ in range(args.runs)]
            times, cpu = [r[0] * 1000 for r in runs], [r[2] * 1000 for r in runs]
            if args.profile:
                from pyinstrument import Profiler

                with Profiler() as profiler:
                    one_report(sessions, year)
                profiler.print(show_all=False)
        finally:
            engine.dispose()
    totals = body["totals"]
    print(f"report: {totals['schools']} schools, {totals['students_total']:,} students, "
          f"{totals['beneficiaries']:,} beneficiaries, subsidy {totals['subsidy_total']:,.2f} 元, "
          f"一补 {totals['boarding_allowance_total']:,.2f} 元")
    target = TARGETS_MS[engine.dialect.name]
    median, worst = statistics.median(times), max(times)
    print(f"county report for a school year, ms over {args.runs} runs: median {median:.0f}, max {worst:.0f}"
          f"  (target ≤ {target:.0f} ms) → {'PASS' if median <= target else 'MISS'}")
    print(f"this process's CPU time, ms: median {statistics.median(cpu):.0f} (the database server's is not in it);"
          f" load average now {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
