"""Reminders and timers at county scale on PostgreSQL: 100k open tasks with due dates and 100k waiting timers.

1. One poll: the query that claims due timers (`workflows.claim_due_instance`) and the one that claims
   due reminder rows (`reminders.claim_due`, a batch of 500) each against the full tables, p50/max of
   --polls runs (each rolled back). Target: ≤ 50 ms.
2. 10k reminders due now go out to a local SMTP server (aiosmtpd in this process) through one real
   worker (`mealroll worker --beat`, Redis broker by default): time from the worker's start to the last
   message accepted. Target: ≤ 60 s. Then: every message accepted once, every row recorded sent.
3. Latency, the same worker now idle: --latency reminders come due one by one over ~20 s (their
   `task_reminder.next_at`, the moment the system owes the look); for each, the time from that moment to
   the SMTP server's 250. Target: ≤ poll interval + 2 s.
4. Draining: --drain real student_intake instances (one made through the service layer, cloned) whose
   P5D confirmation timer comes due at one moment: time until every one has fired, and how many beat
   polls that took (a poll takes 100 and queues itself again while more are due).

Makes and drops its own PostgreSQL database (`mealroll_bench_rem_<pid>`).

    python bench/reminders.py [--tasks 100000] [--due 10000] [--timers 100000] [--polls 20] [--poll 1]
                              [--latency 40] [--drain 2000]
                              [--broker redis://127.0.0.1:6379/13 | filesystem] [--postgres-url URL] [--keep]
"""

import argparse
import math
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from aiosmtpd.controller import Controller
from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

import migrations
from registry import demo, notifications, reminders, workflows
from registry.audit import AuditEntry
from registry.db import make_engine, make_sessionmaker, unit_of_work
from registry.notifications import Channel, Notification, Preferences, Status
from registry.org_units import find_org_unit
from registry.rules.id_number import check_digit
from registry.task_reminders import TaskReminder
from registry.users import find_user
from registry.workflows import HumanTask, InstanceTimer, ProcessInstance, TaskStatus

ROOT = Path(__file__).resolve().parents[1]
MEALROLL = str(Path(sys.executable).with_name("mealroll"))
POLL_TARGET_MS = 50.0
SEND_TARGET_S = 60.0
LATENCY_MARGIN_S = 2.0  # the target: poll interval + this
CHUNK = 5000
HEADER = re.compile(rb"^X-Mealroll-Notification: (\d+)", re.MULTILINE)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SCHOOL = "2152019901"
# The fake instances' timers (state "{}": not real workflows) stay in the future for the whole worker run.
FAKE_TIMERS_FROM = timedelta(minutes=30)


class Sink:
    def __init__(self) -> None:
        self.ids: list[str] = []
        self.first: float | None = None
        self.last: float | None = None
        self.accepted_at: dict[str, float] = {}  # notification id → wall clock of the 250

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        # The header only, not a full parse: the server shares the 2 cores with the worker it measures.
        found = HEADER.search(envelope.content)
        key = found[1].decode() if found else "?"
        self.ids.append(key)
        now = time.perf_counter()
        self.first = self.first or now
        self.last = now
        self.accepted_at.setdefault(key, time.time())
        return "250 OK"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def create_database(server_url: str) -> str:
    name = f"mealroll_bench_rem_{os.getpid()}"
    url = make_url(server_url)
    with psycopg.connect(host=url.host, port=url.port or 5432, user=url.username, password=url.password,
                         dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False)


def drop_database(url_text: str) -> None:
    url = make_url(url_text)
    with psycopg.connect(host=url.host, port=url.port or 5432, user=url.username, password=url.password,
                         dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')


def load(sessions: sessionmaker[Session], *, tasks: int, due: int, latency: int, timers: int, now: datetime) -> list[int]:
    """Instances, open tasks (the first `due` of them with a reminder step due now) and timers, in bulk. The
    next `latency` tasks have a step due too but no look scheduled: their ids are returned."""
    with unit_of_work(sessions) as session:
        workflows.deploy_directory(session, ROOT / "processes")
        demo.seed_demo_county(session, password="bench-pass-2026")
        notifications.update_preferences(session, actor=find_user(session, username="principal1"),
                                         preferences=Preferences(email_address="principal1@school.example.cn"))
        version_id = workflows.latest_version(session, "student_intake").id
        school = find_org_unit(session, code="2152019901").id
        registrar = find_user(session, username="registrar1").id
    count = max(tasks, timers)
    latency_ids: list[int] = []
    for start in range(0, count, CHUNK):
        ids = range(start, min(start + CHUNK, count))
        with unit_of_work(sessions) as session:
            conn = session.connection()
            made = conn.execute(insert(ProcessInstance.__table__).returning(ProcessInstance.__table__.c.id), [
                {"process_version_id": version_id, "process_id": "student_intake", "status": "running", "state": "{}",
                 "subject_type": "student", "subject_id": i + 1, "subject_label": f"学生{i}", "org_unit_id": school,
                 "started_by_id": registrar, "started_at": now, "version_id": 1} for i in ids]).scalars().all()
            rows, schedule, waits = [], [], []
            for i, instance_id in zip(ids, made, strict=True):
                if i < tasks:
                    # Due now: opened 2.5 days ago, due in 12 h (a step of them due). The rest: due 10 to 60 days out.
                    stepping = i < due + latency
                    opened = now - timedelta(days=2, hours=12) if stepping else now - timedelta(hours=1)
                    due_at = opened + timedelta(days=3) if stepping else now + timedelta(days=10 + i % 50, hours=i % 24)
                    rows.append({"instance_id": instance_id, "task_guid": str(uuid.uuid4()),
                                 "process_id": "student_intake", "task_id": "review_intake", "title": "校长审核",
                                 "form": "review", "role": "school_principal", "org_unit_id": school, "status": "open",
                                 "created_at": opened, "due_at": due_at, "overdue": False})
                    # The latency tasks' looks are scheduled when the worker is idle (None: not yet).
                    schedule.append(now - timedelta(minutes=1) if i < due else None if stepping
                                    else due_at - timedelta(days=3))
                if i < timers:
                    # All in the future for the worker run (the instances are not real workflows); the poll
                    # below asks "as of" a time at which 1% of them are due.
                    waits.append({"instance_id": instance_id, "due_at": now + FAKE_TIMERS_FROM + timedelta(minutes=i % 1000)})
            if rows:
                task_ids = conn.execute(insert(HumanTask.__table__).returning(HumanTask.__table__.c.id),
                                        rows).scalars().all()
                conn.execute(insert(TaskReminder.__table__), [
                    {"task_id": t, "next_at": n, "due_at": r["due_at"]} for t, n, r in zip(task_ids, schedule, rows, strict=True)])
                latency_ids += [t for i, t in zip(ids, task_ids, strict=False) if due <= i < due + latency]
            if waits:
                conn.execute(insert(InstanceTimer.__table__), waits)
    with unit_of_work(sessions) as session:
        session.connection().exec_driver_sql("ANALYZE")
    return latency_ids


def student(i: int) -> dict:
    first17 = f"520102{date(2016, 9, 1) + timedelta(days=i // 999):%Y%m%d}{i % 999 + 1:03d}"
    return {"name": "张小明", "sex": "1" if (i % 999 + 1) % 2 else "2", "birth_date": f"{first17[6:10]}-{first17[10:12]}-{first17[12:14]}",
            "id_type": "1", "id_number": first17 + check_digit(first17), "ethnicity": "06", "school_code": SCHOOL,
            "grade": 3, "class_name": "三年级（1）班", "enrolled_month": "2023-09", "boarding_mode": "1",
            "guardian_name": "张大山", "guardian_phone": "13800001234"}


def park_due_timers(sessions: sessionmaker[Session], *, count: int, now: datetime, parked: datetime) -> list[int]:
    """`count` student_intake instances waiting on confirm_intake with their P5D timer due by the engine's
    clock, their instance_timer rows parked at `parked` (the poll finds them when they are moved to now).
    One is made through the service layer; the rest are copies of it with fresh task guids."""
    opened = now - timedelta(days=5, hours=1)
    with unit_of_work(sessions) as session:
        instance, _ = workflows.start_process(session, actor=find_user(session, username="registrar1"),
                                              process_id="student_intake", data={"student": student(1)}, now=opened)
        review = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id,
                                                         HumanTask.status == TaskStatus.open)).one()
        workflows.complete_task(session, actor=find_user(session, username="principal1"), task_id=review.id,
                                data={"decision": "approve"}, now=opened)
        session.flush()
        original = session.get(ProcessInstance, instance.id)
        assert original is not None
        confirm = session.scalars(select(HumanTask).where(HumanTask.instance_id == instance.id,
                                                          HumanTask.status == TaskStatus.open)).one()
        columns = [c.name for c in ProcessInstance.__table__.columns if c.name != "id"]
        template = {c: getattr(original, c) for c in columns}
        task_template = {c.name: getattr(confirm, c.name) for c in HumanTask.__table__.columns if c.name != "id"}
        conn = session.connection()
        conn.execute(update(InstanceTimer.__table__).where(InstanceTimer.instance_id == instance.id)
                     .values(due_at=parked))
        made = [instance.id]
        for start in range(1, count, 500):
            states, guids = [], []
            for _ in range(start, min(start + 500, count)):
                fresh: dict[str, str] = {}
                states.append(UUID.sub(lambda m, fresh=fresh: fresh.setdefault(m[0], str(uuid.uuid4())),
                                       original.state))
                guids.append(fresh[confirm.task_guid])
            ids = conn.execute(insert(ProcessInstance.__table__).returning(ProcessInstance.__table__.c.id),
                               [{**template, "state": state} for state in states]).scalars().all()
            conn.execute(insert(HumanTask.__table__), [{**task_template, "instance_id": i, "task_guid": g}
                                                       for i, g in zip(ids, guids, strict=True)])
            conn.execute(insert(InstanceTimer.__table__), [{"instance_id": i, "due_at": parked} for i in ids])
            made += ids
    return made


def measure_latency(sessions: sessionmaker[Session], sink: Sink, task_ids: list[int], *, spacing: float = 0.53,
                    timeout: float = 90) -> list[float]:
    """Each task's look comes due `spacing` s after the previous one's (not a multiple of the poll interval, so
    the due times fall at every point of beat's cycle); seconds from each due time to its e-mail's 250."""
    first = datetime.now(UTC) + timedelta(seconds=2)
    due = {task_id: first + timedelta(seconds=spacing * k) for k, task_id in enumerate(task_ids)}
    with unit_of_work(sessions) as session:
        for task_id, at in due.items():
            session.execute(update(TaskReminder).where(TaskReminder.task_id == task_id).values(next_at=at))
    deadline = time.monotonic() + spacing * len(task_ids) + timeout
    mails: dict[int, int] = {}
    while time.monotonic() < deadline:
        with sessions() as session:
            mails = dict(session.execute(select(Notification.task_id, Notification.id).where(
                Notification.task_id.in_(task_ids), Notification.channel == Channel.email)).all())
        if len(mails) == len(task_ids) and all(str(n) in sink.accepted_at for n in mails.values()):
            break
        time.sleep(0.2)
    return [sink.accepted_at[str(n)] - due[t].timestamp() for t, n in mails.items() if str(n) in sink.accepted_at]


def measure_drain(sessions: sessionmaker[Session], instance_ids: list[int], log: Path, *,
                  timeout: float = 900) -> tuple[float, int, int, int]:
    """Every parked timer moved to one due time; returns (seconds from it until none is left, instances fired,
    beat polls sent meanwhile, fire_due_timers runs meanwhile)."""
    def counts() -> tuple[int, int]:
        text = log.read_text(errors="replace")
        return text.count("Sending due task fire-due-timers"), len(re.findall(r"Task workflow\.fire_due_timers\[[^]]*\] received", text))

    before = counts()
    due = datetime.now(UTC) + timedelta(seconds=1)
    with unit_of_work(sessions) as session:
        session.execute(update(InstanceTimer).where(InstanceTimer.instance_id.in_(instance_ids)).values(due_at=due))
    deadline = time.monotonic() + timeout
    left = len(instance_ids)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        with sessions() as session:
            left = session.scalar(select(func.count()).select_from(InstanceTimer)
                                  .where(InstanceTimer.instance_id.in_(instance_ids))) or 0
    took = time.time() - due.timestamp()
    with sessions() as session:
        fired = session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "process.timer", AuditEntry.instance_id.in_(instance_ids))) or 0
    after = counts()
    return took, fired, after[0] - before[0], after[1] - before[1]


def time_poll(sessions: sessionmaker[Session], polls: int, fn: Any) -> list[float]:
    timings = []
    for _ in range(polls):
        with sessions() as session, session.begin():
            t0 = time.perf_counter()
            fn(session)
            timings.append((time.perf_counter() - t0) * 1000)
            session.rollback()
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--timers", type=int, default=100_000)
    parser.add_argument("--polls", type=int, default=20)
    parser.add_argument("--poll", type=float, default=1.0, help="the worker's MEALROLL_TIMER_POLL_SECONDS")
    parser.add_argument("--latency", type=int, default=40, help="reminders whose due-to-250 time is measured")
    parser.add_argument("--drain", type=int, default=2000, help="timers coming due at one moment")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--concurrency", type=int, default=1, help="the worker's processes (Redis broker)")
    parser.add_argument("--postgres-url", default=os.environ.get("MEALROLL_BENCH_POSTGRES_URL",
                                                               "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    url = create_database(args.postgres_url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    ok = True
    try:
        migrations.upgrade(url)
        now = datetime.now(UTC)
        t0 = time.perf_counter()
        latency_ids = load(sessions, tasks=args.tasks, due=args.due, latency=args.latency, timers=args.timers, now=now)
        parked = park_due_timers(sessions, count=args.drain, now=now, parked=now + timedelta(days=1)) if args.drain else []
        print(f"loaded {args.tasks} open tasks ({args.due} with a reminder due now) and {args.timers} waiting timers, "
              f"and {len(parked)} instances parked on a due timer, in {time.perf_counter() - t0:.1f} s; "
              f"load average {os.getloadavg()[0]:.1f}")

        later = now + FAKE_TIMERS_FROM + timedelta(minutes=10)  # 1% of the timers due
        timer_poll = time_poll(sessions, args.polls, lambda s: workflows.claim_due_instance(s, now=later))
        reminder_poll = time_poll(sessions, args.polls, lambda s: reminders.claim_due(s, now=now, limit=500))
        with sessions() as session:
            due_timers = session.scalar(select(func.count()).select_from(InstanceTimer)
                                        .where(InstanceTimer.due_at <= later))
            found = len(reminders.claim_due(session, now=now, limit=500))
        for name, timings, what in (("timer poll (claim_due_instance)", timer_poll, f"{due_timers} due"),
                                    ("reminder poll (claim_due, batch 500)", reminder_poll, f"{found} found")):
            p50, worst = statistics.median(timings), max(timings)
            verdict = "ok" if p50 <= POLL_TARGET_MS else "MISSED"
            ok &= p50 <= POLL_TARGET_MS
            print(f"{name}: p50 {p50:.2f} ms, max {worst:.2f} ms over {len(timings)} polls ({what}); "
                  f"target ≤ {POLL_TARGET_MS:.0f} ms: {verdict}")

        sink = Sink()
        port = free_port()
        controller = Controller(sink, hostname="127.0.0.1", port=port)
        controller.start()
        data_dir = Path(tempfile.mkdtemp(prefix="mealroll-bench-"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEALROLL_")}
        env.update(MEALROLL_DATABASE_URL=url, MEALROLL_DATA_DIR=str(data_dir), MEALROLL_TIMER_POLL_SECONDS=str(args.poll),
                   MEALROLL_SMTP_HOST="127.0.0.1", MEALROLL_SMTP_PORT=str(port), MEALROLL_SMTP_STARTTLS="false",
                   PYTHONUNBUFFERED="1")
        if args.broker != "filesystem":
            env["MEALROLL_BROKER_URL"] = args.broker
            import redis

            with redis.Redis.from_url(args.broker) as client:
                client.flushdb()
        log = data_dir / "worker.log"
        started = time.perf_counter()
        with log.open("wb") as out:
            worker = subprocess.Popen([MEALROLL, "worker", "--beat", f"--concurrency={args.concurrency}"], env=env, cwd=data_dir, stdout=out,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        latencies: list[float] = []
        drained: tuple[float, int, int, int] | None = None
        try:
            deadline = started + 180
            while len(sink.ids) < args.due and time.perf_counter() < deadline and worker.poll() is None:
                time.sleep(0.2)
            backlog_last, backlog_count = sink.last, len(sink.ids)
            time.sleep(2)  # anything sent twice would arrive now
            backlog_ids = list(sink.ids)
            if args.latency and worker.poll() is None:
                print(f"latency: load average {os.getloadavg()[0]:.1f} before")
                latencies = measure_latency(sessions, sink, latency_ids)
            if parked and worker.poll() is None:
                print(f"drain: load average {os.getloadavg()[0]:.1f} before")
                drained = measure_drain(sessions, parked, log)
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
            controller.stop()
        took = (backlog_last or time.perf_counter()) - started
        first = (sink.first or started) - started
        with sessions() as session:
            sent = session.scalar(select(func.count()).select_from(Notification).where(
                Notification.channel == Channel.email, Notification.status == Status.sent)) or 0
            in_app = session.scalar(select(func.count()).select_from(Notification).where(
                Notification.channel == Channel.in_app)) or 0
            open_tasks = session.scalar(select(func.count()).select_from(HumanTask)
                                        .where(HumanTask.status == TaskStatus.open)) or 0
        verdict = "ok" if backlog_count >= args.due and took <= SEND_TARGET_S else "MISSED"
        ok &= verdict == "ok"
        print(f"{len(backlog_ids)} reminders accepted by SMTP, {len(set(backlog_ids))} distinct; {sent} e-mail rows "
              f"recorded sent in all, {in_app} in-app; {open_tasks} open tasks")
        print(f"one worker ({'filesystem' if args.broker == 'filesystem' else 'Redis'} broker, "
              f"{args.concurrency} process{'es' if args.concurrency > 1 else ''}): first e-mail "
              f"{first:.1f} s, last {took:.1f} s after the worker started ({args.due / max(took - first, 1e-9):.0f} "
              f"e-mails/s once sending); target ≤ {SEND_TARGET_S:.0f} s: {verdict}")
        if len(sink.ids) != len(set(sink.ids)) or sent != args.due + len(latencies):
            print("DUPLICATES OR UNRECORDED SENDS")
            ok = False
        if args.latency:
            target = args.poll + LATENCY_MARGIN_S
            if len(latencies) < args.latency:
                print(f"latency: only {len(latencies)} of {args.latency} reminders arrived: MISSED")
                ok = False
            if latencies:
                ordered = sorted(latencies)
                p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
                verdict = "ok" if ordered[-1] <= target else "MISSED"
                ok &= verdict == "ok"
                print(f"latency, reminder due → SMTP 250, {len(ordered)} reminders due one by one (poll {args.poll:g} s): "
                      f"min {ordered[0]:.2f} s, p50 {statistics.median(ordered):.2f} s, p95 {p95:.2f} s, "
                      f"max {ordered[-1]:.2f} s; target ≤ {target:g} s: {verdict}")
        if drained is not None:
            drain_s, fired, beat_polls, runs = drained
            verdict = "ok" if fired == len(parked) else "MISSED"
            ok &= verdict == "ok"
            print(f"drain: {fired} of {len(parked)} timers due at one moment fired in {drain_s:.1f} s "
                  f"({fired / max(drain_s, 1e-9):.0f}/s), {runs} fire_due_timers runs of which {beat_polls} sent by beat "
                  f"(100 per run; without the re-queue ≥ {max(math.ceil(len(parked) / 100) - 1, 0) * args.poll:g} s of "
                  f"waiting for beat alone): {verdict}")
        if verdict != "ok":
            print(log.read_text(errors="replace")[-3000:])
    finally:
        engine.dispose()
        if not args.keep:
            drop_database(url)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
