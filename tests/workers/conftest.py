"""A real `mealroll worker --beat` in its own process group, on a database of the test's own.

The worker is another process, so it cannot see the suite's rolled-back transactions: each test
gets a committed database of its own (a SQLite file, or a PostgreSQL database created and dropped
here when MEALROLL_TEST_DATABASE_URL is set, because the suite's main database is shared).
"""

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

import migrations
from registry import demo, workflows
from registry.db import make_engine, make_sessionmaker, unit_of_work
from tests.conftest import DEMO_PASSWORD, PROCESSES

MEALROLL = str(Path(sys.executable).with_name("mealroll"))
ROOT = Path(__file__).resolve().parents[2]
POLL_SECONDS = 0.5
REDIS_URL = os.environ.get("MEALROLL_TEST_REDIS_URL")


def wait_until(condition: Callable[[], object], *, what: str, log: Path | None = None,
               timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
            raise AssertionError(f"not within {timeout:.0f} s: {what}\n--- worker log ---\n{tail}")
        time.sleep(0.1)


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the whole group: the worker, its pool children and its embedded beat."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=30)


def prepare_database(url: str) -> None:
    migrations.upgrade(url)
    engine = make_engine(url)
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            workflows.deploy_directory(session, PROCESSES)
            demo.seed_demo_county(session, password=DEMO_PASSWORD)
    finally:
        engine.dispose()


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    server = os.environ.get("MEALROLL_TEST_DATABASE_URL")
    if not server:
        url = f"sqlite:///{tmp_path / 'worker.db'}"
        prepare_database(url)
        yield url
        return
    name = f"mealroll_worker_{secrets.token_hex(6)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            url = make_url(server).set(database=name).render_as_string(hide_password=False)
            prepare_database(url)
            yield url
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.fixture
def committed_sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions whose commits are real, so the worker process sees them."""
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def _flush_redis(url: str) -> None:
    import redis

    with redis.Redis.from_url(url) as client:
        client.flushdb()


@pytest.fixture(params=[
    "filesystem",
    pytest.param("redis", marks=[
        pytest.mark.redis,
        pytest.mark.skipif(not REDIS_URL, reason="real-server test: needs Redis "
                                                 "(set MEALROLL_TEST_REDIS_URL=redis://127.0.0.1:6379/11)"),
    ]),
])
def broker_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None: the embedded filesystem transport; otherwise a Redis database of the test's own, with redbeat."""
    if request.param == "filesystem":
        yield None
        return
    assert REDIS_URL is not None
    _flush_redis(REDIS_URL)  # a redbeat lock or schedule left by an earlier run must not leak in
    yield REDIS_URL
    _flush_redis(REDIS_URL)


@pytest.fixture
def start_worker(tmp_path: Path, database_url: str,
                 broker_url: str | None) -> Iterator[Callable[..., tuple[subprocess.Popen[bytes], Path]]]:
    """Starts `mealroll worker --beat`; every worker started is killed at teardown, pass or fail."""
    started: list[subprocess.Popen[bytes]] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEALROLL_")}
    env.update(MEALROLL_DATA_DIR=str(tmp_path / "var"), MEALROLL_DATABASE_URL=database_url,
               MEALROLL_TIMER_POLL_SECONDS=str(POLL_SECONDS), PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    if broker_url:
        env["MEALROLL_BROKER_URL"] = broker_url

    def start(command: list[str] | None = None, **settings: str) -> tuple[subprocess.Popen[bytes], Path]:
        """`settings`: more MEALROLL_* variables for this worker, e.g. MEALROLL_SMTP_HOST; `command`: instead of
        `mealroll worker --beat` (run with the repository on PYTHONPATH, e.g. tests/workers/blocking_worker.py)."""
        log = tmp_path / f"worker-{len(started) + 1}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(command or [MEALROLL, "worker", "--beat"],
                                       env={**env, **settings}, cwd=tmp_path, stdout=out,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True)
        started.append(process)
        return process, log

    yield start
    for process in started:
        kill_group(process)
