"""The `mealroll` command line, run as real subprocesses (settings are read once per process)."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from registry.db import make_engine, make_sessionmaker, unit_of_work
from registry.demo import USERS
from registry.org_units import OrgKind, create_org_unit
from registry.settings import Settings

MEALROLL = str(Path(sys.executable).with_name("mealroll"))
DEMO_USERNAMES = [username for username, *_ in USERS]
SCHOOL = "2152011101"
COUNTY = "520111"


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEALROLL_")}
    env.update(MEALROLL_DATA_DIR=str(data_dir), MEALROLL_DATABASE_URL=f"sqlite:///{data_dir / 'mealroll.db'}",
               MEALROLL_TIMER_POLL_SECONDS="0.5", PYTHONUNBUFFERED="1", **extra)
    return env


def mealroll(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MEALROLL, *args], env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def wait_until(condition, *, what: str, timeout: float = 60.0, log: Path | None = None) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-4000:] if log else ""
            raise AssertionError(f"not within {timeout:.0f} s: {what}\n--- output ---\n{tail}")
        time.sleep(0.1)


# --- users create / grant ----------------------------------------------------------------------

def make_county(url: str) -> None:
    # No command creates org units; the county's tree is data an administrator loads beforehand.
    engine = make_engine(url)
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            county = create_org_unit(session, code=COUNTY, name="测试县", kind=OrgKind.county)
            township = create_org_unit(session, code="520111101", name="测试镇", kind=OrgKind.township, parent=county)
            create_org_unit(session, code=SCHOOL, name="测试小学", kind=OrgKind.school, parent=township)
    finally:
        engine.dispose()


@contextmanager
def api_client(data_dir: Path, url: str) -> Iterator[TestClient]:
    engine = make_engine(url)
    settings = Settings(env="test", data_dir=data_dir, database_url=url, secret_key="test-secret-key-not-for-production")
    try:
        with TestClient(create_app(settings, make_sessionmaker(engine))) as client:
            yield client
    finally:
        engine.dispose()


def test_created_and_granted_user_logs_in_and_a_wrong_level_grant_is_refused_in_chinese(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    for args in (("db", "upgrade"), ("processes", "deploy")):
        done = mealroll(env, *args)
        assert done.returncode == 0, done.stderr
    make_county(env["MEALROLL_DATABASE_URL"])

    created = mealroll(env, "users", "create", "clerk9", "--name", "测试学籍员", "--password", "clerk9-pass-2026")
    assert created.returncode == 0, created.stderr
    granted = mealroll(env, "users", "grant", "clerk9", "school_registrar", "--org-unit", SCHOOL)
    assert granted.returncode == 0, granted.stderr

    refused = mealroll(env, "users", "grant", "clerk9", "school_principal", "--org-unit", COUNTY)
    assert refused.returncode == 2
    assert "Traceback" not in refused.stderr
    assert "校长" in refused.stderr and "学校" in refused.stderr, refused.stderr
    # The message is for a county administrator: no English enum codes inside the Chinese sentence.
    assert not re.search(r"\b(school|township|county)\b", refused.stderr), refused.stderr

    with api_client(tmp_path, env["MEALROLL_DATABASE_URL"]) as client:
        response = client.post("/api/auth/token", data={"username": "clerk9", "password": "clerk9-pass-2026"})
        assert response.status_code == 200, response.text
        me = client.get("/api/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"}).json()
    assert me["display_name"] == "测试学籍员"
    assert [(r["role"], r["org_unit"]["code"]) for r in me["roles"]] == [("school_registrar", SCHOOL)]


def test_granting_to_an_unknown_user_fails_with_exit_code_2(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    assert mealroll(env, "db", "upgrade").returncode == 0
    make_county(env["MEALROLL_DATABASE_URL"])

    refused = mealroll(env, "users", "grant", "nobody", "school_registrar", "--org-unit", SCHOOL)

    assert refused.returncode == 2
    assert "没有用户 nobody" in refused.stderr


# --- up ----------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def group_members(pgid: int) -> list[str]:
    """Live (non-zombie) processes of a process group, as 'pid state cmdline'."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        state, _ppid, group = stat.rpartition(")")[2].split()[:3]
        if int(group) == pgid and state != "Z":
            found.append(f"{proc.name} {state} {cmdline.strip()}")
    return found


@contextmanager
def launched(data_dir: Path, log: Path, **extra: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """`mealroll up` as the leader of a new session; whatever happens, its whole group dies afterwards."""
    port = free_port()
    with log.open("wb") as out:
        launcher = subprocess.Popen([MEALROLL, "up", "--host", "127.0.0.1", "--port", str(port)],
                                    env=cli_env(data_dir, **extra), stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until(lambda: healthy(port) or launcher.poll() is not None, what="GET /healthz", log=log)
        assert launcher.poll() is None, log.read_text(errors="replace")
        yield launcher, port
    finally:
        try:
            os.killpg(launcher.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        launcher.wait(timeout=30)


def healthy(port: int) -> bool:
    try:
        return httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx2.TransportError:
        return False


def token_status(port: int, username: str, password: str) -> int:
    response = httpx2.post(f"http://127.0.0.1:{port}/api/auth/token",
                           data={"username": username, "password": password}, timeout=30)
    return response.status_code


def printed_logins(output: str) -> dict[str, list[str]]:
    """username → every password printed for it (the block between the banner and the next blank line)."""
    lines = output.splitlines()
    starts = [i for i, line in enumerate(lines) if "passwords shown once" in line]
    logins: dict[str, list[str]] = {}
    for start in starts:
        for line in lines[start + 1:]:
            if not line.strip():
                break
            username, password = line.split()[:2]
            logins.setdefault(username, []).append(password)
    return logins


def stop(launcher: subprocess.Popen[bytes], sig: signal.Signals, log: Path, *, whole_group: bool = False) -> None:
    """Signal the launcher alone (a service manager's stop), or with `whole_group` every process of its group
    at once, as a terminal's Ctrl-C does; within 30 s it exits 0 and nothing of its group is left."""
    pgid = launcher.pid
    # web, worker and the worker's embedded beat all run in the launcher's group before we stop it
    wait_until(lambda: len(group_members(pgid)) >= 4, what="launcher, web, worker and beat running", log=log)
    deadline = time.monotonic() + 30
    if whole_group:
        os.killpg(pgid, sig)
    else:
        launcher.send_signal(sig)
    try:
        launcher.wait(timeout=30)
    except subprocess.TimeoutExpired:
        still = "\n".join(group_members(pgid))
        raise AssertionError(f"launcher still running 30 s after {sig.name}:\n{still}") from None
    assert launcher.returncode == 0, log.read_text(errors="replace")[-4000:]
    wait_until(lambda: not group_members(pgid), what=f"no process of the group left after {sig.name}",
               timeout=max(deadline - time.monotonic(), 0.1), log=log)


def test_up_prints_each_demo_login_once_and_registrar1_logs_in_with_it(tmp_path: Path) -> None:
    log = tmp_path / "up.log"
    with launched(tmp_path / "var", log) as (_launcher, port):
        logins = printed_logins(log.read_text())
        assert sorted(logins) == sorted(DEMO_USERNAMES)
        assert all(len(passwords) == 1 for passwords in logins.values()), logins
        assert len({passwords[0] for passwords in logins.values()}) == len(DEMO_USERNAMES)  # random per user

        assert token_status(port, "registrar1", logins["registrar1"][0]) == 200
        assert token_status(port, "registrar1", logins["principal1"][0]) == 401


def test_up_again_on_the_same_data_dir_prints_no_passwords(tmp_path: Path) -> None:
    first_log, again_log = tmp_path / "first.log", tmp_path / "again.log"
    with launched(tmp_path / "var", first_log) as (launcher, _port):
        password = printed_logins(first_log.read_text())["registrar1"][0]
        stop(launcher, signal.SIGINT, first_log)

    with launched(tmp_path / "var", again_log) as (_launcher, port):
        output = again_log.read_text()
        assert printed_logins(output) == {}
        assert password not in output
        assert token_status(port, "registrar1", password) == 200


def test_demo_password_setting_gives_every_demo_user_that_password(tmp_path: Path) -> None:
    log = tmp_path / "up.log"
    with launched(tmp_path / "var", log, MEALROLL_DEMO_PASSWORD="x-demo-pass-2026") as (_launcher, port):
        assert {name: token_status(port, name, "x-demo-pass-2026") for name in DEMO_USERNAMES} == \
            dict.fromkeys(DEMO_USERNAMES, 200)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_to_the_launcher_stops_web_worker_and_beat(tmp_path: Path, sig: signal.Signals) -> None:
    log = tmp_path / "up.log"
    with launched(tmp_path / "var", log) as (launcher, port):
        stop(launcher, sig, log)
        assert not healthy(port)


def test_ctrl_c_in_the_terminal_reaches_the_whole_group_and_everything_stops(tmp_path: Path) -> None:
    # The launcher and its children all get SIGINT together: web and worker begin their own shutdowns
    # while the launcher sends them SIGTERM as well.
    log = tmp_path / "up.log"
    with launched(tmp_path / "var", log) as (launcher, port):
        stop(launcher, signal.SIGINT, log, whole_group=True)
        assert not healthy(port)
        assert "Traceback" not in log.read_text(errors="replace")


# --- import students ---------------------------------------------------------------------------

def test_import_students_checks_with_progress_and_submits(tmp_path: Path) -> None:
    from tests.registry.test_imports import pupil, xlsx
    from tests.workers.conftest import prepare_database

    data_dir = tmp_path / "var"
    data_dir.mkdir()
    env = cli_env(data_dir)
    prepare_database(env["MEALROLL_DATABASE_URL"])
    names = [pupil(961), pupil(963), pupil(965, sex="9")]
    listing = tmp_path / "名单.xlsx"
    listing.write_bytes(xlsx(names))

    done = mealroll(env, "import", "students", str(listing), "--school", "2152019901", "--submit")
    assert done.returncode == 0, done.stderr
    assert "校验" in done.stdout and "审核中" in done.stdout
    assert "可入库 new 2" in done.stdout and "有错误 invalid 1" in done.stdout

    again = mealroll(env, "import", "students", str(listing), "--school", "2152019901")
    assert again.returncode == 0 and "已上传过" in again.stdout

    not_a_list = tmp_path / "notes.csv"
    not_a_list.write_text("备注\n无\n", encoding="utf-8")
    refused = mealroll(env, "import", "students", str(not_a_list), "--school", "2152019901")
    assert refused.returncode == 1 and "文件无法导入" in refused.stdout

    unknown = mealroll(env, "import", "students", str(listing), "--school", "9999999999")
    assert unknown.returncode == 2 and "9999999999" in unknown.stderr


def test_subsidy_explain_shows_each_month_and_its_rule(tmp_path: Path) -> None:
    from tests import subsidy_county
    from tests.workers.conftest import prepare_database

    data_dir = tmp_path / "var"
    data_dir.mkdir()
    env = cli_env(data_dir)
    prepare_database(env["MEALROLL_DATABASE_URL"])
    engine = make_engine(env["MEALROLL_DATABASE_URL"])
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            county = subsidy_county.build(session)
            s3_id, s3_number = county.pupils["s3"].id, county.pupils["s3"].id_number
    finally:
        engine.dispose()

    done = mealroll(env, "subsidy", "explain", str(s3_id), "--year", "2024")
    assert done.returncode == 0, done.stderr
    assert "2024-12  测试甲小学（5299010001）  膳食 100.00 元" in done.stdout
    assert "2025-01  测试乙学校（5299010002）  膳食 100.00 元" in done.stdout
    assert "县级配套 1.00 元/天（县定，2025年3月起）" in done.stdout
    assert "合计 total: 12 个月，膳食补助 1100.00 元" in done.stdout
    by_number = mealroll(env, "subsidy", "explain", s3_number, "--year", "2024")
    assert by_number.returncode == 0 and "1100.00" in by_number.stdout
    unknown = mealroll(env, "subsidy", "explain", "999999")
    assert unknown.returncode == 2 and "找不到学生 999999" in unknown.stderr
