"""Student search and the county duplicate check, at county scale (SQLite) and province scale (PostgreSQL).

    python bench/search.py [--database sqlite|postgres] [--students 60000] [--queries 500] [--seed 1]
        [--repeat 1] [--postgres-url URL] [--explain] [--keep]

Targets (issue 3): student search p95 ≤ 50 ms with 60k students on SQLite and 4M on PostgreSQL;
duplicate check of one ID ≤ 5 ms at 4M.

Makes a throwaway database (a SQLite file, or the PostgreSQL database `mealroll_bench_search_<pid>`,
which it creates and drops), migrates it, deploys the processes and seeds the demo county as the app
does, then builds the generated county (≤ 100k students: one county of bench/generate.py) or the
province (more: the counties of `iter_province`, in order, until N students) as org units
county → township → school with `create_org_unit`, and bulk-loads the students as active, confirmed
records with one enrolment period each, as `students.activate` leaves them: PostgreSQL COPY, one
COPY per county (streamed: constant memory at any N), SQLite executemany in one transaction. Then
ANALYZE (PostgreSQL: VACUUM ANALYZE, which autovacuum would do soon after a bulk load).

It searches as a county_reviewer of one county (at county scale the generated 普定县 520422; at
province scale the largest county loaded whole) and as the school_registrar of that county's
largest school: the worst cases of a county-wide and of a school-wide search. Each timed query is one
request's work: a new session, loading the user with grants (`find_user`), `student_lists.search`
(count + page of ids + rows + enrolment periods). Kinds: surname alone (one character: thousands of
matches county-wide), name prefix (surname + first given character), full name, ID number, 学籍号,
school + grade, school + grade + class, and the unfiltered first page. The registrar's scope is one
school, so their names match anywhere in the name; the reviewer's match by prefix. Query kinds and
users are interleaved in a seeded random order. Then `students.check_duplicates` for random students
of the whole database, each in its own session.

With --repeat N it does all of it N times, each on a fresh database with the same queries, and
judges the target on the median over the runs of each p95.

With --explain (or for every kind that misses the target) it prints each statement of one
representative query with its time and plan (EXPLAIN ANALYZE on PostgreSQL, EXPLAIN QUERY PLAN on
SQLite).
"""

import argparse
import itertools
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import unicodedata
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from generate import DEFAULT_COUNTY, County, iter_province, plan_county  # noqa: E402
from intake import prepare  # noqa: E402  (migrate, deploy, seed: as the intake benchmark does)

from registry import student_lists, students  # noqa: E402
from registry.db import unit_of_work  # noqa: E402
from registry.org_units import OrgKind, OrgUnit, create_org_unit  # noqa: E402
from registry.students import STUDENT_FIELDS, Student  # noqa: E402
from registry.users import Role, create_user, find_user, grant_role  # noqa: E402

TARGET_SEARCH_MS = 50.0
TARGET_DUPLICATE_MS = 5.0
COUNTY_SCALE_MAX = 100_000  # above this, --students loads province counties
WARMUP = 5  # untimed queries per kind and user
REVIEWER, REGISTRAR = "bench_reviewer", "bench_registrar"
COLUMNS = ("id", "school_id", "status", *STUDENT_FIELDS, "created_at", "confirmed_at")
KINDS = ("surname", "name prefix", "full name", "ID number", "学籍号", "school+grade", "school+grade+class",
         "first page, no filter")


@contextmanager
def throwaway_database(kind: str, pg_url: str, *, keep: bool = False) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="mealroll-bench-") as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    target = make_url(pg_url)
    admin = pg_connect_args(target, dbname="postgres")
    with psycopg.connect(**admin, autocommit=True) as conn:
        # CREATE fails if the database exists: never benchmark into (and then drop) someone's data.
        conn.execute(f'CREATE DATABASE "{target.database}"')
    try:
        yield target.render_as_string(hide_password=False)
    finally:
        if not keep:
            with psycopg.connect(**admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
        else:
            print(f"\nkept: {target.database} (drop with: psql -h {target.host} -U {target.username} "
                  f"-c 'DROP DATABASE \"{target.database}\"')")


def pg_connect_args(url: Any, dbname: str | None = None) -> dict[str, Any]:
    return dict(host=url.host, port=url.port or 5432, user=url.username, password=url.password,
                dbname=dbname or url.database)


@dataclass
class Plan:
    counties: list[County]
    take: list[int]  # students loaded per county (the last one may be cut short to make N)
    actor_county: County


def plan(n: int, seed: int) -> Plan:
    if n <= COUNTY_SCALE_MAX:
        county = plan_county(seed, students=n, county_code=DEFAULT_COUNTY)
        return Plan([county], [n], county)
    counties: list[County] = []
    take: list[int] = []
    left = n
    for county in iter_province(seed):
        if left <= 0:
            break
        counties.append(county)
        take.append(min(left, county.student_count))
        left -= take[-1]
    if left > 0:
        raise SystemExit(f"the province has only {n - left:,} students; ask for at most that many")
    # The largest county loaded whole: the county-wide searches' worst case.
    whole = [c for c, k in zip(counties, take, strict=True) if k == c.student_count] or counties
    return Plan(counties, take, max(whole, key=lambda c: c.student_count))


def build_tree(sessions: sessionmaker[Session], counties: list[County]) -> dict[str, int]:
    """County → townships → schools through the service; returns school code → org unit id."""
    school_ids: dict[str, int] = {}
    with unit_of_work(sessions) as session:
        for county in counties:
            top = create_org_unit(session, code=county.code, name=county.name, kind=OrgKind.county)
            towns = {name: create_org_unit(session, code=f"{county.code}{i:03d}", name=name,
                                           kind=OrgKind.township, parent=top)
                     for i, name in enumerate(county.townships, start=1)}
            for school in county.schools:
                unit = create_org_unit(session, code=school["code"], name=school["name"], kind=OrgKind.school,
                                       parent=towns[school["township"]])
                school_ids[school["code"]] = unit.id
    return school_ids


def student_rows(county: County, take: int, school_ids: dict[str, int], first_id: int,
                 stamp: Any) -> Iterator[tuple[Any, ...]]:
    for i, row in enumerate(county.iter_students()):
        if i >= take:
            return
        yield (first_id + i, school_ids[row["school_code"]], "active",
               *(row[f] for f in STUDENT_FIELDS), stamp, stamp)


def load_students(engine: Engine, url: str, p: Plan, school_ids: dict[str, int]) -> dict[str, float]:
    """Bulk insert; returns seconds per step."""
    now = datetime.now(UTC).replace(microsecond=0)
    # The value exactly as the model stores it (naive UTC; on SQLite SQLAlchemy's text format).
    stamp = Student.__table__.c.confirmed_at.type.bind_processor(engine.dialect)(now)
    if stamp is None or isinstance(stamp, datetime):
        stamp = now.replace(tzinfo=None)
    times: dict[str, float] = {}
    total = sum(p.take)
    t0 = time.perf_counter()
    next_id = 1
    if engine.dialect.name == "postgresql":
        copy_sql = f"COPY student ({', '.join(COLUMNS)}) FROM STDIN"
        with psycopg.connect(**pg_connect_args(make_url(url))) as conn:
            for county, take in zip(p.counties, p.take, strict=True):
                with conn.cursor() as cur, cur.copy(copy_sql) as copy:
                    for row in student_rows(county, take, school_ids, next_id, stamp):
                        copy.write_row(row)
                conn.commit()  # one COPY and commit per county: constant memory, visible progress
                next_id += take
                progress(next_id - 1, total, t0, county)
            times["students"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            conn.execute("SELECT setval(pg_get_serial_sequence('student', 'id'), %s)", (next_id - 1,))
            conn.execute("INSERT INTO enrolment_period (student_id, school_id, from_month, grade, class_name, boarding_mode, "
                                 "boarding_allowance, left_behind, migrant_child) "
                         "SELECT id, school_id, enrolled_month, grade, class_name, boarding_mode, boarding_allowance, "
                                 "left_behind, migrant_child "
                                 "FROM student WHERE status = 'active'")
            conn.commit()
            times["enrolment periods (INSERT … SELECT)"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        with psycopg.connect(**pg_connect_args(make_url(url)), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        times["VACUUM ANALYZE"] = time.perf_counter() - t1
    else:
        insert_sql = f"INSERT INTO student ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
        with engine.begin() as conn:  # one transaction
            for county, take in zip(p.counties, p.take, strict=True):
                rows = student_rows(county, take, school_ids, next_id, stamp)
                while chunk := list(itertools.islice(rows, 20_000)):
                    conn.exec_driver_sql(insert_sql, chunk)
                next_id += take
                progress(next_id - 1, total, t0, county)
            times["students"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            conn.exec_driver_sql("INSERT INTO enrolment_period (student_id, school_id, from_month, grade, class_name, boarding_mode, "
                                 "boarding_allowance, left_behind, migrant_child) "
                                 "SELECT id, school_id, enrolled_month, grade, class_name, boarding_mode, boarding_allowance, "
                                 "left_behind, migrant_child "
                                 "FROM student WHERE status = 'active'")
            times["enrolment periods (INSERT … SELECT)"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        times["ANALYZE"] = time.perf_counter() - t1
    return times


def progress(done: int, total: int, t0: float, county: County) -> None:
    if total > COUNTY_SCALE_MAX:
        elapsed = time.perf_counter() - t0
        print(f"  {done:>10,} / {total:,} students, {elapsed:6.0f} s, {done / elapsed:,.0f} rows/s"
              f"  ({county.code} {county.name})", file=sys.stderr, flush=True)


def create_actors(sessions: sessionmaker[Session], county: County) -> str:
    """A county reviewer of the actors' county and the registrar of its largest school; returns that school's code."""
    with unit_of_work(sessions) as session:
        top = session.scalars(select(OrgUnit).where(OrgUnit.code == county.code)).one()
        school = session.execute(
            select(OrgUnit.code).join(Student, Student.school_id == OrgUnit.id)
            .where(OrgUnit.path.startswith(top.path)).group_by(OrgUnit.code)
            .order_by(func.count().desc(), OrgUnit.code).limit(1)).scalar_one()
        reviewer = create_user(session, username=REVIEWER, display_name="审核员（基准）", password="bench-pass-2026")
        grant_role(session, user=reviewer, role=Role.county_reviewer, org_unit_code=county.code)
        registrar = create_user(session, username=REGISTRAR, display_name="学籍管理员（基准）",
                                password="bench-pass-2026")
        grant_role(session, user=registrar, role=Role.school_registrar, org_unit_code=school)
    return school


def sample_students(sessions: sessionmaker[Session], prefix: str, k: int, rng: random.Random) -> list[Any]:
    """k random students whose school lies under the org-unit path `prefix`."""
    with sessions() as session:
        ids = session.scalars(select(Student.id).join(OrgUnit, Student.school_id == OrgUnit.id)
                              .where(OrgUnit.path.startswith(prefix)).order_by(Student.id)).all()
        chosen = rng.sample(ids, min(k, len(ids)))
        rows = []
        for start in range(0, len(chosen), 500):
            rows += session.execute(
                select(Student.name, Student.id_number, Student.student_number, Student.grade, Student.class_name,
                       OrgUnit.code.label("school_code"))
                .join(OrgUnit, Student.school_id == OrgUnit.id)
                .where(Student.id.in_(chosen[start:start + 500]))).all()
        rng.shuffle(rows)
        return rows


def query_params(kind: str, s: Any) -> dict[str, Any]:
    return {
        "surname": {"q": s.name[:1]},
        "name prefix": {"q": s.name[:2]},
        "full name": {"q": s.name},
        "ID number": {"q": s.id_number},
        "学籍号": {"q": s.student_number},
        "school+grade": {"school_code": s.school_code, "grade": s.grade},
        "school+grade+class": {"school_code": s.school_code, "grade": s.grade, "class_name": s.class_name},
        "first page, no filter": {},
    }[kind]


def one_search(sessions: sessionmaker[Session], username: str, params: dict[str, Any]) -> tuple[float, int, int]:
    t0 = time.perf_counter()
    with sessions() as session:
        actor = find_user(session, username=username)
        rows, total = student_lists.search(session, actor=actor, limit=50, **params)
    return time.perf_counter() - t0, len(rows), total


def run_searches(sessions: sessionmaker[Session], county_path: str, school_code: str, school_path: str,
                 queries: int, rng: random.Random) -> tuple[dict[tuple[str, str], list[float]], dict[tuple[str, str], Any]]:
    per_user = max(1, queries // 2)
    pools = {REVIEWER: sample_students(sessions, county_path, per_user + WARMUP, rng),
             REGISTRAR: sample_students(sessions, school_path, per_user + WARMUP, rng)}
    plan_: list[tuple[str, str, dict[str, Any], bool]] = []
    for user, pool in pools.items():
        for kind in KINDS:
            for i in range(per_user + WARMUP):
                s = pool[i % len(pool)]
                plan_.append((kind, user, query_params(kind, s), i < WARMUP))
    warm = [x for x in plan_ if x[3]]
    timed = [x for x in plan_ if not x[3]]
    rng.shuffle(timed)
    times: dict[tuple[str, str], list[float]] = defaultdict(list)
    example: dict[tuple[str, str], Any] = {}
    for kind, user, params, _ in warm:
        one_search(sessions, user, params)
        example.setdefault((kind, user), params)
    for kind, user, params, _ in timed:
        seconds, n_rows, total = one_search(sessions, user, params)
        # A search for a student that exists must find them: otherwise the timing means nothing.
        if kind != "first page, no filter" and total == 0:
            raise SystemExit(f"{kind} as {user} found nothing for {params}")
        times[(kind, user)].append(seconds)
    return times, example


def run_duplicate_checks(sessions: sessionmaker[Session], n_students: int, queries: int,
                         rng: random.Random) -> tuple[list[float], int]:
    ids = [rng.randint(1, n_students) for _ in range(queries + WARMUP)]
    times, conflicts = [], 0
    for i, student_id in enumerate(ids):
        t0 = time.perf_counter()
        with sessions() as session:
            result = students.check_duplicates(session, student_id=student_id)
        if i >= WARMUP:
            times.append(time.perf_counter() - t0)
            conflicts += result["conflict"]
    return times, conflicts


def explain(engine: Engine, sessions: sessionmaker[Session], username: str, params: dict[str, Any]) -> None:
    captured: list[list[Any]] = []

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        captured.append([statement, parameters, None])

    event.listen(engine, "before_cursor_execute", before)
    try:
        one_search(sessions, username, params)
    finally:
        event.remove(engine, "before_cursor_execute", before)
    pg = engine.dialect.name == "postgresql"
    with engine.connect() as conn:
        for statement, parameters, _ in captured:
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            runs = []
            for _ in range(3):  # executed and fetched on its own: what this statement costs
                t0 = time.perf_counter()
                conn.exec_driver_sql(statement, parameters).fetchall()
                runs.append(time.perf_counter() - t0)
            print(f"\n  -- {1000 * statistics.median(runs):.1f} ms (median of 3, execute + fetch)\n  "
                  + " ".join(statement.split()) + f"\n  -- parameters: {parameters}")
            prefix = "EXPLAIN (ANALYZE, BUFFERS) " if pg else "EXPLAIN QUERY PLAN "
            for row in conn.exec_driver_sql(prefix + statement, parameters):
                print("    " + (row[0] if pg else f"{row[-1]}  (id {row[0]}, parent {row[1]})"))


def ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def line(label: str, values: list[float]) -> str:
    pad = 44 - sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in label)
    return (f"{label}{' ' * pad} p50 {ms(values, .5):7.1f}  p95 {ms(values, .95):7.1f}  max {ms(values, 1):7.1f}"
            f"  (n={len(values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--students", type=int, default=60_000,
                        help=f"students to load (default 60000; above {COUNTY_SCALE_MAX:,}: province counties)")
    parser.add_argument("--queries", type=int, default=500,
                        help="timed searches per query kind, half as each user; and duplicate checks (default 500)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs, each on a fresh database with the same queries; the target is judged on the"
                             " median over the runs of each p95")
    parser.add_argument("--postgres-url",
                        default=f"postgresql+psycopg://postgres@127.0.0.1:5432/mealroll_bench_search_{os.getpid()}",
                        help="server and name of the throwaway database to create and drop")
    parser.add_argument("--explain", action="store_true", help="print the plans of every query kind, not only misses")
    parser.add_argument("--keep", action="store_true", help="PostgreSQL: keep the database at the end (to look at its plans); it prints how to drop it")
    args = parser.parse_args()
    if args.keep and args.repeat > 1:
        parser.error("--keep needs --repeat 1: every run makes its database under the same name")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: nproc {len(os.sched_getaffinity(0))}, Python {platform.python_version()} ({sys.platform}),"
          f" load average {load}; database {args.database}; N={args.students:,}; seed {args.seed};"
          f" repeat {args.repeat}")
    p = plan(args.students, args.seed)
    runs = []
    for run in range(1, args.repeat + 1):
        if args.repeat > 1:
            print(f"\n######## run {run} of {args.repeat}")
        runs.append(run_once(args, p))
    if args.repeat > 1:
        summarise(args, runs)


def run_once(args: argparse.Namespace, p: Plan) -> tuple[dict[tuple[str, str], list[float]], list[float]]:
    """Load a fresh database, search, print this run's figures and verdict; returns the timings."""
    rng = random.Random(f"mealroll-bench-search:{args.seed}")  # the same queries in every run
    with throwaway_database(args.database, args.postgres_url, keep=args.keep) as url:
        t0 = time.perf_counter()
        engine, sessions = prepare(url)
        try:
            setup = time.perf_counter() - t0
            t0 = time.perf_counter()
            school_ids = build_tree(sessions, p.counties)
            tree = time.perf_counter() - t0
            n_schools = sum(len(c.schools) for c in p.counties)
            n_towns = sum(len(c.townships) for c in p.counties)
            print(f"setup (migrate, deploy, demo county): {setup:.1f} s; org tree {len(p.counties)} counties,"
                  f" {n_towns} townships, {n_schools:,} schools via create_org_unit: {tree:.1f} s")
            steps = load_students(engine, url, p, school_ids)
            print("load: " + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items())
                  + f"; {args.students / steps['students']:,.0f} students/s")
            school_code = create_actors(sessions, p.actor_county)
            with sessions() as session:
                county_path = session.scalars(select(OrgUnit.path).where(OrgUnit.code == p.actor_county.code)).one()
                school_path = session.scalars(select(OrgUnit.path).where(OrgUnit.code == school_code)).one()
                in_county = session.scalar(select(func.count()).select_from(Student).join(OrgUnit, Student.school_id == OrgUnit.id)
                                           .where(OrgUnit.path.startswith(county_path)))
                in_school = session.scalar(select(func.count()).select_from(Student).join(OrgUnit, Student.school_id == OrgUnit.id)
                                           .where(OrgUnit.code == school_code))
                if engine.dialect.name == "postgresql":
                    size = session.scalar(text("SELECT pg_size_pretty(pg_total_relation_size('student'))"))
                else:
                    size = f"file {os.path.getsize(make_url(url).database) / 2**20:.0f} MB"
            print(f"searching as {REVIEWER} (county_reviewer, {p.actor_county.code} {p.actor_county.name},"
                  f" {in_county:,} students) and {REGISTRAR} (school_registrar, {school_code}, {in_school:,} students);"
                  f" student table with indexes: {size}")

            t0 = time.perf_counter()
            times, example = run_searches(sessions, county_path, school_code, school_path, args.queries, rng)
            search_wall = time.perf_counter() - t0
            dup, conflicts = run_duplicate_checks(sessions, args.students, args.queries, rng)

            print(f"\n== student search, ms per request (find_user + student_lists.search, limit 50), {search_wall:.0f} s")
            misses = report(args, times, dup)
            print(f"  conflicts found by check_duplicates: {conflicts}")
            for kind, user in [(k, u) for k in KINDS for u in (REVIEWER, REGISTRAR)] if args.explain else misses:
                print(f"\n== plan: {kind} as {user}, {example[(kind, user)]}")
                explain(engine, sessions, user, example[(kind, user)])
            return times, dup
        finally:
            engine.dispose()


def report(args: argparse.Namespace, times: dict[tuple[str, str], list[float]], dup: list[float]) -> list[tuple[str, str]]:
    """One run's table and verdicts; returns the kinds × users above the target."""
    misses = []
    for kind in KINDS:
        for user in (REVIEWER, REGISTRAR):
            values = times[(kind, user)]
            flag = ""
            if ms(values, .95) > TARGET_SEARCH_MS:
                flag = "  > 50"
                misses.append((kind, user))
            print(line(f"{kind} as {user.removeprefix('bench_')}", values) + flag)
    everything = [v for values in times.values() for v in values]
    print(line("all searches", everything))
    print(f"\n== check_duplicates of one student, ms (own session each)\n{line('check_duplicates', dup)}")
    # Judged per kind as well: a mix of fast kinds must not hide one that every name search pays.
    worst = max(times, key=lambda k: ms(times[k], .95))
    verdict(args, overall=ms(everything, .95), worst=worst, worst_p95=ms(times[worst], .95), misses=len(misses),
            kinds=len(times), dup_p95=ms(dup, .95), dup_max=ms(dup, 1))
    return misses


def verdict(args: argparse.Namespace, *, overall: float, worst: tuple[str, str], worst_p95: float, misses: int,
            kinds: int, dup_p95: float, dup_max: float) -> None:
    scale = "60k on SQLite" if args.database == "sqlite" else "4M on PostgreSQL"
    at_scale = (args.database == "sqlite" and args.students >= 60_000) or \
               (args.database == "postgres" and args.students >= 4_000_000)
    result = "PASS" if overall <= TARGET_SEARCH_MS and not misses else "MISS"
    note = "" if at_scale else f" (the target is set for {scale}; this run has N={args.students:,})"
    print(f"\ntarget: student search p95 ≤ 50 ms ({scale}), overall and per kind: {result}"
          f" (overall p95 {overall:.1f} ms; worst: {worst[0]} as {worst[1].removeprefix('bench_')}"
          f" p95 {worst_p95:.1f} ms; {misses} of {kinds} kind × user above 50 ms){note}")
    if args.database == "postgres":
        result = "PASS" if dup_p95 <= TARGET_DUPLICATE_MS else "MISS"
        note = "" if args.students >= 4_000_000 else f" (the target is set for 4M; N={args.students:,})"
        print(f"target: duplicate check of one ID ≤ 5 ms at 4M: {result} (p95 {dup_p95:.1f} ms,"
              f" max {dup_max:.1f} ms){note}")
    else:
        print(f"duplicate check (target set for 4M on PostgreSQL): p95 {dup_p95:.1f} ms")


def summarise(args: argparse.Namespace, runs: list[tuple[dict[tuple[str, str], list[float]], list[float]]]) -> None:
    """This VM's speed drifts by ±10 % from run to run: each figure is the median over the runs."""
    print(f"\n######## median of {len(runs)} runs, ms (each run's p50 / p95 / max, then their median)")

    def median_line(label: str, per_run: list[list[float]]) -> str:
        pad = 44 - sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in label)
        cells = [f"{q} {statistics.median(ms(v, x) for v in per_run):7.1f}" for q, x in (("p50", .5), ("p95", .95), ("max", 1))]
        p95s = ", ".join(f"{ms(v, .95):.1f}" for v in per_run)
        return f"{label}{' ' * pad} {'  '.join(cells)}  (p95 of the runs: {p95s})"

    misses = 0
    p95 = {}
    for kind in KINDS:
        for user in (REVIEWER, REGISTRAR):
            per_run = [times[(kind, user)] for times, _ in runs]
            p95[(kind, user)] = statistics.median(ms(v, .95) for v in per_run)
            flag = "  > 50" if p95[(kind, user)] > TARGET_SEARCH_MS else ""
            misses += bool(flag)
            print(median_line(f"{kind} as {user.removeprefix('bench_')}", per_run) + flag)
    everything = [[v for values in times.values() for v in values] for times, _ in runs]
    print(median_line("all searches", everything))
    dups = [dup for _, dup in runs]
    print(median_line("check_duplicates", dups))
    worst = max(p95, key=lambda k: p95[k])
    verdict(args, overall=statistics.median(ms(v, .95) for v in everything), worst=worst, worst_p95=p95[worst],
            misses=misses, kinds=len(p95), dup_p95=statistics.median(ms(v, .95) for v in dups),
            dup_max=statistics.median(ms(v, 1) for v in dups))


if __name__ == "__main__":
    main()
