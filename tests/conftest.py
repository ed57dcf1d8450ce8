"""Test fixtures on real databases.

MEALROLL_TEST_DATABASE_URL picks the database (PostgreSQL in CI's second run); without it the
suite runs on a throwaway SQLite file. Tests that need a server this machine may lack (Chromium,
Redis) skip with a reason starting "real-server test", listed at the end of the run; tests marked
`postgres` skip on SQLite. .ci/run sets MEALROLL_REQUIRE_SERVERS=1, under which any real-server
skip fails the run, and MEALROLL_REQUIRE_POSTGRES=1 on its PostgreSQL run, which then refuses to
run on anything else: CI can never pass by skipping.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

import migrations
from registry import demo, workflows
from registry.db import make_engine, unit_of_work
from registry.settings import Settings

DEMO_PASSWORD = "demo-pass-2026"
PROCESSES = Path(__file__).resolve().parents[1] / "processes"


def database_url(tmp_root: Path) -> str:
    return os.environ.get("MEALROLL_TEST_DATABASE_URL") or f"sqlite:///{tmp_root / 'test.db'}"


def pytest_report_header(config: pytest.Config) -> str:
    url = os.environ.get("MEALROLL_TEST_DATABASE_URL") or "sqlite (temporary file)"
    return f"mealroll test database: {url.split('@')[-1]}"


def _on_postgres() -> bool:
    return (os.environ.get("MEALROLL_TEST_DATABASE_URL") or "").startswith("postgresql")


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("MEALROLL_REQUIRE_POSTGRES") == "1" and not _on_postgres():
        raise pytest.UsageError("MEALROLL_REQUIRE_POSTGRES=1 but MEALROLL_TEST_DATABASE_URL is not a PostgreSQL URL")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _on_postgres():
        return
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(pytest.mark.skip(
                reason="PostgreSQL-only test: set MEALROLL_TEST_DATABASE_URL=postgresql+psycopg://... to run it"))


def _server_skips(reporter) -> list:  # type: ignore[no-untyped-def]
    return [r for r in (reporter.stats.get("skipped", []) if reporter else []) if "real-server test" in str(r.longrepr)]


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    skipped = _server_skips(terminalreporter)
    if skipped:
        terminalreporter.write_sep("=", f"{len(skipped)} real-server tests skipped (reasons above)", yellow=True)
        if os.environ.get("MEALROLL_REQUIRE_SERVERS") == "1":
            terminalreporter.write_line("MEALROLL_REQUIRE_SERVERS=1: real-server tests may not be skipped", red=True)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if _server_skips(reporter) and os.environ.get("MEALROLL_REQUIRE_SERVERS") == "1":
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def db_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = database_url(tmp_path_factory.mktemp("db"))
    migrations.upgrade(url)
    engine = make_engine(url)
    factory = sessionmaker(engine, expire_on_commit=False)
    with unit_of_work(factory) as session:
        workflows.deploy_directory(session, PROCESSES)
        if demo.is_empty(session):
            demo.seed_demo_county(session, password=DEMO_PASSWORD)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(db_engine: Engine) -> Iterator[Connection]:
    """One outer transaction per test, rolled back at the end: each test sees the seeded county only."""
    with db_engine.connect() as conn:
        outer = conn.begin()
        yield conn
        if outer.is_active:
            outer.rollback()


@pytest.fixture
def sessions(connection: Connection) -> sessionmaker[Session]:
    # The code under test commits; with create_savepoint those commits only release savepoints.
    return sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as s:
        yield s


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(env="test", data_dir=tmp_path, secret_key="test-secret-key-not-for-production")
