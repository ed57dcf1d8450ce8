"""student_intake throughput: N intakes from start to active student, through the service layer.

Each step (start, principal approve, county confirm) is its own unit of work, as one request
would do it: load the acting user, find the open task, call the service, commit. Runs on a
throwaway SQLite file and/or a throwaway PostgreSQL database that it creates and drops itself.

    python bench/intake.py [--n 2000] [--database sqlite|postgres|both] [--postgres-url URL]
"""

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

import migrations
from registry import demo, workflows
from registry.db import make_engine, make_sessionmaker, unit_of_work
from registry.rules.id_number import check_digit
from registry.students import Student, StudentStatus
from registry.users import find_user
from registry.workflows import HumanTask, InstanceStatus, ProcessInstance, ProcessVersion, TaskStatus

ROOT = Path(__file__).resolve().parents[1]
SCHOOL = "2152019901"  # the demo school of registrar1 and principal1
WARMUP = 20
TARGET_RATE = 100.0  # completed intakes/s on SQLite
TARGET_STATE = 10 * 1024  # bytes of a finished intake's state, spec not included


def student(i: int) -> dict:
    """A valid grade-3 student; i makes the ID number distinct (999 sequence numbers per birth day)."""
    birth = date(2016, 9, 1) + timedelta(days=i // 999)
    seq = i % 999 + 1
    first17 = f"520102{birth:%Y%m%d}{seq:03d}"
    return {
        "name": "张小明", "sex": "1" if seq % 2 else "2", "birth_date": birth.isoformat(), "id_type": "1",
        "id_number": first17 + check_digit(first17), "ethnicity": "06", "school_code": SCHOOL, "grade": 3,
        "class_name": "三年级（1）班", "enrolled_month": "2023-09", "boarding_mode": "1",
        "guardian_name": "张大山", "guardian_phone": "13800001234",
    }


def open_task_id(session: Session, instance_id: int) -> int:
    return session.scalars(select(HumanTask.id).where(HumanTask.instance_id == instance_id,
                                                      HumanTask.status == TaskStatus.open)).one()


def one_intake(sessions: sessionmaker[Session], i: int, starts: list[float], completions: list[float]) -> int:
    # Loading the actor and finding the task are inside each timed step: a request pays for them too.
    t0 = time.perf_counter()
    with unit_of_work(sessions) as session:
        instance, _ = workflows.start_process(session, actor=find_user(session, username="registrar1"),
                                              process_id="student_intake", data={"student": student(i)})
        instance_id = instance.id
    starts.append(time.perf_counter() - t0)
    for username in ("principal1", "reviewer"):
        t0 = time.perf_counter()
        with unit_of_work(sessions) as session:
            workflows.complete_task(session, actor=find_user(session, username=username),
                                    task_id=open_task_id(session, instance_id), data={"decision": "approve"})
        completions.append(time.perf_counter() - t0)
    return instance_id


def prepare(url: str) -> tuple[Engine, sessionmaker[Session]]:
    migrations.upgrade(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    with unit_of_work(sessions) as session:
        workflows.deploy_directory(session, ROOT / "processes")
        demo.seed_demo_county(session, password="bench-pass-2026")
    return engine, sessions


def run(url: str, n: int) -> dict:
    engine, sessions = prepare(url)
    try:
        # Warm-up: imports, the parsed-spec cache, SQLAlchemy's statement caches, the connection pool.
        for i in range(WARMUP):
            one_intake(sessions, i, [], [])
        starts: list[float] = []
        completions: list[float] = []
        t0 = time.perf_counter()
        ids = [one_intake(sessions, WARMUP + i, starts, completions) for i in range(n)]
        wall = time.perf_counter() - t0
        with sessions() as session:
            rows = session.execute(select(ProcessInstance.status, ProcessInstance.state, Student.status)
                                   .join(Student, Student.id == ProcessInstance.subject_id)
                                   .where(ProcessInstance.id.in_(ids))).all()
            spec = session.scalar(select(func.max(func.length(ProcessVersion.spec_json)))
                                  .where(ProcessVersion.process_id == "student_intake"))
        # A run that did not finish every intake would measure the wrong thing: refuse to report it.
        done = [r for r in rows if r[0] == InstanceStatus.completed and r[2] == StudentStatus.active]
        if len(done) != n:
            raise SystemExit(f"only {len(done)} of {n} intakes ended with an active student")
        return {"wall": wall, "n": n, "starts": starts, "completions": completions, "spec_chars": spec,
                "state_bytes": sorted(len(r[1].encode("utf-8")) for r in rows)}
    finally:
        engine.dispose()


def run_sqlite(n: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="mealroll-bench-") as tmp:
        return run(f"sqlite:///{tmp}/bench.db", n)


def run_postgres(n: int, url: str) -> dict:
    target = make_url(url)
    admin = dict(host=target.host, port=target.port or 5432, user=target.username, password=target.password,
                 dbname="postgres", autocommit=True)
    with psycopg.connect(**admin) as conn:
        # CREATE fails if the database exists: never benchmark into (and then drop) someone's data.
        conn.execute(f'CREATE DATABASE "{target.database}"')
    try:
        return run(target.render_as_string(hide_password=False), n)
    finally:
        with psycopg.connect(**admin) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')


def ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(name: str, r: dict) -> None:
    rate = r["n"] / r["wall"]
    sizes = r["state_bytes"]
    print(f"\n== {name}: {r['n']} intakes in {r['wall']:.1f} s")
    print(f"completed intakes/s: {rate:.1f}")
    for label, values in (("start", r["starts"]), ("task completion", r["completions"])):
        print(f"one {label} (ms): p50 {ms(values, .5):.1f}  p95 {ms(values, .95):.1f}  max {ms(values, 1):.1f}"
              f"  (n={len(values)})")
    print(f"finished intake state without spec (bytes): min {sizes[0]}  median {statistics.median(sizes):.0f}"
          f"  max {sizes[-1]}  (spec stored once: {r['spec_chars']} chars)")
    if name == "sqlite":
        print(f"target: ≥ 100 completed intakes/s on SQLite: {'PASS' if rate >= TARGET_RATE else 'MISS'}"
              f" ({rate:.1f})")
    print(f"target: finished intake state ≤ 10 KB without its spec: {'PASS' if sizes[-1] <= TARGET_STATE else 'MISS'}"
          f" (max {sizes[-1]} bytes)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="timed intakes per database (default 2000)")
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per database, each on a fresh database; the target is judged on the median run")
    parser.add_argument("--postgres-url", default=f"postgresql+psycopg://postgres@127.0.0.1:5432/mealroll_bench_{os.getpid()}",
                        help="server and name of the throwaway database to create and drop")
    args = parser.parse_args()
    # The load average says whether other jobs shared the CPUs: the figures are CPU-bound.
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: nproc {len(os.sched_getaffinity(0))}, Python {platform.python_version()} ({sys.platform}),"
          f" load average {load}; N={args.n}")
    if args.database in ("sqlite", "both"):
        report("sqlite", median_run([run_sqlite(args.n) for _ in range(args.repeat)]))
    if args.database in ("postgres", "both"):
        report("postgres", median_run([run_postgres(args.n, args.postgres_url) for _ in range(args.repeat)]))


def median_run(runs: list[dict]) -> dict:
    """This VM's speed drifts by ±10 % from run to run: report every rate, judge the median run."""
    ranked = sorted(runs, key=lambda r: r["n"] / r["wall"])
    if len(runs) > 1:
        print("rates of the runs (intakes/s): " + ", ".join(f"{r['n'] / r['wall']:.1f}" for r in runs))
    return ranked[len(ranked) // 2]


if __name__ == "__main__":
    main()
