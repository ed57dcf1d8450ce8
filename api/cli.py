"""The `mealroll` command line (DESIGN.md "Contracts" → CLI)."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select

from registry import annual_cycle, demo, imports, notifications, subsidy, workflows
from registry.db import make_engine, make_sessionmaker, unit_of_work, utcnow
from registry.errors import DomainError
from registry.file_store import local_file_store
from registry.settings import get_settings, local_zone
from registry.users import Role, create_user, find_user, grant_role

app = typer.Typer(help="营养改善计划实名制学生信息管理系统 mealroll", no_args_is_help=True)
db_app = typer.Typer(help="数据库 database", no_args_is_help=True)
users_app = typer.Typer(help="用户 users", no_args_is_help=True)
processes_app = typer.Typer(help="流程定义 process definitions", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
import_app = typer.Typer(help="批量导入 bulk import", no_args_is_help=True)
app.add_typer(processes_app, name="processes")
app.add_typer(import_app, name="import")
subsidy_app = typer.Typer(help="补助 subsidy", no_args_is_help=True)
app.add_typer(subsidy_app, name="subsidy")


def _sessions():  # type: ignore[no-untyped-def]
    return make_sessionmaker(make_engine(get_settings().db_url))


def _fail(err: DomainError) -> None:
    typer.secho(f"错误 error: {err.message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the latest schema (alembic upgrade head)."""
    import migrations

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrations.upgrade(settings.db_url)
    typer.echo(f"数据库已是最新 database at head: {_display_url(settings.db_url)}")


def _display_url(url: str) -> str:
    head, sep, tail = url.rpartition("@")
    return f"{head.split('://')[0]}://***@{tail}" if sep else url


@processes_app.command("deploy")
def processes_deploy(folder: Annotated[Path | None, typer.Argument(help="folder with *.bpmn and forms/")] = None) -> None:
    """Deploy every BPMN file of a folder; unchanged files keep their version."""
    folder = folder or get_settings().processes_dir
    try:
        with unit_of_work(_sessions()) as session:
            for version in workflows.deploy_directory(session, folder):
                typer.echo(f"{version.process_id} v{version.version} {version.sha256[:12]}")
    except DomainError as err:
        _fail(err)


@processes_app.command("export")
def processes_export(folder: Path) -> None:
    """Write the latest version of every deployed process to FOLDER (BPMN + forms/)."""
    with unit_of_work(_sessions()) as session:
        written = workflows.export_latest(session, folder)
    for path in written:
        typer.echo(str(path))


@users_app.command("create")
def users_create(username: str, display_name: Annotated[str, typer.Option("--name")],
                 password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)]) -> None:
    """Create a user (password asked for unless given)."""
    try:
        with unit_of_work(_sessions()) as session:
            create_user(session, username=username, display_name=display_name, password=password)
    except DomainError as err:
        _fail(err)
    typer.echo(f"已创建用户 created {username}")


@users_app.command("grant")
def users_grant(username: str, role: Role, org_unit: Annotated[str, typer.Option("--org-unit", help="org unit code")]) -> None:
    """Grant ROLE at an org unit (county, township or school code)."""
    try:
        with unit_of_work(_sessions()) as session:
            user = find_user(session, username=username)
            if user is None:
                typer.secho(f"错误 error: 没有用户 {username}", fg=typer.colors.RED, err=True)
                raise typer.Exit(2)
            grant_role(session, user=user, role=role, org_unit_code=org_unit)
    except DomainError as err:
        _fail(err)
    typer.echo(f"已授权 granted {role} @ {org_unit} to {username}")


@import_app.command("students")
def import_students(
    file: Annotated[Path, typer.Argument(help="XLSX or CSV in the import template's columns", exists=True, dir_okay=False)],
    school: Annotated[str, typer.Option("--school", help="10-digit school code")],
    user: Annotated[str | None, typer.Option("--user", help="recorded as uploader; default: the school's registrar")] = None,
    submit: Annotated[bool, typer.Option("--submit", help="submit to the principal when the check finds rows to import")] = False,
) -> None:
    """Check a school's student list here, with a progress bar; it enters the registry only when batch_intake ends
    with the county's confirmation (Art. 13)."""
    factory = _sessions()
    store = local_file_store(get_settings())
    try:
        with unit_of_work(factory) as session:
            uploader = imports.registrar_for(session, school, user)
            batch, created = imports.upload(session, actor=uploader, school_code=school, file_name=file.name,
                                            data=file.read_bytes(), store=store)
            batch_id, username = batch.id, uploader.username
        if not created:
            typer.echo(f"同一文件已上传过 this file is already batch {batch_id}（{batch.status}）")
        else:
            with unit_of_work(factory) as session:
                imports.claim(session, batch_id=batch_id, now=utcnow())
            with typer.progressbar(length=1, label="校验 checking", show_pos=True) as bar:
                def progress(done: int, total: int) -> None:
                    bar.length = total
                    bar.update(done - bar.pos)

                imports.check_batch(factory, batch_id, store=store, today=utcnow().date(), on_progress=progress)
        with unit_of_work(factory) as session:
            if submit and created:
                workflows.start_process(session, actor=imports.registrar_for(session, school, username),
                                        process_id="batch_intake", data={"batch_id": batch_id})
            batch = session.get(imports.ImportBatch, batch_id)
            _print_batch(imports.to_read(batch))
    except DomainError as err:
        _fail(err)


@subsidy_app.command("explain")
def subsidy_explain(
    student: Annotated[str, typer.Argument(help="the student's id in mealroll, or an ID number (身份证件号)")],
    year: Annotated[int | None, typer.Option("--year", help="one school year (from September); default: every month")] = None,
) -> None:
    """Month by month: the school, the days, the rates and the amount, with the rule that produced each."""
    from registry.students import Student

    today = utcnow().astimezone(local_zone()).date()
    with unit_of_work(_sessions()) as session:
        found = ([session.get(Student, int(student))] if student.isdigit() and len(student) < 15
                 else list(session.scalars(select(Student).where(Student.id_number == student.upper())
                                           .order_by(Student.id))))
        found = [s for s in found if s is not None]
        if not found:
            typer.secho(f"错误 error: 找不到学生 {student}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2)
        for pupil in found:
            result = subsidy.explain(session, pupil, year=year, today=today)
            typer.echo(f"学生 {pupil.id} {pupil.name}（{pupil.status}）")
            for line in result.lines:
                code, name = result.school_names[line.school_id]
                typer.echo(f"  {line.month}  {name}（{code}）  膳食 {line.meal_amount} 元  一补 {line.allowance_amount} 元"
                           f"  — {line.rule}")
            typer.echo(f"  合计 total: {len(result.lines)} 个月，膳食补助 {result.meal_total} 元，一补 {result.allowance_total} 元")
            if result.overlaps:
                typer.secho(f"  注意：{', '.join(result.overlaps)} 在两所学校都有在籍期间，请核查", fg=typer.colors.RED)


def _print_batch(batch: dict) -> None:
    counts = batch["counts"]
    typer.echo(f"批次 batch {batch['id']}：{batch['status_label']}（{batch['status']}）{batch['file_name']}")
    for problem in batch["problems"]:
        typer.secho(f"  {problem['message']}", fg=typer.colors.RED if problem["severity"] == "error" else None)
    if batch["rows_total"]:
        typer.echo(f"  共 {batch['rows_total']} 行 rows：可入库 new {counts.get('new', 0)}，有错误 invalid "
                   f"{counts.get('invalid', 0)}，已在册 existing {counts.get('existing', 0)}，县内重复 conflict "
                   f"{counts.get('conflict', 0)}，已入库 imported {counts.get('imported', 0)}")
        typer.echo(f"  逐行结果 row report: /imports/{batch['id']} ({batch['report_url']})")
    if batch["status"] == imports.BatchStatus.refused:
        raise typer.Exit(1)


def prepare() -> list[demo.DemoLogin]:
    """Migrate, deploy processes/, seed the demo county when the database is empty."""
    import migrations

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrations.upgrade(settings.db_url)
    logins: list[demo.DemoLogin] = []
    with unit_of_work(_sessions()) as session:
        workflows.deploy_directory(session, settings.processes_dir)
        if demo.is_empty(session):
            logins = demo.seed_demo_county(session, password=settings.demo_password)
            demo.seed_demo_students(session, today=utcnow().astimezone(local_zone()).date())
            # Demo addresses, so that reminders show in county_admin's outbox (/notifications/outbox).
            notifications.give_demo_addresses(session, usernames=[login.username for login in logins])
    with unit_of_work(_sessions()) as session:
        # The beat arms it hourly; once now, so a fresh demo shows this school year's autumn cycle at once.
        annual_cycle.arm(session)
    return logins


def _print_logins(logins: list[demo.DemoLogin]) -> None:
    if not logins:
        return
    typer.secho("\n演示县已创建，以下账号只显示这一次 / demo county created, passwords shown once:", bold=True)
    for login in logins:
        typer.echo(f"  {login.username:<13} {login.password:<16} {login.role:<18} {login.org_unit}  {login.display_name}")
    typer.echo("")


@app.command()
def up(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Migrate, deploy, seed the demo county, and run web + worker + beat until Ctrl-C."""
    _print_logins(prepare())
    if os.getpgrp() != os.getpid():
        # Lead a process group of our own, so that stopping the launcher reaches beat's process too.
        os.setpgrp()
    stopping = False

    def stop(*_args: object) -> None:
        nonlocal stopping
        stopping = True

    # Handlers first: a signal between spawning and installing them would orphan the children.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    exe = [sys.executable, "-m", "api.cli"]
    children = [subprocess.Popen([*exe, "serve", "--host", host, "--port", str(port)]),
                subprocess.Popen([*exe, "worker", "--beat"])]
    typer.echo(f"mealroll 已启动 started: http://{host}:{port}/  (Ctrl-C 停止 stops)")
    while not stopping and all(child.poll() is None for child in children):
        time.sleep(0.5)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.killpg(os.getpgrp(), signal.SIGTERM)
    try:
        for child in children:
            child.wait(timeout=20)
    except subprocess.TimeoutExpired:
        for child in children:
            child.kill()
        # Grandchildren too (beat's process): everything in the group but ourselves.
        for pid in _group_members(os.getpgrp()):
            if pid != os.getpid():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    failed = [c.returncode for c in children if c.returncode not in (0, -signal.SIGTERM, -signal.SIGINT)]
    raise typer.Exit(1 if failed and not stopping else 0)


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    members.append(int(entry.name))
            except ProcessLookupError:
                continue
    return members


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Run the web server only (production: one per app server)."""
    import uvicorn

    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, workers=workers,
                proxy_headers=True, log_level="info")


@app.command()
def worker(beat: Annotated[bool, typer.Option("--beat/--no-beat", help="also run beat in this worker")] = False,
           concurrency: int = 1) -> None:
    """Run a Celery worker (with --beat: embedded scheduler too; with Redis, redbeat makes that safe everywhere)."""
    from workers.app import celery_app

    argv = ["worker", "--loglevel=INFO", f"--concurrency={concurrency}"]
    if get_settings().broker.startswith("filesystem"):
        argv.append("--pool=solo")
    if beat:
        argv.append("-B")
    celery_app.worker_main(argv)


@app.command()
def beat() -> None:
    """Run the beat scheduler only."""
    from workers.app import celery_app

    celery_app.start(["beat", "--loglevel=INFO"])


if __name__ == "__main__":
    app()
