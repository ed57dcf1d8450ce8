"""Figures of other departments (Art. 18: 统计, 计生, …) set beside the registered beneficiaries, per township.

A county admin or the county aid center imports a small XLSX (乡镇代码, 乡镇名称, 指标, 数值, 来源). Every row
is checked first; one bad row and nothing is stored. A school year's indicator imported again replaces the
old figures of that indicator. The comparison divides each township's beneficiaries of the school year (the
county report's, each child counted once per township) by the external figure, and flags what looks wrong.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font
from sqlalchemy import ForeignKey, Numeric, String, UniqueConstraint, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from registry import reports
from registry.access import holds, oversees
from registry.audit import record
from registry.county_policy import county_of_user
from registry.db import Base, UTCDateTime, utcnow
from registry.errors import PermissionDenied, RuleViolation, join_messages, msg
from registry.org_units import OrgKind, OrgUnit
from registry.users import Role, User

COLUMNS = ("乡镇代码", "乡镇名称", "指标", "数值", "来源")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_UPLOAD_BYTES = 2 * 1024 * 1024  # a county has a few dozen townships: a few KB
MAX_ROWS = 5000
# More beneficiaries than children of school age: pupils who may not exist (虚报冒领, Art. 18).
RATIO_HIGH = Decimal("1.0")
# Far fewer: children of the township left out of the plan, or a figure of another population.
RATIO_LOW = Decimal("0.8")
IMPORT_ROLES = (Role.county_admin, Role.county_aid_center)


class ExternalStatistic(Base):
    __tablename__ = "external_statistic"
    # One figure per township, school year and indicator; the constraint also serves the lookup by year.
    __table_args__ = (UniqueConstraint("county_id", "school_year", "indicator", "township_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    county_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"))
    township_id: Mapped[int] = mapped_column(ForeignKey("org_unit.id"))
    school_year: Mapped[int]
    indicator: Mapped[str] = mapped_column(String(60))
    source: Mapped[str] = mapped_column(String(100))
    value: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    imported_by_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


@dataclass(frozen=True)
class ImportResult:
    school_year: int
    rows: int
    indicators: list[str]
    replaced: int


def _require_importer(actor: User, county: OrgUnit) -> None:
    if not any(holds(actor, role, county) for role in IMPORT_ROLES):
        raise PermissionDenied(msg("只有县教育局系统管理员或县学生资助管理中心可以导入外部统计数据"))


def _valid_year(year: object) -> int:
    if not (isinstance(year, int) and not isinstance(year, bool) and 2000 <= year <= 2100):
        raise RuleViolation(msg("学年：应为 2000 到 2100 的整数"),
                            details=[{"field": "school_year", "message": msg("学年：应为 2000 到 2100 的整数")}])
    return year


def _townships(session: Session, county: OrgUnit) -> list[OrgUnit]:
    return list(session.scalars(select(OrgUnit).where(OrgUnit.path.like(county.path + "%"),
                                                      OrgUnit.kind == OrgKind.township).order_by(OrgUnit.code)))


def _text(value: object) -> str:
    # A code typed into Excel comes back as a number: 529901101.0 is "529901101".
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value).strip()


def _number(value: object) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip().replace(",", "")) if value is not None else None
    except InvalidOperation:
        return None
    return number if number is not None and number.is_finite() else None


def _read(data: bytes) -> list[tuple[int, list[object]]]:
    if len(data) > MAX_UPLOAD_BYTES:
        raise RuleViolation(msg("文件：超过 {value} MB", value=MAX_UPLOAD_BYTES // 1024 // 1024),
                            details=[{"field": "file", "message": msg("文件太大")}])
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        raise RuleViolation(msg("文件：不是 XLSX 文件，请用下载的模板填写"),
                            details=[{"field": "file", "message": msg("不是 XLSX 文件")}]) from None
    try:
        rows = [(n, list(r)) for n, r in enumerate(book.worksheets[0].iter_rows(values_only=True), start=1)]
    finally:
        book.close()
    if not rows:
        raise RuleViolation(msg("文件：是空的"), details=[{"field": "file", "message": msg("文件是空的")}])
    return rows


def import_statistics(session: Session, *, actor: User, school_year: object, data: bytes) -> ImportResult:
    """Every row checked, then stored; a bad row stores nothing. The same year and indicator replaces."""
    county = county_of_user(session, actor)
    _require_importer(actor, county)
    year = _valid_year(school_year)
    rows = _read(data)
    header = [_text(c) for c in rows[0][1]]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise RuleViolation(msg("文件：缺少列 {missing}（第 1 行应为：{columns}）",
                                missing="、".join(missing), columns="、".join(COLUMNS)),
                            details=[{"field": "file", "message": msg("缺少列 {missing}", missing="、".join(missing))}])
    at = {c: header.index(c) for c in COLUMNS}
    townships = {t.code: t for t in _townships(session, county)}
    problems: list[dict[str, object]] = []
    parsed: dict[tuple[str, str], tuple[OrgUnit, str, Decimal, int]] = {}
    for number, cells in rows[1:]:
        values = {c: _text(cells[i]) if i < len(cells) else "" for c, i in at.items()}
        if not any(values.values()):
            continue
        raw = cells[at["数值"]] if at["数值"] < len(cells) else None

        def bad(column: str, message: str, row: int = number) -> None:
            problems.append({"row": row, "field": column, "message": msg("第 {row} 行 {column}：{message}",
                                                                         row=row, column=column, message=message)})

        township = townships.get(values["乡镇代码"])
        if not values["乡镇代码"]:
            bad("乡镇代码", msg("不能为空"))
        elif township is None:
            bad("乡镇代码", msg("本县没有代码为 {code} 的乡镇", code=values["乡镇代码"]))
        indicator, source = values["指标"], values["来源"]
        if not indicator or len(indicator) > 60:
            bad("指标", msg("必填，最多 60 字（如 学龄儿童数）"))
        if not source or len(source) > 100:
            bad("来源", msg("必填，最多 100 字（如 县统计局）"))
        value = _number(raw)
        if raw is None or values["数值"] == "":
            bad("数值", msg("不能为空"))
        elif value is None:
            bad("数值", msg("“{value}”不是数字", value=values["数值"]))
        elif value < 0 or value >= Decimal("1e12"):
            bad("数值", msg("应为 0 或正数"))
        if township is not None and indicator and (township.code, indicator) in parsed:
            bad("指标", msg("乡镇 {code} 的“{indicator}”与第 {row} 行重复",
                          code=township.code, indicator=indicator, row=parsed[(township.code, indicator)][3]))
        if township is not None and indicator and value is not None:
            parsed.setdefault((township.code, indicator), (township, source, value, number))
        if len(parsed) > MAX_ROWS:
            raise RuleViolation(msg("文件：超过 {max_rows} 行", max_rows=MAX_ROWS),
                                details=[{"field": "file", "message": msg("行数太多")}])
    if problems:
        raise RuleViolation(msg("文件有 {count} 处错误，未导入任何数据：{problems}", count=len(problems),
                                problems=join_messages(p["message"] for p in problems[:20])), details=problems)
    if not parsed:
        raise RuleViolation(msg("文件：没有数据行"), details=[{"field": "file", "message": msg("没有数据行")}])
    indicators = sorted({indicator for _, indicator in parsed})
    old = session.scalars(select(ExternalStatistic).where(
        ExternalStatistic.county_id == county.id, ExternalStatistic.school_year == year,
        ExternalStatistic.indicator.in_(indicators))).all()
    codes = {t.id: t.code for t in townships.values()}
    before = {f"{o.indicator}/{codes.get(o.township_id)}": str(o.value) for o in old}
    session.execute(delete(ExternalStatistic).where(
        ExternalStatistic.county_id == county.id, ExternalStatistic.school_year == year,
        ExternalStatistic.indicator.in_(indicators)))
    now = utcnow()
    session.add_all([ExternalStatistic(county_id=county.id, township_id=township.id, school_year=year,
                                       indicator=indicator, source=source, value=value, imported_by_id=actor.id,
                                       imported_at=now)
                     for (_, indicator), (township, source, value, _) in sorted(parsed.items())])
    session.flush()
    record(session, actor=actor, action="external_statistic.import", object_type="external_statistic",
           object_id=f"{year}:{'、'.join(indicators)}"[:40], org_unit_id=county.id, before=before or None,
           after={f"{indicator}/{code}": str(v[2]) for (code, indicator), v in sorted(parsed.items())})
    return ImportResult(year, len(parsed), indicators, len(old))


def template(session: Session, *, actor: User) -> bytes:
    """The import file with the county's townships filled in: the department adds 指标, 数值, 来源."""
    county = county_of_user(session, actor)
    book = Workbook()
    sheet = book.active
    sheet.title = "外部统计数据"
    sheet.append(list(COLUMNS))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for township in _townships(session, county):
        sheet.append([township.code, township.name, "学龄儿童数", None, "县统计局"])
    for column, width in zip("ABCDE", (14, 20, 18, 12, 20), strict=True):
        sheet.column_dimensions[column].width = width
    for row in sheet.iter_rows(min_row=2, max_col=1):
        row[0].number_format = "@"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# The comparison -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TownshipFigure:
    township: OrgUnit
    beneficiaries: int
    value: Decimal | None
    source: str | None

    @property
    def ratio(self) -> Decimal | None:
        if self.value is None or self.value == 0:
            return None
        return (Decimal(self.beneficiaries) / self.value).quantize(Decimal("0.01"), ROUND_HALF_UP)

    @property
    def flag(self) -> str | None:
        """The reason to look closer, in words (a page must not say it by colour alone)."""
        if self.value is None:
            return "缺少外部数据"
        if self.value == 0:
            return "外部数值为 0，无法比较" if self.beneficiaries else None
        ratio = Decimal(self.beneficiaries) / self.value
        if ratio > RATIO_HIGH:
            return "受益学生多于外部统计数，可能有虚报学生，请核查"
        if ratio < RATIO_LOW:
            return f"受益学生不足外部统计数的 {RATIO_LOW:.0%}，可能有漏报，请核查"
        return None

    def as_json(self) -> dict[str, object]:
        return {"township_code": self.township.code, "township_name": self.township.name,
                "beneficiaries": self.beneficiaries,
                "value": float(self.value) if self.value is not None else None, "source": self.source,
                "ratio": float(self.ratio) if self.ratio is not None else None, "flag": self.flag}


@dataclass(frozen=True)
class Comparison:
    school_year: int
    indicator: str
    townships: list[TownshipFigure]
    imported_at: datetime | None

    def as_json(self) -> dict[str, object]:
        return {"school_year": self.school_year, "indicator": self.indicator,
                "imported_at": self.imported_at.isoformat() if self.imported_at else None,
                "townships": [t.as_json() for t in self.townships],
                "flagged": sum(1 for t in self.townships if t.flag)}


def comparisons(session: Session, *, actor: User, school_year: object) -> list[Comparison]:
    """One table per indicator imported for the school year: each township's beneficiaries beside the figure."""
    county = county_of_user(session, actor)
    if not oversees(actor, county):
        raise PermissionDenied(msg("只有县级用户可以查看外部统计数据比对"))
    year = _valid_year(school_year)
    stored = session.scalars(select(ExternalStatistic).where(
        ExternalStatistic.county_id == county.id, ExternalStatistic.school_year == year)
        .order_by(ExternalStatistic.indicator)).all()
    if not stored:
        return []
    report = reports.county_report(session, actor=actor, year=year)
    # Each child once per township: a transfer between two of its schools is still one child.
    by_township: dict[int, set[int]] = {}
    for school in report.schools:
        by_township.setdefault(school.school.org_unit.parent_id or 0, set()).update(school.tally.beneficiaries)
    townships = _townships(session, county)
    result = []
    for indicator in sorted({s.indicator for s in stored}):
        figures = {s.township_id: s for s in stored if s.indicator == indicator}
        result.append(Comparison(year, indicator, [
            TownshipFigure(t, len(by_township.get(t.id, ())), figures[t.id].value if t.id in figures else None,
                           figures[t.id].source if t.id in figures else None)
            for t in townships], max(s.imported_at for s in figures.values())))
    return result
