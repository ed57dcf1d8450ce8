"""Data releases (信息提供审批, Art. 24): student-level data leaves the system only with county approval.

Art. 24: 未经上级教育部门批准，不得公开、提供、泄露、扩散学生相关信息, and never for commercial use. So a
direct export (student_lists.export) stays within the caller's scope and always masks ID numbers
and guardian phones; anything more is a request here, carried by the data_release process: the
requester asks, a county reviewer approves, returns it for revision or rejects it, and on approval
the file is built once, stored, and handed to the requester through a download grant.

Who may request (REQUESTER_ROLES), each within the scope of their grant:
- 县学生资助管理中心 (county_aid_center), anywhere in their county: requests of other departments
  (统计局, 卫健局, 民政局) come to the county and leave through it;
- 乡镇中心校管理员 (township_officer), within their township;
- 校长 (school_principal), for their own school (Art. 8: the principal answers for the school's data).
  Registrars ask their principal. County reviewers approve and so do not request; nobody approves
  a request of their own (one person may hold both roles in a small county). A returned request goes
  back to the requester's own lane, and only the requester revises it.

A request — the start data of `POST /api/processes/data_release/instances` and, wrapped as
`{"data_release": {...}}`, of the revision task:
    {"org_units": ["520199101"],   scope: 1-50 county, township or school codes inside the requester's scope
     "grades": [7, 8, 9],           optional, 1-9; none means every grade
     "statuses": ["active"],        optional, RELEASABLE_STATUSES; default 在籍 only (never 待审核, 已作废)
     "fields": ["name", "sex", "school_code", "grade", "class_name", "id_number"],   DESIGN "Student fields"
     "full": ["id_number"],         optional: id_number (unmasks the ID in 身份证件号, 学籍号 and 全国学籍号),
                                    guardian_phone; each only with its field requested. Masked otherwise.
     "purpose": "…",                5-200 characters: what the data is for (it is printed on the file)
     "recipient_department": "…", "recipient_person": "…",   who receives it, 2-100 / 2-50 characters
     "valid_days": 7,               optional, 1-30: the download link's life from approval
     "max_downloads": 3}            optional, 1-10
A request must match 1 to 100,000 students (a county has up to 60k): counted when filed, revised and
approved. The file is built in the approval's own transaction, which keeps approval, file and grant one
atomic step. bench/data_release.py, a generated 60k-student county on this 2-core machine under load
(load average ~8): the whole county with 5 fields 10 s, with all 28 fields 42 s on SQLite, 48 s on
PostgreSQL, nearly all of it openpyxl writing cells. Fine for the rare county-wide release; a scope
beyond one county, or a proxy timeout under a minute, would want the build in a worker.

The 审批编号 printed on the file is the number of the request's process instance, the number its printed
审批表 carries, so a copy found anywhere leads to the signed approval.

Download: only the requester, signed in (a department recipient gets the file from them, as the paper
copy was handed over before), within `valid_days` of approval and at most `max_downloads` times. The
page's link carries a random token rather than an id, so a link seen over a shoulder or in a log
reveals nothing, but the token is not a credential: without the requester's session it opens nothing. Every download and every refused
attempt is in the audit log with who, when and the client address. Files of releases that expired
or were used up are deleted by `purge_files` (workers: data_releases.purge).
"""

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Select, String, Text, func, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from registry.access import OVERSIGHT_ROLES, holds, mask_phone, oversees, scope_clause
from registry.audit import AuditEntry, record
from registry.db import Base, JSONType, UTCDateTime, utcnow
from registry.errors import (
    Conflict,
    DomainError,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    RuleViolation,
    join_messages,
    msg,
)
from registry.file_store import FileStore, MissingFile
from registry.org_units import KIND_LABELS, OrgKind, OrgUnit, find_org_unit
from registry.rules.student import FIELD_LABELS
from registry.settings import local_zone
from registry.student_files import COLUMNS
from registry.student_files.release import build_release
from registry.student_lists import EXPORT_LIMIT
from registry.students import STATUS_LABELS, Student, StudentStatus
from registry.users import ROLE_LABELS, Role, User

if TYPE_CHECKING:
    from registry.workflows import HumanTask

PROCESS_ID = "data_release"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

REQUESTER_ROLES = (Role.county_aid_center, Role.township_officer, Role.school_principal)
RELEASABLE_FIELDS = tuple(column.field for column in COLUMNS)
# The ID number appears whole in three fields (学籍主号 is the ID number, a G 学籍号 is G + ID number).
ID_FIELDS = ("id_number", "student_number", "national_student_number")
FULL_CHOICES = {"id_number": "身份证件号（含学籍号、全国学籍号）", "guardian_phone": "监护人电话"}
RELEASABLE_STATUSES = (StudentStatus.active, StudentStatus.suspended, StudentStatus.transferred_out,
                       StudentStatus.graduated, StudentStatus.dropped_out, StudentStatus.deceased)
GRADES = range(1, 10)
MAX_UNITS = 50
MAX_ROWS = EXPORT_LIMIT
VALID_DAYS = (1, 30, 7)  # low, high, default
MAX_DOWNLOADS = (1, 10, 3)
PURPOSE_LENGTH = (5, 200)
DEPARTMENT_LENGTH = (2, 100)
PERSON_LENGTH = (2, 50)
REQUEST_KEYS = frozenset({"org_units", "grades", "statuses", "fields", "full", "purpose", "recipient_department",
                          "recipient_person", "valid_days", "max_downloads"})
REVISION_TASKS = frozenset({"revise_request_county", "revise_request_township", "revise_request_school"})


class ReleaseStatus(StrEnum):
    open = "open"
    approved = "approved"
    rejected = "rejected"
    withdrawn = "withdrawn"


RELEASE_STATUS_LABELS = {ReleaseStatus.open: "审批中", ReleaseStatus.approved: "已批准",
                         ReleaseStatus.rejected: "已驳回", ReleaseStatus.withdrawn: "已撤回"}


class DownloadState(StrEnum):
    pending = "pending"
    closed = "closed"
    available = "available"
    expired = "expired"
    used_up = "used_up"
    purged = "purged"


DOWNLOAD_STATE_LABELS = {DownloadState.pending: "待审批", DownloadState.closed: "不提供",
                         DownloadState.available: "可下载", DownloadState.expired: "已过期",
                         DownloadState.used_up: "下载次数已用完", DownloadState.purged: "文件已删除"}


class DataRelease(Base):
    """One request, and once approved its file and download grant (token, expiry, count)."""

    __tablename__ = "data_release"

    id: Mapped[int] = mapped_column(primary_key=True)  # names it in URLs; the file shows `number`
    # Set by the process's first step: the request is filed before its instance exists.
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"), index=True)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    requester_role: Mapped[str] = mapped_column(String(40))
    # The smallest unit covering the whole scope: who oversees the request (and, as filed, the process's unit).
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"), index=True)
    scope: Mapped[dict[str, Any]] = mapped_column(JSONType)  # {"org_units": [codes], "grades": [...], "statuses": [...]}
    fields: Mapped[list[str]] = mapped_column(JSONType)
    full: Mapped[list[str]] = mapped_column(JSONType)
    purpose: Mapped[str] = mapped_column(Text)
    recipient_department: Mapped[str] = mapped_column(String(100))
    recipient_person: Mapped[str] = mapped_column(String(50))
    valid_days: Mapped[int]
    max_downloads: Mapped[int]
    rows_requested: Mapped[int]  # matching students when last filed or revised
    status: Mapped[str] = mapped_column(String(20), default=ReleaseStatus.open)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    close_comment: Mapped[str | None] = mapped_column(Text)
    # The file and its grant, from approval on.
    rows: Mapped[int | None]
    file_key: Mapped[str | None] = mapped_column(String(64))  # None once purged
    file_size: Mapped[int | None]
    token: Mapped[str | None] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    downloads: Mapped[int] = mapped_column(default=0)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    requested_by: Mapped[User] = relationship(foreign_keys=[requested_by_id], lazy="joined")
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])
    org_unit: Mapped[OrgUnit] = relationship(lazy="joined")

    @property
    def number(self) -> int:
        """The 审批编号 on the file: its process instance's number, as the printed 审批表 shows it, so a
        copy found anywhere leads to the signed approval. (The row's own id only names it in URLs.)"""
        return self.instance_id if self.instance_id is not None else self.id


# --- what a request says ------------------------------------------------------------------------

@dataclass(frozen=True)
class _Request:
    org_units: list[str]
    grades: list[int]
    statuses: list[str]
    fields: list[str]
    full: list[str]
    purpose: str
    recipient_department: str
    recipient_person: str
    valid_days: int
    max_downloads: int


@dataclass(frozen=True)
class _Scope:
    units: list[OrgUnit]  # outermost first; none covered by another
    common: OrgUnit
    role: Role
    rows: int


def _problem(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def _strings(data: dict[str, Any], key: str, label: str, problems: list[dict[str, str]]) -> list[str]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(_problem(key, msg("{label}：应为文本列表", label=label)))
        return []
    return list(dict.fromkeys(v.strip() for v in value if v.strip()))


def _text(data: dict[str, Any], key: str, label: str, bounds: tuple[int, int], problems: list[dict[str, str]]) -> str:
    value = data.get(key)
    text = " ".join(value.split()) if isinstance(value, str) else ""
    low, high = bounds
    if not text:
        problems.append(_problem(key, msg("{label}：必填", label=label)))
    elif len(text) < low:
        problems.append(_problem(key, msg("{label}：请写具体（至少 {low} 个字）", label=label, low=low)))
    elif len(text) > high:
        problems.append(_problem(key, msg("{label}：不能超过 {high} 个字", label=label, high=high)))
    return text


def _bounded(data: dict[str, Any], key: str, label: str, bounds: tuple[int, int, int],
             problems: list[dict[str, str]]) -> int:
    low, high, default = bounds
    value = data.get(key)
    if value is None or value == "":
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        problems.append(_problem(key, msg("{label}：应为 {low}–{high} 之间的整数", label=label, low=low, high=high)))
        return default
    return value


def _checked(data: Any) -> _Request:
    """Everything about a request that needs no database, every problem named at once."""
    if not isinstance(data, dict):
        raise RuleViolation(msg("申请内容应为 JSON 对象"), details=[_problem("data", msg("应为对象"))])
    problems = [_problem(k, msg("{key}：未知字段", key=k)) for k in sorted(set(data) - REQUEST_KEYS)]
    org_units = _strings(data, "org_units", msg("提供范围"), problems)
    if not org_units and not any(p["field"] == "org_units" for p in problems):
        problems.append(_problem("org_units", msg("提供范围：请至少选择一个县、乡镇或学校")))
    elif len(org_units) > MAX_UNITS:
        problems.append(_problem("org_units", msg("提供范围：最多 {max_units} 个单位，范围更大请选择上级单位", max_units=MAX_UNITS)))

    fields = _strings(data, "fields", msg("提供字段"), problems)
    unknown = [f for f in fields if f not in RELEASABLE_FIELDS]
    problems += [_problem("fields", msg("提供字段：{field} 不是学生信息的字段", field=f)) for f in unknown]
    if not fields and not any(p["field"] == "fields" for p in problems):
        problems.append(_problem("fields", msg("提供字段：请至少选择一项")))
    fields = [f for f in RELEASABLE_FIELDS if f in fields]  # the file's column order, whatever the asking order

    full = _strings(data, "full", msg("完整提供"), problems)
    for choice in full:
        if choice not in FULL_CHOICES:
            problems.append(_problem("full", msg("完整提供：只能选择身份证件号或监护人电话，不能是 {choice}", choice=choice)))
        elif choice == "id_number" and not set(ID_FIELDS) & set(fields):
            problems.append(_problem("full", msg("完整提供身份证件号：请同时选择身份证件号、学籍号或全国学籍号字段")))
        elif choice == "guardian_phone" and "guardian_phone" not in fields:
            problems.append(_problem("full", msg("完整提供监护人电话：请同时选择监护人电话字段")))

    statuses = _strings(data, "statuses", msg("学籍状态"), problems) or [StudentStatus.active.value]
    for status in statuses:
        if status not in RELEASABLE_STATUSES:
            shown = STATUS_LABELS.get(StudentStatus(status)) if status in StudentStatus.__members__ else status
            problems.append(_problem("statuses", msg("学籍状态：{shown}的记录不能提供", shown=shown)))

    grades = data.get("grades")
    if grades is None:
        grades = []
    elif not isinstance(grades, list) or not all(isinstance(g, int) and not isinstance(g, bool) and g in GRADES
                                                 for g in grades):
        problems.append(_problem("grades", msg("年级：应为 1–9 的整数列表")))
        grades = []

    request = _Request(
        org_units=org_units, grades=sorted(set(grades)), statuses=statuses, fields=fields,
        full=[c for c in FULL_CHOICES if c in full],
        purpose=_text(data, "purpose", msg("用途"), PURPOSE_LENGTH, problems),
        recipient_department=_text(data, "recipient_department", msg("接收单位"), DEPARTMENT_LENGTH, problems),
        recipient_person=_text(data, "recipient_person", msg("接收人"), PERSON_LENGTH, problems),
        valid_days=_bounded(data, "valid_days", msg("有效天数"), VALID_DAYS, problems),
        max_downloads=_bounded(data, "max_downloads", msg("下载次数"), MAX_DOWNLOADS, problems))
    if problems:
        raise RuleViolation(msg("信息提供申请有误：{problems}", problems=join_messages(p["message"] for p in problems)),
                            details=problems)
    return request


def requester_roles(user: User) -> list[Role]:
    return [role for role in REQUESTER_ROLES if any(g.role == role for g in user.grants)]


def _resolve(session: Session, *, user: User, org_units: list[str], grades: list[int], statuses: list[str],
             role: str | None = None) -> _Scope:
    """The scope's units, the requester's role over all of them, the unit covering them, the students matched."""
    if not requester_roles(user):
        raise PermissionDenied(msg("只有县学生资助管理中心、乡镇中心校管理员或校长可以申请提供学生信息（办法第二十四条）"))
    problems: list[dict[str, str]] = []
    units: list[OrgUnit] = []
    for code in org_units:
        unit = find_org_unit(session, code=code)
        if unit is None:
            problems.append(_problem("org_units", msg("提供范围：找不到单位 {code}", code=code)))
        else:
            units.append(unit)
    if problems:
        raise RuleViolation(msg("信息提供申请有误：{problems}", problems=join_messages(p["message"] for p in problems)),
                            details=problems)
    roles = [Role(role)] if role else REQUESTER_ROLES
    chosen = next((r for r in roles if all(holds(user, r, u) for u in units)), None)
    if chosen is None:
        outside = [u.name for u in units if not any(holds(user, r, u) for r in roles)] or [u.name for u in units]
        problem = _problem("org_units", msg("提供范围：{outside}不在您的管辖范围内", outside='、'.join(outside)))
        raise RuleViolation(problem["message"], details=[problem])
    # A unit inside another listed unit adds nothing.
    units = sorted({u.id: u for u in units}.values(), key=lambda u: u.path)
    units = [u for u in units if not any(o is not u and o.covers(u) for o in units)]
    common = _common_unit(session, units)
    rows = session.scalar(select(func.count()).select_from(
        _students(units, grades=grades, statuses=statuses).order_by(None).subquery())) or 0
    if rows == 0:
        problem = _problem("org_units", msg("提供范围：所选范围内没有符合条件的学生"))
        raise RuleViolation(problem["message"], details=[problem])
    if rows > MAX_ROWS:
        problem = _problem("org_units", msg("提供范围：共 {rows} 人，一次最多提供 {max_rows} 人，请缩小范围", rows=rows, max_rows=MAX_ROWS))
        raise RuleViolation(problem["message"], details=[problem])
    return _Scope(units=units, common=common, role=chosen, rows=rows)


def _common_unit(session: Session, units: list[OrgUnit]) -> OrgUnit:
    paths = [u.path.strip("/").split("/") for u in units]
    common: list[str] = []
    for level in zip(*paths, strict=False):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    unit = session.get(OrgUnit, int(common[-1])) if common else None
    if unit is None:  # units of two counties: two requests, each approved by its own county
        problem = _problem("org_units", msg("提供范围：只能是同一个县内的单位"))
        raise RuleViolation(problem["message"], details=[problem])
    return unit


def _students(units: list[OrgUnit], *, grades: list[int], statuses: list[str]) -> Select[tuple[Student]]:
    query = (select(Student).join(OrgUnit, Student.school_id == OrgUnit.id)
             .where(or_(*(OrgUnit.path.like(u.path + "%") for u in units)), Student.status.in_(statuses)))
    if grades:
        query = query.where(Student.grade.in_(grades))
    return query.order_by(OrgUnit.code, Student.grade, Student.class_name, Student.id)


def _scope_of(session: Session, release: DataRelease) -> _Scope:
    """The request's scope as it stands now, for its requester: roles and students change while it waits."""
    scope = release.scope
    try:
        return _resolve(session, user=release.requested_by, org_units=scope["org_units"], grades=scope["grades"],
                        statuses=scope["statuses"], role=release.requester_role)
    except (RuleViolation, PermissionDenied) as err:
        raise Conflict(msg("该申请已不能按原内容提供（{message}），请退回修改或驳回", message=err.message),
                       details=err.details) from err


def _write(release: DataRelease, request: _Request, scope: _Scope) -> None:
    release.requester_role = scope.role
    release.org_unit_id, release.org_unit = scope.common.id, scope.common
    release.scope = {"org_units": [u.code for u in scope.units], "grades": request.grades,
                     "statuses": request.statuses}
    release.fields, release.full = request.fields, request.full
    release.purpose = request.purpose
    release.recipient_department, release.recipient_person = request.recipient_department, request.recipient_person
    release.valid_days, release.max_downloads = request.valid_days, request.max_downloads
    release.rows_requested = scope.rows


def _asked(release: DataRelease) -> dict[str, Any]:
    """What the request asks, for the audit log: no student data."""
    return {"release_id": release.id, **release.scope, "fields": release.fields, "full": release.full,
            "purpose": release.purpose, "recipient_department": release.recipient_department,
            "recipient_person": release.recipient_person, "valid_days": release.valid_days,
            "max_downloads": release.max_downloads, "rows": release.rows_requested}


# --- the process's steps ------------------------------------------------------------------------

def file_release(session: Session, *, actor: User, data: Any) -> DataRelease:
    """The requester asks; nothing is written unless the whole request is valid."""
    request = _checked(data)
    scope = _resolve(session, user=actor, org_units=request.org_units, grades=request.grades,
                     statuses=request.statuses)
    release = DataRelease(requested_by_id=actor.id, requested_by=actor, status=ReleaseStatus.open,
                          requested_at=utcnow(), downloads=0)
    _write(release, request, scope)
    session.add(release)
    session.flush()
    record(session, actor=actor, action="data_release.request", object_type="data_release", object_id=release.id,
           org_unit_id=release.org_unit_id, after=_asked(release))
    return release


def subject_label(release: DataRelease) -> str:
    return f"{release.recipient_department} · {release.purpose}"[:100]


def _open(session: Session, release_id: int) -> DataRelease:
    release = session.get(DataRelease, release_id, with_for_update={"of": DataRelease})
    if release is None:
        raise NotFound(msg("找不到信息提供申请 {release_id}", release_id=release_id))
    if release.status != ReleaseStatus.open:
        raise InvalidTransition(msg("该申请{release_status}，不能再办理",
                                    release_status=msg(RELEASE_STATUS_LABELS[ReleaseStatus(release.status)])))
    return release


def link(session: Session, *, release_id: int, instance_id: int) -> None:
    release = _open(session, release_id)
    if release.instance_id is None:
        release.instance_id = instance_id


def for_instance(session: Session, *, instance_id: int) -> DataRelease | None:
    return session.scalars(select(DataRelease).where(DataRelease.instance_id == instance_id)).one_or_none()


def check_release(session: Session, *, release_id: int) -> dict[str, Any]:
    """Before the county decides, checked again: the requester still holds the role over the scope,
    and how many students it matches now. What the reviewer's instructions say."""
    release = _open(session, release_id)
    scope = _scope_of(session, release)
    release.rows_requested = scope.rows
    return {"rows": scope.rows, "summary": summary(release),
            "full_labels": "、".join(FULL_CHOICES[c] for c in release.full)}


def revise(session: Session, *, actor: User | None, release_id: int, data: Any) -> DataRelease:
    """Returned for revision: the requester corrects the request (the whole request again)."""
    release = _open(session, release_id)
    if actor is None or actor.id != release.requested_by_id:
        raise PermissionDenied(msg("只有申请人本人可以修改信息提供申请"))
    request = _checked(data)
    scope = _resolve(session, user=actor, org_units=request.org_units, grades=request.grades,
                     statuses=request.statuses, role=release.requester_role)
    before = _asked(release)
    _write(release, request, scope)
    record(session, actor=actor, action="data_release.revise", object_type="data_release", object_id=release.id,
           org_unit_id=release.org_unit_id, instance_id=release.instance_id, before=before, after=_asked(release))
    return release


def _local(moment: datetime) -> str:
    return moment.astimezone(local_zone()).strftime("%Y-%m-%d %H:%M")


def watermark(release: DataRelease) -> str:
    assert release.expires_at is not None
    return (f"数据提供审批 第 {release.number} 号 · 仅限{release.purpose}使用 · "
            f"有效期至 {_local(release.expires_at)} · 请勿转发")


def _rows(session: Session, release: DataRelease, units: list[OrgUnit]) -> Iterator[dict[str, Any]]:
    full_phone = "guardian_phone" in release.full
    query = _students(units, grades=release.scope["grades"], statuses=release.scope["statuses"])
    for student in session.scalars(query.execution_options(yield_per=2000)):
        fields = student.fields()
        if not full_phone:
            fields["guardian_phone"] = mask_phone(fields["guardian_phone"])
        yield fields


def approve(session: Session, *, release_id: int, actor: User | None, now: datetime,
            files: FileStore | None) -> dict[str, Any]:
    """The county approved: the file is built with the approved fields and scope, stored, and granted."""
    release = _open(session, release_id)
    if actor is not None and actor.id == release.requested_by_id:
        raise PermissionDenied(msg("不能审批本人提出的信息提供申请，请由其他审核员审批"))
    if files is None:
        # Only a batch decision in the inbox completes tasks without the file store: a release is
        # decided one by one, on its own page, with its details in view.
        raise Conflict(msg("信息提供申请须逐项审批：请打开任务页面查看申请内容后批准"))
    scope = _scope_of(session, release)
    release.status = ReleaseStatus.approved
    release.decided_by_id, release.decided_at = actor.id if actor else None, now
    release.expires_at = now + timedelta(days=release.valid_days)
    data, count = build_release(_rows(session, release, scope.units), fields=release.fields,
                                mask_id="id_number" not in release.full, watermark=watermark(release),
                                particulars=particulars(session, release, approver=actor),
                                footer=f"提供给{release.recipient_department} {release.recipient_person}")
    stored = files.put(data, content_type=XLSX)
    release.rows, release.file_key, release.file_size = count, stored.key, stored.size
    release.token = secrets.token_urlsafe(24)
    release.downloads = 0
    record(session, actor=actor, action="data_release.approve", object_type="data_release", object_id=release.id,
           org_unit_id=release.org_unit_id, instance_id=release.instance_id,
           after={**_asked(release), "rows": count, "file_sha256": stored.sha256,
                  "expires_at": release.expires_at.isoformat()})
    return {"rows": count, "expires_at": release.expires_at.isoformat()}


def reject(session: Session, *, release_id: int, comment: str | None, actor: User | None, now: datetime) -> None:
    release = _open(session, release_id)
    release.status, release.close_comment = ReleaseStatus.rejected, comment
    release.decided_by_id, release.decided_at = actor.id if actor else None, now
    record(session, actor=actor, action="data_release.reject", object_type="data_release", object_id=release.id,
           org_unit_id=release.org_unit_id, instance_id=release.instance_id, reason=comment,
           after={"release_id": release.id, "status": ReleaseStatus.rejected})


def withdraw(session: Session, *, instance_id: int, reason: str, actor: User | None) -> None:
    release = for_instance(session, instance_id=instance_id)
    if release is None or release.status != ReleaseStatus.open:
        return
    release.status, release.close_comment = ReleaseStatus.withdrawn, reason
    record(session, actor=actor, action="data_release.withdraw", object_type="data_release", object_id=release.id,
           org_unit_id=release.org_unit_id, instance_id=instance_id, reason=reason,
           after={"release_id": release.id, "status": ReleaseStatus.withdrawn})


def revision_task(session: Session, *, actor: User, release_id: int) -> "HumanTask":
    """The open revision task of a returned request, if `actor` is its requester."""
    # registry.workflows gathers the flows that call this module: imported on use, not at load.
    from registry.workflows import HumanTask, TaskStatus

    release = get_release(session, actor=actor, release_id=release_id)
    task = None
    if release.instance_id is not None:
        task = session.scalars(select(HumanTask).where(HumanTask.instance_id == release.instance_id,
                                                       HumanTask.status == TaskStatus.open,
                                                       HumanTask.task_id.in_(REVISION_TASKS))).first()
    if task is None:
        raise InvalidTransition(msg("该申请没有被退回修改，不能修改"))
    if release.requested_by_id != actor.id or not holds(actor, task.role, task.org_unit):
        raise PermissionDenied(msg("只有申请人本人可以修改信息提供申请"))
    return task


# --- downloading ----------------------------------------------------------------------------------

def download_state(release: DataRelease, now: datetime) -> DownloadState:
    if release.status == ReleaseStatus.open:
        return DownloadState.pending
    if release.status != ReleaseStatus.approved or release.expires_at is None:
        return DownloadState.closed
    if now >= release.expires_at:
        return DownloadState.expired
    if release.downloads >= release.max_downloads:
        return DownloadState.used_up
    if release.file_key is None:
        return DownloadState.purged
    return DownloadState.available


_REFUSALS = {
    DownloadState.pending: "该申请尚未批准，不能下载",
    DownloadState.closed: "该申请未获批准，没有可下载的文件",
    DownloadState.expired: "下载链接已过期（有效期至 {expires}），如仍需要请重新申请",
    DownloadState.used_up: "下载次数已用完（共 {max} 次），如仍需要请重新申请",
    DownloadState.purged: "文件已删除，如仍需要请重新申请",
}


def download(session: Session, *, actor: User, now: datetime, store: FileStore, ip: str | None,
             user_agent: str | None, release_id: int | None = None, token: str | None = None
             ) -> tuple[DataRelease, bytes]:
    """The requester's download, counted; anything else refused with the reason, and on record.

    A refusal is recorded before it is raised: the caller commits on a DomainError too.
    """
    if token is not None:
        release = session.scalars(select(DataRelease).where(DataRelease.token == token)).one_or_none()
    else:
        release = session.get(DataRelease, release_id) if release_id is not None else None
    if release is None:
        raise NotFound(msg("下载链接无效或申请不存在"))
    client = {"ip": ip, "user_agent": (user_agent or "")[:200] or None}

    def refused(error: DomainError) -> DomainError:
        record(session, actor=actor, action="data_release.download_refused", object_type="data_release",
               object_id=release.id, org_unit_id=release.org_unit_id, instance_id=release.instance_id,
               reason=error.message, after=client)
        return error

    if release.requested_by_id != actor.id:
        if _visible(actor, release):
            raise refused(PermissionDenied(msg("只有申请人本人可以下载，请向申请人索取")))
        raise refused(NotFound(msg("下载链接无效或申请不存在")))
    state = download_state(release, now)
    if state != DownloadState.available:
        raise refused(InvalidTransition(_REFUSALS[state].format(
            expires=_local(release.expires_at) if release.expires_at else "", max=release.max_downloads),
            details={"state": state}))
    assert release.file_key is not None
    try:
        data = store.open(release.file_key)
    except MissingFile:
        raise refused(InvalidTransition(_REFUSALS[DownloadState.purged],
                                        details={"state": DownloadState.purged})) from None
    # One statement decides: two downloads at once cannot both take the last one.
    taken = session.execute(update(DataRelease).where(
        DataRelease.id == release.id, DataRelease.downloads < DataRelease.max_downloads,
        DataRelease.expires_at > now).values(downloads=DataRelease.downloads + 1)
        .execution_options(synchronize_session=False)).rowcount
    session.refresh(release)
    if taken != 1:
        raise refused(InvalidTransition(_REFUSALS[DownloadState.used_up].format(max=release.max_downloads),
                                        details={"state": DownloadState.used_up}))
    record(session, actor=actor, action="data_release.download", object_type="data_release", object_id=release.id,
           org_unit_id=release.org_unit_id, instance_id=release.instance_id,
           after={"download": release.downloads, "max_downloads": release.max_downloads, **client})
    return release, data


def file_name(release: DataRelease) -> str:
    return f"学生信息-数据提供审批第{release.number}号.xlsx"


def purge_files(session: Session, *, store: FileStore, now: datetime) -> int:
    """Delete the files of releases that expired or were used up: nobody may download them any more."""
    done = list(session.scalars(select(DataRelease).where(
        DataRelease.file_key.is_not(None),
        or_(DataRelease.expires_at <= now, DataRelease.downloads >= DataRelease.max_downloads))))
    for release in done:
        assert release.file_key is not None
        store.delete(release.file_key)
        record(session, actor=None, action="data_release.purge", object_type="data_release", object_id=release.id,
               org_unit_id=release.org_unit_id, instance_id=release.instance_id,
               after={"file_sha256": release.file_key})
        release.file_key, release.purged_at = None, now
    return len(done)


# --- reading ----------------------------------------------------------------------------------------

def _visible(actor: User, release: DataRelease) -> bool:
    return release.requested_by_id == actor.id or oversees(actor, release.org_unit)


def get_release(session: Session, *, actor: User, release_id: int) -> DataRelease:
    """The requester's own, or any in a unit the caller oversees (county reviewers, auditors)."""
    release = session.get(DataRelease, release_id)
    if release is None or not _visible(actor, release):
        raise NotFound(msg("找不到信息提供申请 {release_id}", release_id=release_id))
    return release


def list_releases(session: Session, *, actor: User, mine: bool = True, limit: int = 50,
                  offset: int = 0) -> tuple[list[DataRelease], int]:
    """The caller's own requests, or (mine=False) every request in the units they oversee; newest first."""
    query = select(DataRelease)
    if mine:
        query = query.where(DataRelease.requested_by_id == actor.id)
    else:
        query = (query.join(OrgUnit, DataRelease.org_unit_id == OrgUnit.id)
                 .where(scope_clause(actor, OrgUnit.path, roles=OVERSIGHT_ROLES)))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(DataRelease.id.desc()).limit(limit).offset(offset))
    return list(rows), total


def scope_choices(session: Session, *, actor: User) -> list[OrgUnit]:
    """The units `actor` may ask data of, each parent followed by its children: under their requester grants."""
    return list(session.scalars(select(OrgUnit).where(scope_clause(actor, OrgUnit.path, roles=REQUESTER_ROLES))
                                .order_by(OrgUnit.path)))


def may_list_all(actor: User) -> bool:
    return any(g.role in OVERSIGHT_ROLES for g in actor.grants)


def downloads_of(session: Session, release: DataRelease) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).where(
        AuditEntry.object_type == "data_release", AuditEntry.object_id == str(release.id),
        AuditEntry.action.in_(("data_release.download", "data_release.download_refused"))).order_by(AuditEntry.id)))


def _unit_names(session: Session, codes: list[str]) -> list[str]:
    units = {u.code: u for u in session.scalars(select(OrgUnit).where(OrgUnit.code.in_(codes)))}
    return [f"{units[c].name}（{KIND_LABELS[OrgKind(units[c].kind)]}）" if c in units else c for c in codes]


def _grades_label(grades: list[int]) -> str:
    return "、".join(f"{g} 年级" for g in grades) if grades else "全部年级"


def _statuses_label(statuses: list[str]) -> str:
    return "、".join(STATUS_LABELS[StudentStatus(s)] for s in statuses)


def summary(release: DataRelease) -> str:
    """One line for the reviewer's instructions and the inbox: no names, no student data."""
    return (f"{release.recipient_department}申请，{_statuses_label(release.scope['statuses'])}学生"
            f"（{_grades_label(release.scope['grades'])}），{len(release.fields)} 个字段，约 {release.rows_requested} 人")


def particulars(session: Session, release: DataRelease, *, approver: User | None) -> list[tuple[str, str]]:
    """The request as the file's second sheet states it."""
    assert release.expires_at is not None
    requester = release.requested_by
    return [
        ("审批编号", f"数据提供审批 第 {release.number} 号"),
        ("申请人", f"{requester.display_name}（{ROLE_LABELS[Role(release.requester_role)]}）"),
        ("审批人", approver.display_name if approver else ""),
        ("批准时间", _local(release.decided_at) if release.decided_at else ""),
        ("有效期至", _local(release.expires_at)),
        ("用途", release.purpose),
        ("接收单位", release.recipient_department),
        ("接收人", release.recipient_person),
        ("提供范围", "、".join(_unit_names(session, release.scope["org_units"]))),
        ("年级", _grades_label(release.scope["grades"])),
        ("学籍状态", _statuses_label(release.scope["statuses"])),
        ("提供字段", "、".join(FIELD_LABELS[f] for f in release.fields)),
        ("完整提供", "、".join(FULL_CHOICES[c] for c in release.full) or "无（身份证件号、监护人电话已遮盖）"),
        ("说明", "依据《实名制学生信息管理制度》第二十四条，学生信息严禁用于商业用途；仅限上述用途，"
                 "未经批准不得公开、提供、泄露、扩散。"),
    ]


def to_read(session: Session, release: DataRelease, *, actor: User, now: datetime) -> dict[str, Any]:
    """The request, its decision and its grant, as the API and the pages show it."""
    state = download_state(release, now)
    mine = release.requested_by_id == actor.id
    return {
        "id": release.id, "number": release.number, "status": release.status,
        "status_label": RELEASE_STATUS_LABELS[ReleaseStatus(release.status)],
        "instance_id": release.instance_id,
        "requested_by": {"username": release.requested_by.username,
                         "display_name": release.requested_by.display_name},
        "requester_role": release.requester_role,
        "requester_role_label": ROLE_LABELS[Role(release.requester_role)],
        "org_unit": release.org_unit.as_ref(),
        "org_units": release.scope["org_units"],
        "org_unit_names": _unit_names(session, release.scope["org_units"]),
        "grades": release.scope["grades"], "grades_label": _grades_label(release.scope["grades"]),
        "statuses": release.scope["statuses"], "statuses_label": _statuses_label(release.scope["statuses"]),
        "fields": release.fields, "field_labels": [FIELD_LABELS[f] for f in release.fields],
        "full": release.full, "full_labels": [FULL_CHOICES[c] for c in release.full],
        "purpose": release.purpose, "recipient_department": release.recipient_department,
        "recipient_person": release.recipient_person, "valid_days": release.valid_days,
        "max_downloads": release.max_downloads, "rows_requested": release.rows_requested,
        "requested_at": release.requested_at.isoformat(),
        "decided_at": release.decided_at.isoformat() if release.decided_at else None,
        "decided_by": release.decided_by.display_name if release.decided_by else None,
        "comment": release.close_comment,
        "rows": release.rows, "expires_at": release.expires_at.isoformat() if release.expires_at else None,
        "downloads": release.downloads,
        "remaining_downloads": max(release.max_downloads - release.downloads, 0)
        if release.status == ReleaseStatus.approved else None,
        "download_state": state, "download_state_label": DOWNLOAD_STATE_LABELS[state],
        # Only the requester downloads; the token is in the page link, not in the API.
        "download_url": f"/api/releases/{release.id}/download" if mine and state == DownloadState.available else None,
        "download_page_url": f"/releases/download/{release.token}"
        if mine and state == DownloadState.available else None,
    }


def form_values(release: DataRelease) -> dict[str, Any]:
    """The request as a form fills it: the revision starts from what was asked."""
    return {**release.scope, "fields": release.fields, "full": release.full, "purpose": release.purpose,
            "recipient_department": release.recipient_department, "recipient_person": release.recipient_person,
            "valid_days": release.valid_days, "max_downloads": release.max_downloads}
