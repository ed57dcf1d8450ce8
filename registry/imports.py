"""Bulk intake (Art. 13): a school's student list uploaded, checked row by row, reviewed and confirmed.

upload → a worker reads and checks every row into import_row (progress on the batch) → the
registrar submits the batch_intake process → principal review → the county reviewer confirms,
excluding rows → the rows enter the registry as active records in one transaction. Nothing reaches
the student table before that confirmation, so a refused or abandoned batch leaves no trace there.

Art. 7 (one person, one number, county-wide) decides each row's outcome against the registry and
the other batches still under way:
- `existing`: this child is already live at this school (or in another open batch of this school):
  skipped, which is what makes uploading the same list, or a corrected copy of it, safe;
- `conflict`: live at another school of the county, or in another school's open batch: held back
  and listed for the county reviewer, never imported silently; after the county has settled where
  the child belongs (a transfer, or the other school's correction) the school enters the child alone;
- `invalid`: the rules found errors: never imported; fix the row in the report and upload again.
The state at confirmation decides: outcomes are worked out again inside the confirming transaction.
"""

import re
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from sqlalchemy import ForeignKey, Index, String, Text, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship, sessionmaker

from registry.access import holds, mask_id_number, may_see_full_id, scope_clause, sees
from registry.audit import AuditEntry, record
from registry.code_tables import load_code_tables
from registry.db import Base, JSONType, UTCDateTime, reserve_ids, unit_of_work, utcnow, write_row
from registry.errors import Conflict, InvalidTransition, NotFound, PermissionDenied, RuleViolation, msg
from registry.file_store import FileStore
from registry.org_units import OrgKind, OrgUnit, county_path_of, find_org_unit
from registry.rules.findings import Finding
from registry.student_files import RowReport, build_report, check_rows, read_rows
from registry.students import LIVE_STATUSES, STUDENT_FIELDS, EnrolmentPeriod, Student, StudentStatus, period_values
from registry.users import Role, RoleGrant, User, find_user

MAX_UPLOAD_BYTES = 50 * 1024 * 1024  # a 60k-row XLSX is about 6 MB; ten times that is no student list
# A worker that stopped mid-check (killed, machine restarted) left its batch "validating";
# another worker takes it over once it has reported no progress for this long.
STALE_AFTER = timedelta(minutes=10)
LISTED_ROWS = 200  # rows with problems shown on a page; the XLSX report has them all
_CHUNK = 900  # ID numbers per IN (...) list: well under SQLite's bound-parameter limit
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class BatchStatus(StrEnum):
    queued = "queued"          # uploaded, waiting for a worker
    validating = "validating"  # a worker is reading and checking it
    validated = "validated"    # the row report is ready; the registrar may submit it
    refused = "refused"        # the file as a whole could not be read (wrong type, header, ...)
    failed = "failed"          # the check itself broke: our fault, logged; upload again
    submitted = "submitted"    # batch_intake is running
    confirmed = "confirmed"
    returned = "returned"
    rejected = "rejected"
    discarded = "discarded"    # dropped by the registrar before submitting


BATCH_STATUS_LABELS = {
    BatchStatus.queued: "排队等待校验", BatchStatus.validating: "正在校验", BatchStatus.validated: "已校验，待提交",
    BatchStatus.refused: "文件无法导入", BatchStatus.failed: "校验失败", BatchStatus.submitted: "审核中",
    BatchStatus.confirmed: "已确认入库", BatchStatus.returned: "已退回", BatchStatus.rejected: "已驳回",
    BatchStatus.discarded: "已放弃",
}
# Uploading the same file again while one of these holds it gives back that batch, not a second one.
SAME_FILE_STATUSES = (BatchStatus.queued, BatchStatus.validating, BatchStatus.validated, BatchStatus.submitted,
                      BatchStatus.confirmed)
# Batches whose new rows may still enter the registry: other uploads are checked against them.
OPEN_STATUSES = (BatchStatus.validated, BatchStatus.submitted)


class RowOutcome(StrEnum):
    new = "new"
    invalid = "invalid"
    existing = "existing"
    conflict = "conflict"
    imported = "imported"
    excluded = "excluded"  # left out by the county reviewer


ROW_OUTCOME_LABELS = {
    RowOutcome.new: "待导入", RowOutcome.invalid: "有错误，不导入", RowOutcome.existing: "已在册，跳过",
    RowOutcome.conflict: "县内重复，暂不导入", RowOutcome.imported: "已入库", RowOutcome.excluded: "县级排除",
}


class ImportBatch(Base):
    __tablename__ = "import_batch"

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True)
    file_name: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    file_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default=BatchStatus.queued, index=True)
    rows_total: Mapped[int] = mapped_column(default=0)
    rows_done: Mapped[int] = mapped_column(default=0)
    # Rows per RowOutcome, kept current so lists and pages need not count 60k rows.
    counts: Mapped[dict[str, int]] = mapped_column(JSONType, default=dict)
    problems: Mapped[list[dict[str, str]]] = mapped_column(JSONType, default=list)  # about the file as a whole
    columns: Mapped[list[str]] = mapped_column(JSONType, default=list)  # the file's fields, in its order
    report_key: Mapped[str | None] = mapped_column(String(64))
    comment: Mapped[str | None] = mapped_column(Text)  # the reviewer's, when returned or rejected
    created_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Last sign of life from the worker checking it: a stale one is taken over (STALE_AFTER).
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    school: Mapped[OrgUnit] = relationship(lazy="joined")
    created_by: Mapped[User] = relationship()


Index("ix_import_batch_school_sha256", ImportBatch.school_id, ImportBatch.sha256)


class ImportRow(Base):
    __tablename__ = "import_row"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("import_batch.id"))
    row_number: Mapped[int]  # as the spreadsheet numbers it
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)  # normalised student fields
    errors: Mapped[list[str]] = mapped_column(JSONType, default=list)
    warnings: Mapped[list[str]] = mapped_column(JSONType, default=list)
    outcome: Mapped[str] = mapped_column(String(12))
    note: Mapped[str | None] = mapped_column(Text)  # why existing or conflict: where the child already is
    # Copied out of `data` for rows without errors: the county-wide duplicate check looks them up.
    id_number: Mapped[str | None] = mapped_column(String(30), index=True)
    id_aux: Mapped[str] = mapped_column(String(40), default="")
    student_id: Mapped[int | None] = mapped_column(ForeignKey("student.id"))


Index("uq_import_row_batch_row", ImportRow.batch_id, ImportRow.row_number, unique=True)


# --- upload ------------------------------------------------------------------------------------

def _school(session: Session, code: str) -> OrgUnit:
    school = find_org_unit(session, code=code)
    if school is None or school.kind != OrgKind.school:
        raise RuleViolation(msg("学校代码：{code} 不是本系统中的学校", code=code),
                            details=[{"field": "school_code", "message": msg("学校不存在")}])
    return school


def upload(session: Session, *, actor: User, school_code: str, file_name: str, data: bytes,
           store: FileStore) -> tuple[ImportBatch, bool]:
    """Keep the file and queue it for checking. The same file again for the same school, while a
    batch still holds it, gives back that batch: (batch, created)."""
    school = _school(session, school_code)
    if not holds(actor, Role.school_registrar, school):
        raise PermissionDenied(msg("只有{name}的学籍管理员可以上传学生名单", name=school.name))
    if not data:
        raise RuleViolation(msg("文件：上传的文件是空的"), details=[{"field": "file", "message": msg("空文件")}])
    if len(data) > MAX_UPLOAD_BYTES:
        raise RuleViolation(msg("文件：超过 {value} MB，不像是一所学校的学生名单", value=MAX_UPLOAD_BYTES // 1024 // 1024),
                            details=[{"field": "file", "message": msg("文件过大")}])
    stored = store.put(data, content_type="application/octet-stream")
    same = session.scalars(select(ImportBatch).where(
        ImportBatch.school_id == school.id, ImportBatch.sha256 == stored.sha256,
        ImportBatch.status.in_(SAME_FILE_STATUSES)).order_by(ImportBatch.id.desc()).limit(1)).first()
    if same is not None:
        return same, False
    batch = ImportBatch(school_id=school.id, school=school, file_name=file_name[:200] or "upload",
                        sha256=stored.sha256, file_key=stored.key, status=BatchStatus.queued, counts={},
                        problems=[], columns=[], created_by_id=actor.id, created_by=actor)
    session.add(batch)
    session.flush()
    record(session, actor=actor, action="import.upload", object_type="import_batch", object_id=batch.id,
           org_unit_id=school.id, after={"file_name": batch.file_name, "sha256": batch.sha256, "bytes": len(data)})
    return batch, True


# --- checking (the worker's job) -----------------------------------------------------------------

def _stale_or_queued(now: datetime) -> Any:
    return (ImportBatch.status == BatchStatus.queued) | (
        (ImportBatch.status == BatchStatus.validating) & (ImportBatch.updated_at < now - STALE_AFTER))


def _take(session: Session, batch_id: int, now: datetime) -> bool:
    # Compare-and-set: of two workers polling at once, one wins each batch.
    return bool(session.execute(
        update(ImportBatch).where(ImportBatch.id == batch_id, _stale_or_queued(now))
        .values(status=BatchStatus.validating, updated_at=now, rows_done=0)
        .execution_options(synchronize_session=False)).rowcount)


def claim_next(session: Session, *, now: datetime) -> int | None:
    """A queued batch (or one whose worker went silent), marked validating for this worker."""
    candidates = session.scalars(select(ImportBatch.id).where(_stale_or_queued(now))
                                 .order_by(ImportBatch.id).limit(5)).all()
    return next((batch_id for batch_id in candidates if _take(session, batch_id, now)), None)


def claim(session: Session, *, batch_id: int, now: datetime) -> None:
    """Take one batch to check here (the command line), so that no worker takes it too."""
    if not _take(session, batch_id, now):
        raise InvalidTransition(msg("导入批次 {batch_id} 已在校验中或已校验", batch_id=batch_id))


def mark_failed(session: Session, *, batch_id: int) -> None:
    """The check broke (a bug, a full disk): say so on the page instead of "checking" forever."""
    write_row(session, ImportBatch, batch_id, {
        "status": BatchStatus.failed, "finished_at": utcnow(), "updated_at": utcnow(),
        "problems": [{"field": "file", "code": "failed", "severity": "error",
                      "message": msg("系统校验该文件时出错，已记录。请稍后重新上传；如仍出错请联系县营养办")}]})
    batch = session.get(ImportBatch, batch_id)
    record(session, actor=None, action="import.fail", object_type="import_batch", object_id=batch_id,
           org_unit_id=batch.school_id if batch else None)


def _finding_dict(finding: Finding) -> dict[str, str]:
    return {"field": finding.field, "code": finding.code, "message": finding.message, "severity": finding.severity}


def check_batch(factory: sessionmaker[Session], batch_id: int, *, store: FileStore, today: date,
                on_progress: Callable[[int, int], None] | None = None) -> ImportBatch:
    """Read and check every row of a claimed batch and stage the rows (the row report is built on download).

    Progress is committed as it goes (its own short transactions) so that the page polling the
    batch sees rows counted up; the rows themselves are staged in one transaction at the end.
    """
    with unit_of_work(factory) as session:
        batch = session.get(ImportBatch, batch_id)
        if batch is None:
            raise NotFound(msg("找不到导入批次 {batch_id}", batch_id=batch_id))
        data = store.open(batch.file_key)
        file_name = batch.file_name

    codes = load_code_tables()
    result = read_rows(data, file_name, codes=codes)
    if result.refused or not result.rows:
        problems = [_finding_dict(p) for p in result.problems] or [
            {"field": "file", "code": "no_rows", "severity": "error", "message": msg("{file_name}：表头下面没有学生行",
                                                                                     file_name=file_name)}]
        with unit_of_work(factory) as session:
            write_row(session, ImportBatch, batch_id, {
                "status": BatchStatus.refused, "problems": problems, "columns": result.columns,
                "rows_total": 0, "finished_at": utcnow(), "updated_at": utcnow()})
            batch = session.get(ImportBatch, batch_id)
            record(session, actor=None, action="import.refuse", object_type="import_batch", object_id=batch_id,
                   org_unit_id=batch.school_id, after={"problems": [p["message"] for p in problems]})
        return batch

    total = len(result.rows)

    def progress(done: int) -> None:
        with unit_of_work(factory) as session:
            write_row(session, ImportBatch, batch_id, {"rows_done": done, "rows_total": total, "updated_at": utcnow()})
        if on_progress is not None:
            on_progress(done, total)

    progress(0)
    reports = check_rows(result.rows, today=today, codes=codes, on_progress=progress)

    with unit_of_work(factory) as session:
        batch = session.get(ImportBatch, batch_id, with_for_update={"of": ImportBatch})
        school = batch.school
        rows = []
        for report in reports:
            row_data = {**report.data}
            extra: list[str] = []
            if not row_data.get("school_code"):
                row_data["school_code"] = school.code
            elif row_data["school_code"] != school.code:
                extra.append(f"学校代码：{row_data['school_code']} 不是本次上传的学校 {school.code}（{school.name}）")
            errors = [e.message for e in report.errors] + extra
            rows.append({
                "batch_id": batch_id, "row_number": report.row_number, "data": row_data, "errors": errors,
                "warnings": [w.message for w in report.warnings],
                "outcome": RowOutcome.invalid if errors else RowOutcome.new, "note": None,
                "id_number": None if errors else row_data["id_number"],
                "id_aux": "" if errors else (row_data.get("student_number_aux") or ""), "student_id": None,
            })
        _classify(session, batch, rows)
        for chunk in _chunks(rows, 5000):
            session.connection().execute(insert(ImportRow.__table__), chunk)
        counts = _count(rows)
        write_row(session, ImportBatch, batch_id, {
            "status": BatchStatus.validated, "rows_total": total, "rows_done": total, "counts": counts,
            "problems": [_finding_dict(p) for p in result.problems], "columns": result.columns,
            "finished_at": utcnow(), "updated_at": utcnow()})
        record(session, actor=None, action="import.check", object_type="import_batch", object_id=batch_id,
               org_unit_id=school.id, after={"rows": total, **counts})
    return batch


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _count(rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    counts = {outcome.value: 0 for outcome in RowOutcome}
    for row in rows:
        counts[row["outcome"]] += 1
    return counts


def _report(session: Session, batch: ImportBatch) -> bytes:
    """The row report from the staged rows, with the registry's verdict added to each row's messages."""
    def as_findings(messages: list[str], severity: Literal["error", "warning"]) -> list[Finding]:
        return [Finding("", "", message, severity) for message in messages]

    reports = []
    for row in session.scalars(select(ImportRow).where(ImportRow.batch_id == batch.id)
                               .order_by(ImportRow.row_number).execution_options(yield_per=2000)):
        errors, warnings = list(row.errors), list(row.warnings)
        if row.note and row.outcome in (RowOutcome.conflict, RowOutcome.excluded):
            errors.append(row.note)
        elif row.note:
            warnings.append(row.note)
        reports.append(RowReport(row.row_number, row.data, as_findings(errors, "error"), as_findings(warnings, "warning")))
    problems = [Finding(p["field"], p["code"], p["message"], p["severity"]) for p in batch.problems or []]
    return build_report(reports, batch.columns, problems=problems)


# --- Art. 7 against the registry and the other open batches ------------------------------------

_LIVE_BY_ID = (
    select(Student.id_number, func.coalesce(Student.student_number_aux, "").label("aux"), Student.school_id,
           Student.status, OrgUnit.name.label("school_name"))
    .join(OrgUnit, Student.school_id == OrgUnit.id)
    .where(Student.id_number.in_(bindparam("ids", expanding=True)), Student.status.in_(LIVE_STATUSES),
           OrgUnit.path.startswith(bindparam("county_path"))))
_OPEN_BATCH_ROWS_BY_ID = (
    select(ImportRow.id_number, ImportRow.id_aux.label("aux"), ImportBatch.id.label("batch_id"),
           ImportBatch.school_id, OrgUnit.name.label("school_name"))
    .join(ImportBatch, ImportRow.batch_id == ImportBatch.id)
    .join(OrgUnit, ImportBatch.school_id == OrgUnit.id)
    .where(ImportRow.id_number.in_(bindparam("ids", expanding=True)), ImportRow.outcome == RowOutcome.new,
           ImportBatch.status.in_(OPEN_STATUSES), ImportBatch.id != bindparam("batch_id"),
           OrgUnit.path.startswith(bindparam("county_path"))))


def _classify(session: Session, batch: ImportBatch, rows: list[dict[str, Any]]) -> None:
    """Set each checkable row's outcome: new, existing (here already) or conflict (elsewhere)."""
    candidates = [row for row in rows if row["outcome"] in (RowOutcome.new, RowOutcome.existing, RowOutcome.conflict)]
    county_path = county_path_of(batch.school)
    conn = session.connection()
    for chunk in _chunks(candidates, _CHUNK):
        ids = sorted({row["id_number"] for row in chunk})
        live: dict[tuple[str, str], list[Any]] = {}
        for hit in conn.execute(_LIVE_BY_ID, {"ids": ids, "county_path": county_path}):
            live.setdefault((hit.id_number, hit.aux), []).append(hit)
        batched: dict[tuple[str, str], list[Any]] = {}
        for hit in conn.execute(_OPEN_BATCH_ROWS_BY_ID, {"ids": ids, "county_path": county_path, "batch_id": batch.id}):
            batched.setdefault((hit.id_number, hit.aux), []).append(hit)
        for row in chunk:
            key = (row["id_number"], row["id_aux"])
            students, others = live.get(key, []), batched.get(key, [])
            elsewhere = [s.school_name for s in students if s.school_id != batch.school_id] + \
                        [f"{b.school_name}（第 {b.batch_id} 批）" for b in others if b.school_id != batch.school_id]
            if elsewhere:
                row["outcome"] = RowOutcome.conflict
                row["note"] = (f"身份证件号：县内{'、'.join(sorted(set(elsewhere)))}已有此证件号的学生或待确认名单"
                               "（一人一号），本行暂不导入，由县级核实后处理")
            elif students:
                row["outcome"] = RowOutcome.existing
                row["note"] = "本校已有此学生的学籍记录（在籍或待审核），跳过，不重复录入"
            elif others:
                row["outcome"] = RowOutcome.existing
                row["note"] = f"本校第 {others[0].batch_id} 批名单中已有此学生，跳过，不重复录入"
            else:
                row["outcome"], row["note"] = RowOutcome.new, None


# --- reading --------------------------------------------------------------------------------

def get_batch(session: Session, *, actor: User, batch_id: int) -> ImportBatch:
    """Outside the caller's scope a batch does not exist for them: 404, never 403."""
    batch = session.get(ImportBatch, batch_id)
    if batch is None or not sees(actor, batch.school):
        raise NotFound(msg("找不到导入批次 {batch_id}", batch_id=batch_id))
    return batch


def list_batches(session: Session, *, actor: User, limit: int = 50, offset: int = 0) -> tuple[list[ImportBatch], int]:
    query = (select(ImportBatch).join(OrgUnit, ImportBatch.school_id == OrgUnit.id)
             .where(scope_clause(actor, OrgUnit.path)))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(ImportBatch.id.desc()).limit(limit).offset(offset)).all()
    return list(rows), total


def batch_rows(session: Session, *, actor: User, batch: ImportBatch, outcome: str | None = None,
               problems_only: bool = False, limit: int = LISTED_ROWS, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Staged rows as the caller may see them: ID numbers masked unless their role sees them in full."""
    query = select(ImportRow).where(ImportRow.batch_id == batch.id)
    if outcome:
        query = query.where(ImportRow.outcome == outcome)
    elif problems_only:
        query = query.where(ImportRow.outcome.in_((RowOutcome.invalid, RowOutcome.conflict, RowOutcome.existing))
                            | (func.length(func.coalesce(ImportRow.note, "")) > 0))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(ImportRow.row_number).limit(limit).offset(offset)).all()
    full = may_see_full_id(actor, batch.school)
    return [_row_read(row, full_id=full) for row in rows], total


def _row_read(row: ImportRow, *, full_id: bool) -> dict[str, Any]:
    data = dict(row.data)
    if not full_id:
        for field in ("id_number", "student_number", "national_student_number"):
            if isinstance(data.get(field), str):
                data[field] = mask_id_number(data[field])
    return {"row_number": row.row_number, "outcome": row.outcome, "outcome_label": ROW_OUTCOME_LABELS[RowOutcome(row.outcome)],
            "name": data.get("name"), "id_number": data.get("id_number"), "grade": data.get("grade"),
            "class_name": data.get("class_name"), "errors": row.errors, "warnings": row.warnings, "note": row.note,
            "student_id": row.student_id}


def to_read(batch: ImportBatch) -> dict[str, Any]:
    return {
        "id": batch.id, "school": batch.school.as_ref(), "school_code": batch.school.code, "file_name": batch.file_name,
        "sha256": batch.sha256, "status": batch.status, "status_label": BATCH_STATUS_LABELS[BatchStatus(batch.status)],
        "rows_total": batch.rows_total, "rows_done": batch.rows_done,
        "progress": round(batch.rows_done / batch.rows_total, 3) if batch.rows_total else 0.0,
        "counts": batch.counts or {}, "problems": batch.problems or [], "comment": batch.comment,
        "created_by": batch.created_by.display_name if batch.created_by else None,
        "created_at": batch.created_at.isoformat(), "finished_at": batch.finished_at.isoformat() if batch.finished_at else None,
        "report_url": f"/api/imports/{batch.id}/report.xlsx" if batch.rows_total else None,
    }


def report_of(session: Session, *, actor: User, batch_id: int, store: FileStore) -> tuple[ImportBatch, bytes]:
    """Every row with its messages, as XLSX. Built on first download, not while checking: it is the
    slowest part of a 60k-row check (bench/RESULTS.md), and a batch without errors may never need it.
    Confirmation changes the outcomes, so it clears the stored copy."""
    batch = get_batch(session, actor=actor, batch_id=batch_id)
    if not batch.rows_total:
        raise NotFound(msg("该批次没有可下载的校验结果"))
    if not may_see_full_id(actor, batch.school):
        raise PermissionDenied(msg("校验结果含完整身份证件号，您的角色不能下载"))
    if batch.report_key is not None and store.exists(batch.report_key):
        data = store.open(batch.report_key)
    else:
        data = _report(session, batch)
        write_row(session, ImportBatch, batch.id, {"report_key": store.put(data, content_type=XLSX).key})
    record(session, actor=actor, action="import.report", object_type="import_batch", object_id=batch.id,
           org_unit_id=batch.school_id)
    return batch, data


# --- the registrar's decisions ------------------------------------------------------------------

def discard(session: Session, *, actor: User, batch_id: int) -> ImportBatch:
    batch = get_batch(session, actor=actor, batch_id=batch_id)
    if not holds(actor, Role.school_registrar, batch.school):
        raise PermissionDenied(msg("只有本校学籍管理员可以放弃导入批次"))
    if batch.status not in (BatchStatus.validated, BatchStatus.refused, BatchStatus.failed):
        raise InvalidTransition(msg("{batch_status}的批次不能放弃",
                                    batch_status=msg(BATCH_STATUS_LABELS[BatchStatus(batch.status)])))
    before = batch.status
    write_row(session, ImportBatch, batch.id, {"status": BatchStatus.discarded, "updated_at": utcnow()})
    record(session, actor=actor, action="import.discard", object_type="import_batch", object_id=batch.id,
           org_unit_id=batch.school_id, before={"status": before}, after={"status": BatchStatus.discarded})
    return batch


def submit(session: Session, *, actor: User, batch_id: int) -> ImportBatch:
    """The start of batch_intake: only a checked batch with rows to import goes to the principal."""
    batch = session.get(ImportBatch, batch_id, with_for_update={"of": ImportBatch})
    if batch is None or not sees(actor, batch.school):
        raise NotFound(msg("找不到导入批次 {batch_id}", batch_id=batch_id))
    if not holds(actor, Role.school_registrar, batch.school):
        raise PermissionDenied(msg("只有本校学籍管理员可以提交导入批次"))
    if batch.status != BatchStatus.validated:
        raise InvalidTransition(msg("{batch_status}的批次不能提交审核",
                                    batch_status=msg(BATCH_STATUS_LABELS[BatchStatus(batch.status)])))
    if not (batch.counts or {}).get(RowOutcome.new):
        raise RuleViolation(msg("该批次没有可导入的学生行：请修改校验结果中的错误后重新上传"),
                            details=[{"field": "batch_id", "message": msg("没有可导入的行")}])
    write_row(session, ImportBatch, batch.id, {"status": BatchStatus.submitted, "updated_at": utcnow()})
    record(session, actor=actor, action="import.submit", object_type="import_batch", object_id=batch.id,
           org_unit_id=batch.school_id, before={"status": BatchStatus.validated}, after={"status": BatchStatus.submitted})
    return batch


# --- the county's decision ------------------------------------------------------------------------

_ROW_LIST = re.compile(r"^\s*\d+(\s*-\s*\d+)?(\s*[,，、;；\s]\s*\d+(\s*-\s*\d+)?)*\s*$")


def parse_row_numbers(text: str | None) -> set[int]:
    """"5, 17, 30-42" → {5, 17, 30, …, 42}; what the reviewer types to leave rows out."""
    if not text or not text.strip():
        return set()
    if not _ROW_LIST.match(text):
        raise RuleViolation(msg("排除的行号：请填写行号，用逗号分隔，连续的行可写成 30-42"),
                            details=[{"field": "excluded_rows", "message": msg("格式不正确")}])
    numbers: set[int] = set()
    for part in re.split(r"[,，、;；\s]+", re.sub(r"\s*-\s*", "-", text.strip())):
        first, _, last = part.partition("-")
        low, high = int(first), int(last or first)
        if high < low or high - low > 100_000:
            raise RuleViolation(msg("排除的行号：{part} 不是有效的行号范围", part=part),
                                details=[{"field": "excluded_rows", "message": msg("范围不正确")}])
        numbers.update(range(low, high + 1))
    return numbers


_STAGED_ROWS = (select(ImportRow.id, ImportRow.row_number, ImportRow.data, ImportRow.outcome, ImportRow.id_number,
                       ImportRow.id_aux, ImportRow.note)
                .where(ImportRow.batch_id == bindparam("batch_id")).order_by(ImportRow.row_number))
_SET_OUTCOME = (update(ImportRow.__table__).where(ImportRow.id == bindparam("row_id"))
                .values(outcome=bindparam("new_outcome"), note=bindparam("new_note"),
                        student_id=bindparam("new_student_id")))


def confirm(session: Session, *, batch_id: int, excluded_rows: str | None, actor: User | None, now: datetime,
            instance_id: int | None = None) -> dict[str, int]:
    """确认入库: the batch's new rows become active students, each with its first enrolment period."""
    batch = session.get(ImportBatch, batch_id, with_for_update={"of": ImportBatch}, populate_existing=True)
    if batch is None or batch.status != BatchStatus.submitted:
        raise InvalidTransition(msg("只能确认审核中的导入批次"))
    excluded = parse_row_numbers(excluded_rows)
    conn = session.connection()
    rows = [row._asdict() for row in conn.execute(_STAGED_ROWS, {"batch_id": batch.id})]
    unknown = sorted(excluded - {row["row_number"] for row in rows})
    if unknown:
        listed = "、".join(str(n) for n in unknown[:10]) + ("等" if len(unknown) > 10 else "")
        raise RuleViolation(msg("排除的行号：第 {listed} 行不在本批名单中", listed=listed),
                            details=[{"field": "excluded_rows", "message": msg("行号不存在")}])

    checkable = [row for row in rows if row["outcome"] != RowOutcome.invalid]
    left_out = [row for row in checkable if row["row_number"] in excluded]
    staged = [{**row, "checked_as": (row["outcome"], row["note"])} for row in checkable if row["row_number"] not in excluded]
    # Another school's batch or an intake may have been confirmed since the check: look again.
    _classify(session, batch, staged)
    student_ids = _insert_students(session, batch, [row for row in staged if row["outcome"] == RowOutcome.new],
                                   actor=actor, now=now, instance_id=instance_id)

    changes = [{"row_id": row["id"], "new_outcome": RowOutcome.imported, "new_note": None, "new_student_id": student_ids[row["id"]]}
               for row in staged if row["id"] in student_ids]
    changes += [{"row_id": row["id"], "new_outcome": row["outcome"], "new_note": row["note"], "new_student_id": None}
                for row in staged if row["id"] not in student_ids and (row["outcome"], row["note"]) != row["checked_as"]]
    changes += [{"row_id": row["id"], "new_outcome": RowOutcome.excluded, "new_note": "县级审核时排除", "new_student_id": None}
                for row in left_out]
    for chunk in _chunks(changes, 5000):
        conn.execute(_SET_OUTCOME, chunk)
    final = {o.value: 0 for o in RowOutcome} | dict(conn.execute(
        select(ImportRow.outcome, func.count()).where(ImportRow.batch_id == batch.id).group_by(ImportRow.outcome)).all())
    write_row(session, ImportBatch, batch.id, {"status": BatchStatus.confirmed, "counts": final, "report_key": None,
                                               "updated_at": now})
    record(session, actor=actor, action="import.confirm", object_type="import_batch", object_id=batch.id,
           org_unit_id=batch.school_id, instance_id=instance_id, after=final, reason=excluded_rows or None)
    return final


def _insert_students(session: Session, batch: ImportBatch, rows: list[dict[str, Any]], *, actor: User | None,
                     now: datetime, instance_id: int | None) -> dict[int, int]:
    """Bulk INSERTs (a county loads 60k at once): import_row id → new student id."""
    if not rows:
        return {}
    conn = session.connection()
    # Ids reserved up front: plain executemany, which psycopg pipelines, and no RETURNING or lookup after
    # (RETURNING's multi-row VALUES, then an IN lookup planned on stale statistics, took 90 s for 60k rows).
    new_ids = reserve_ids(session, Student.__table__, len(rows))
    values = []
    for row, new_id in zip(rows, new_ids, strict=True):
        data = row["data"]
        student = {field: data.get(field) for field in STUDENT_FIELDS}
        student.update(id=new_id, birth_date=date.fromisoformat(data["birth_date"]),
                       migrant_child=bool(data.get("migrant_child")), boarding_allowance=bool(data.get("boarding_allowance")),
                       school_id=batch.school_id, status=StudentStatus.active, created_at=now,
                       created_by_id=batch.created_by_id, confirmed_at=now, void_reason=None, photo_key=None,
                       photo_thumb_key=None)
        values.append(student)
    try:
        for chunk in _chunks(values, 5000):
            conn.execute(insert(Student.__table__), chunk)
    except IntegrityError as err:
        # A single intake of one of these IDs was confirmed between our check and this insert.
        raise Conflict(msg("确认入库时发现县内已有相同证件号的在籍学生（可能刚被其他学校确认），请重试"),
                       details=[{"field": "id_number", "message": msg("县内重复")}]) from err
    ids = {row["id"]: new_id for row, new_id in zip(rows, new_ids, strict=True)}
    by_row = {row["id"]: row for row in rows}
    periods = [{"student_id": sid, "school_id": batch.school_id, "from_month": by_row[rid]["data"]["enrolled_month"],
                "to_month": None, "instance_id": instance_id, **period_values(student)}
               for (rid, sid), student in zip(ids.items(), values, strict=True)]
    audits = [{"at": now, "actor_id": actor.id if actor else None, "action": "student.import", "object_type": "student",
               "object_id": str(sid), "org_unit_id": batch.school_id, "instance_id": instance_id,
               "before": None, "after": {"batch_id": batch.id, "row_number": by_row[rid]["row_number"],
                                         "status": StudentStatus.active}, "reason": None}
              for rid, sid in ids.items()]
    for chunk in _chunks(periods, 5000):
        conn.execute(insert(EnrolmentPeriod.__table__), chunk)
    for chunk in _chunks(audits, 5000):
        conn.execute(insert(AuditEntry.__table__), chunk)
    return ids


def close(session: Session, *, batch_id: int, decision: str, comment: str | None, actor: User | None,
          instance_id: int | None = None) -> None:
    """Returned or rejected: nothing was imported; the registrar fixes the file and uploads it again."""
    batch = session.get(ImportBatch, batch_id, with_for_update={"of": ImportBatch}, populate_existing=True)
    if batch is None or batch.status != BatchStatus.submitted:
        raise InvalidTransition(msg("只能退回或驳回审核中的导入批次"))
    status = BatchStatus.rejected if decision == "reject" else BatchStatus.returned
    write_row(session, ImportBatch, batch.id, {"status": status, "comment": comment, "updated_at": utcnow()})
    record(session, actor=actor, action=f"import.{status.value}", object_type="import_batch", object_id=batch.id,
           org_unit_id=batch.school_id, instance_id=instance_id, before={"status": BatchStatus.submitted},
           after={"status": status}, reason=comment)


def withdraw(session: Session, *, batch_id: int, reason: str, actor: User | None, instance_id: int | None = None) -> None:
    """The registrar took the submission back: the batch is checked again, to resubmit or discard."""
    batch = session.get(ImportBatch, batch_id, with_for_update={"of": ImportBatch}, populate_existing=True)
    if batch is None or batch.status != BatchStatus.submitted:
        raise InvalidTransition(msg("只能撤回审核中的导入批次"))
    write_row(session, ImportBatch, batch.id, {"status": BatchStatus.validated, "updated_at": utcnow()})
    record(session, actor=actor, action="import.withdraw", object_type="import_batch", object_id=batch.id,
           org_unit_id=batch.school_id, instance_id=instance_id, reason=reason,
           before={"status": BatchStatus.submitted}, after={"status": BatchStatus.validated})


def registrar_for(session: Session, school_code: str, username: str | None = None) -> User:
    """Who an import from the command line is recorded as: the named user, or the school's registrar."""
    school = _school(session, school_code)
    if username:
        user = find_user(session, username=username)
        if user is None:
            raise NotFound(msg("找不到用户 {username}", username=username))
        return user
    users = session.scalars(select(User).join(RoleGrant, RoleGrant.user_id == User.id)
                            .where(RoleGrant.role == Role.school_registrar, RoleGrant.org_unit_id == school.id)
                            .order_by(User.username)).all()
    if not users:
        raise NotFound(msg("{name}还没有学籍管理员：请用 --user 指定上传人", name=school.name))
    return users[0]
