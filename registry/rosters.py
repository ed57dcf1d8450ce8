"""The beneficiary roster (受益学生花名册) of a school for one month, and its PDF.

Art. 16: by 15 September the school prints the roster, each guardian signs beside their child, the school
stamps it and sends it to the county. On paper the ID number and the 学籍号 are always masked: Art. 10 makes
the ID number the 学籍主号, so a full 学籍号 would print the ID number after all.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from importlib import resources
from importlib.util import find_spec
from pathlib import Path
from typing import Literal

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from registry.access import holds, mask_id_number
from registry.audit import record
from registry.code_tables import load_code_tables
from registry.errors import DomainError, PermissionDenied, RuleViolation, join_messages, msg
from registry.org_units import OrgUnit
from registry.schools import get_school
from registry.settings import local_zone
from registry.students import EnrolmentPeriod, Student, StudentStatus
from registry.users import Role, User

# Who prints or reads a school's roster: its own registrar and principal, its township, the county's
# reviewers, aid centre, administrator and auditors (Art. 7, 16, 25). A process administrator edits BPMN
# files and has no business with a list of children.
READERS = frozenset({Role.school_registrar, Role.school_principal, Role.township_officer, Role.county_reviewer,
                     Role.county_aid_center, Role.county_admin, Role.auditor})
GRADE_LABELS = {1: "一年级", 2: "二年级", 3: "三年级", 4: "四年级", 5: "五年级", 6: "六年级",
                7: "七年级", 8: "八年级", 9: "九年级"}
# A class name that already names its grade: "六年级（3）班", "初一（2）班", "七年级3班".
_NAMES_GRADE = re.compile(r"年级|初[一二三]|[一二三四五六七八九]年")
_DIGITS = re.compile(r"(\d+)")


@dataclass(frozen=True, slots=True)
class RosterRow:
    number: int  # 序号
    name: str
    sex: str  # 男 / 女
    student_number: str  # masked
    id_number: str  # masked
    class_label: str  # 年级/班级, the grade written once
    boarding: str  # 走读 / 住校
    boarding_allowance: bool  # 享受一补


@dataclass(frozen=True, slots=True)
class RosterTotals:
    students: int
    boarders: int
    boarding_allowance: int


@dataclass(frozen=True)
class Roster:
    school: OrgUnit
    meal_model: str  # 供餐模式, its label
    school_year: int  # Y: September Y to August Y+1
    month: str  # YYYY-MM
    class_name: str | None  # the class printed, None for the whole school
    classes: list[str]  # every class with beneficiaries that month, for the class filter
    rows: list[RosterRow]
    totals: RosterTotals
    printed_on: date
    printed_by: str

    @property
    def year_label(self) -> str:
        return f"{self.school_year}–{self.school_year + 1} 学年"

    @property
    def month_number(self) -> int:
        return int(self.month[5:])

    @property
    def month_label(self) -> str:
        return f"{int(self.month[:4])}年{int(self.month[5:])}月"

    @property
    def period_label(self) -> str:
        return f"{self.year_label} {self.month_label}"

    @property
    def file_name(self) -> str:
        tail = f"-{self.class_name}" if self.class_name else ""
        return f"受益学生花名册-{self.school.name}-{self.month_label}{tail}.pdf"


class PdfFontMissing(DomainError):
    """No usable CJK font on this server: a setup problem the county's administrator fixes, not a user's."""

    status = 503
    code = "pdf_font_missing"


def school_year_of(day: date) -> int:
    return day.year if day.month >= 9 else day.year - 1


def recent_school_years(today: date | None = None, count: int = 5) -> list[int]:
    current = school_year_of(today or _today())
    return list(range(current, current - count, -1))


def roster_month(*, school_year: int, month: int | None) -> str:
    """`month` (1–12) inside school year Y: September–December are in Y, January–August in Y+1."""
    month = 9 if month is None else month
    return f"{school_year if month >= 9 else school_year + 1}-{month:02d}"


def class_label(grade: int, class_name: str) -> str:
    """年级/班级 with the grade once: "六年级（3）班" stays, "（3）班" of grade 6 becomes "六年级（3）班"."""
    name = class_name.strip()
    if _NAMES_GRADE.search(name):
        return name
    return f"{GRADE_LABELS.get(grade, f'{grade}年级')}{name}"


def _natural(text: str) -> tuple[object, ...]:
    # "（10）班" after "（9）班", as a person reads the class list.
    return tuple(int(part) if part.isdigit() else part for part in _DIGITS.split(text))


def _today() -> date:
    return datetime.now(local_zone()).date()


def _check_period(year: int | None, month: int | None) -> None:
    problems = []
    if year is not None and not 2000 <= year <= 2100:
        problems.append({"field": "year", "message": msg("学年：{year} 不是有效年份", year=year)})
    if month is not None and not 1 <= month <= 12:
        problems.append({"field": "month", "message": msg("月份：{month} 不是 1–12 月", month=month)})
    if problems:
        raise RuleViolation(msg("花名册的学年或月份有误：{problems}", problems=join_messages(p["message"] for p in problems)),
                            details=problems)


def roster(session: Session, *, actor: User, school_code: str, year: int | None = None, month: int | None = None,
           class_name: str | None = None, medium: Literal["html", "pdf"] = "html",
           today: date | None = None) -> Roster:
    """The beneficiaries of one school in one month of school year `year` (default: September of the current
    school year), as printed: every record not voided with an enrolment period there covering that month."""
    _check_period(year, month)
    school = get_school(session, actor=actor, code=school_code)
    unit = school.org_unit
    if not any(holds(actor, role, unit) for role in READERS):
        raise PermissionDenied(msg("只有本校学籍管理员、校长、乡镇中心校管理员和县级人员可以打印受益学生花名册"))
    today = today or _today()
    school_year = year if year is not None else school_year_of(today)
    wanted = roster_month(school_year=school_year, month=month)
    codes = load_code_tables()

    # Grade, class, boarding and 一补 as the period covering the month has them (a later change is not
    # that month's); periods never overlap, so each child once.
    found = session.execute(
        select(Student.id, Student.name, Student.sex, Student.student_number, Student.id_number,
               EnrolmentPeriod.grade, EnrolmentPeriod.class_name, EnrolmentPeriod.boarding_mode,
               EnrolmentPeriod.boarding_allowance)
        .join(Student, Student.id == EnrolmentPeriod.student_id)
        .where(EnrolmentPeriod.school_id == unit.id, EnrolmentPeriod.from_month <= wanted,
               or_(EnrolmentPeriod.to_month.is_(None), EnrolmentPeriod.to_month >= wanted),
               Student.status != StudentStatus.voided)).all()
    # Sorted here, not in SQL: PostgreSQL's collation and SQLite's byte order would print different orders.
    found.sort(key=lambda s: (s.grade, _natural(s.class_name), s.name, s.id))
    labels = [class_label(s.grade, s.class_name) for s in found]
    classes = list(dict.fromkeys(labels))
    picked = class_name.strip() if class_name else None
    if picked:
        # The label ("三年级1班") or the class name as stored ("1班", which may match several grades).
        kept = [(s, label) for s, label in zip(found, labels, strict=True) if picked in (s.class_name, label)]
        found, labels = [s for s, _ in kept], [label for _, label in kept]
    rows = [RosterRow(number=i, name=s.name, sex=codes.label("sex", s.sex) or s.sex,
                      student_number=mask_id_number(s.student_number) or "",
                      id_number=mask_id_number(s.id_number) or "", class_label=label,
                      boarding=codes.label("boarding_mode", s.boarding_mode) or s.boarding_mode,
                      boarding_allowance=bool(s.boarding_allowance))
            for i, (s, label) in enumerate(zip(found, labels, strict=True), start=1)]
    totals = RosterTotals(students=len(rows), boarders=sum(1 for s in found if s.boarding_mode == "2"),
                          boarding_allowance=sum(1 for r in rows if r.boarding_allowance))
    # Art. 24: a roster carries children's names off the screen; who printed which one is on record. Its own
    # object type: the school's change history (schools.school_history) is not a log of who looked.
    record(session, actor=actor, action="roster.print", object_type="roster", object_id=unit.code,
           org_unit_id=unit.id, after={"month": wanted, "class_name": picked, "students": totals.students,
                                       "medium": medium})
    return Roster(school=unit, meal_model=codes.label("meal_model", school.meal_model or "") or "",
                  school_year=school_year, month=wanted, class_name=picked, classes=classes, rows=rows,
                  totals=totals, printed_on=today, printed_by=actor.display_name)


# --- PDF ----------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class FontFile:
    path: Path
    index: int = 0  # the face in a .ttc collection


def _packaged_font() -> Path | None:
    if find_spec("paperang_p2_fonts_cjk") is None:
        return None
    return Path(str(resources.files("paperang_p2_fonts_cjk") / "fonts" / "wqy-microhei.ttc"))


# TrueType outlines first: fpdf2 embeds them as FontFile2, which every viewer and text extractor reads.
# Noto CJK (CFF outlines, FontFile3) prints as well but some extractors (pypdf) garble its text: last.
DEBIAN_FONTS = (
    FontFile(Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")),  # fonts-wqy-microhei
    FontFile(Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")),  # fonts-wqy-zenhei
    FontFile(Path("/usr/share/fonts/truetype/arphic/uming.ttc")),  # fonts-arphic-uming
    FontFile(Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"), 2),  # fonts-noto-cjk, face 2 = SC
)


FONT_MAGIC = (b"\x00\x01\x00\x00", b"true", b"OTTO", b"ttcf")


def parse_font_setting(value: str) -> FontFile:
    """"/path/font.ttc#2" is face 2 of the collection; a plain path is face 0."""
    face = re.fullmatch(r"(.+)#(\d+)", value.strip())
    return FontFile(Path(face[1] if face else value.strip()).expanduser(), int(face[2]) if face else 0)


def font_candidates(setting: str | None) -> list[FontFile]:
    """The fonts to try, in order: the configured one alone when MEALROLL_PDF_FONT is set (a wrong setting
    should fail loudly, not print in another font), else the packaged font and then Debian's."""
    if setting:
        return [parse_font_setting(setting)]
    packaged = _packaged_font()
    return [*([FontFile(packaged)] if packaged else []), *DEBIAN_FONTS]


def _missing_font(setting: str | None, why: str) -> PdfFontMissing:
    where = f"MEALROLL_PDF_FONT={setting}" if setting else "已安装的中文字体"
    return PdfFontMissing(f"无法生成 PDF 花名册：服务器上没有可用的中文字体（{where}：{why}）。请系统管理员安装 "
                          "Python 包 paperang-p2-fonts-cjk 或 Debian 的 fonts-wqy-microhei，或设置 MEALROLL_PDF_FONT；"
                          "现在可以先用网页版花名册打印。")


# A4 landscape, millimetres. 20 rows of 7.5 mm leave each guardian room to sign.
PAGE_W, PAGE_H, MARGIN = 297.0, 210.0, 12.0
TABLE_TOP, HEAD_H, ROW_H, ROWS_PER_PAGE = 36.0, 9.0, 7.5, 20
PT = 25.4 / 72  # millimetres per point
FOOTER_Y = PAGE_H - 12.0
CLOSING_H = 52.0  # totals, signature lines and the stamp box on the last page
CARRIED = 3
COLUMNS = (("序号", 12.0), ("姓名", 26.0), ("性别", 11.0), ("学籍号", 44.0), ("身份证件号", 44.0),
           ("年级/班级", 38.0), ("就读方式", 17.0), ("享受一补", 17.0), ("监护人签字", 64.0))


def paginate(count: int) -> list[range]:
    """Row ranges page by page; the last page also holds the closing block. When its rows leave no room for the
    block, its last CARRIED rows go with the block to a page of their own: a stamp page that lists no student
    could be stapled to any list. Knowing every page before drawing gives 共 N 页."""
    pages = [range(start, min(start + ROWS_PER_PAGE, count)) for start in range(0, count, ROWS_PER_PAGE)] or \
        [range(0)]
    last = pages[-1]
    if TABLE_TOP + HEAD_H + max(len(last), 1) * ROW_H + 4 + CLOSING_H > FOOTER_Y - 2:
        pages[-1:] = [range(last.start, last.stop - CARRIED), range(last.stop - CARRIED, last.stop)]
    return pages


class _Cells:
    """Table text placed with FPDF.text(), each string measured from the font's advance widths. cell() costs ten
    times as much (it re-parses every string for font fallback and bidi): 2,000 rows took 4.7 s that way, 1.9 s
    this way (bench/RESULTS.md). A string with a character the main font lacks still goes through cell(), which
    switches to the fallback font for it."""

    def __init__(self, pdf: FPDF) -> None:
        self.pdf = pdf
        font = pdf.fonts[pdf.font_family]
        self.advance, self.covered = font.cw, set(font.cmap)

    def put(self, x: float, y: float, width: float, height: float, text: str, *, size: float) -> None:
        """Centred in the cell; too wide, it shrinks (down to 6 pt), then is cut with an ellipsis."""
        pdf, room = self.pdf, width - 1.6
        if any(ord(c) not in self.covered for c in text):
            pdf.set_font_size(size)
            while size > 6 and pdf.get_string_width(text) > room:
                size -= 0.5
                pdf.set_font_size(size)
            pdf.set_xy(x, y)
            pdf.cell(width, height, text, align="C")
            return
        units = sum(self.advance[ord(c)] for c in text)  # thousandths of the font size
        while size > 6 and units * size * PT / 1000 > room:
            size -= 0.5
        if units * size * PT / 1000 > room:
            ellipsis = self.advance[ord("…")] if ord("…") in self.covered else 0
            while text and (units + ellipsis) * size * PT / 1000 > room:
                units -= self.advance[ord(text[-1])]
                text = text[:-1]
            text, units = text + ("…" if ellipsis else ""), units + ellipsis
        pdf.set_font_size(size)
        # The baseline where cell() puts it: half the height down, then 0.3 of the font size.
        pdf.text(x + (width - units * size * PT / 1000) / 2, y + height / 2 + 0.3 * size * PT, text)


def _texts(roster: Roster) -> Iterator[str]:
    yield from (c for c, _ in COLUMNS)
    yield f"{roster.school.name}{roster.meal_model}{roster.class_name or ''}{roster.printed_by}"
    for row in roster.rows:
        yield row.name
        yield row.class_label
        yield row.sex + row.boarding


def _add_font(pdf: FPDF, family: str, font: FontFile) -> set[int] | str:
    """Loads one font file; the code points it covers, or why it cannot be used."""
    if not font.path.is_file():
        return f"{font.path} 不存在"
    with font.path.open("rb") as file:
        magic = file.read(4)
    # Sniffed first: fontTools leaves the file open when it fails on something that is not a font at all.
    if magic not in FONT_MAGIC:
        return f"{font.path} 不是 TrueType/OpenType 字体"
    try:
        pdf.add_font(family, fname=font.path, collection_font_number=font.index)
    except Exception as err:  # fontTools and fpdf2 raise many kinds on a broken or foreign file
        return f"{font.path} 无法读取（{type(err).__name__}）"
    return set(pdf.fonts[family].cmap)


def _load_fonts(pdf: FPDF, roster: Roster, setting: str | None) -> None:
    """The first usable candidate is the roster's font; the other known fonts are loaded (each costs a
    fraction of a second) only when a name needs a character it lacks, rare ones such as 䶮 being common in names."""
    primaries = font_candidates(setting)
    problems: list[str] = []
    covered: set[int] = set()
    for number, font in enumerate(primaries):
        loaded = _add_font(pdf, f"cjk{number}", font)
        if isinstance(loaded, str) or not {ord(c) for c in "受益学生花名册"} <= loaded:
            problems.append(loaded if isinstance(loaded, str) else f"{font.path} 不含中文字形")
            continue
        pdf.set_font(f"cjk{number}", size=9)
        covered, used = loaded, font
        break
    else:
        raise _missing_font(setting, "；".join(problems) or "没有候选字体")
    needed = {ord(c) for text in _texts(roster) for c in text if not c.isspace()}
    missing = needed - covered
    fallbacks: list[str] = []
    for number, font in enumerate(f for f in font_candidates(None) if f != used):
        if not missing:
            break
        loaded = _add_font(pdf, f"fallback{number}", font)
        if not isinstance(loaded, str) and missing & loaded:
            fallbacks.append(f"fallback{number}")
            missing -= loaded
    if fallbacks:
        pdf.set_fallback_fonts(fallbacks)


def roster_pdf(roster: Roster, *, font: str | None = None) -> bytes:
    """The roster as an A4 landscape PDF with the CJK font embedded (subset); `font` as MEALROLL_PDF_FONT."""
    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    pdf.set_title(roster.file_name.removesuffix(".pdf"))
    pdf.set_creator("mealroll")
    pdf.set_creation_date(datetime.now(local_zone()))
    _load_fonts(pdf, roster, font)
    cells = _Cells(pdf)
    pages = paginate(len(roster.rows))
    for number, rows in enumerate(pages, start=1):
        pdf.add_page()
        _page_head(pdf, roster)
        _table(pdf, cells, roster, rows)
        if number == len(pages):
            _closing(pdf, roster)
        _page_foot(pdf, roster, number, len(pages))
    return bytes(pdf.output())


def _page_head(pdf: FPDF, roster: Roster) -> None:
    width = PAGE_W - 2 * MARGIN
    pdf.set_xy(MARGIN, 10)
    pdf.set_font_size(17)
    pdf.cell(width, 9, "受益学生花名册", align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font_size(9.5)
    pdf.set_y(21)
    pdf.cell(width / 2, 6, f"学校：{roster.school.name}　　学校代码：{roster.school.code}")
    right = f"{roster.year_label}　{roster.month_label}" + (f"　班级：{roster.class_name}" if roster.class_name else "")
    pdf.cell(width / 2, 6, right, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.cell(width / 2, 6, f"供餐模式：{roster.meal_model or '未填写'}")
    printed = roster.printed_on
    pdf.cell(width / 2, 6, f"打印日期：{printed.year}年{printed.month}月{printed.day}日", align="R")


def _table(pdf: FPDF, cells: _Cells, roster: Roster, rows: range) -> None:
    """The header row and this page's rows: the grid drawn as lines, the text placed by _Cells."""
    widths = [w for _, w in COLUMNS]
    lefts = [MARGIN + sum(widths[:i]) for i in range(len(widths))]
    right, body_top = MARGIN + sum(widths), TABLE_TOP + HEAD_H
    bottom = body_top + max(len(rows), 1) * ROW_H
    pdf.set_fill_color(235, 235, 235)
    pdf.rect(MARGIN, TABLE_TOP, right - MARGIN, HEAD_H, style="DF")
    pdf.rect(MARGIN, TABLE_TOP, right - MARGIN, bottom - TABLE_TOP)
    for i in range(1, len(rows)):
        pdf.line(MARGIN, body_top + i * ROW_H, right, body_top + i * ROW_H)
    # With no student the one row spans the table: only the header is divided into columns.
    for x in lefts[1:]:
        pdf.line(x, TABLE_TOP, x, bottom if roster.rows else body_top)
    for (title, width), x in zip(COLUMNS, lefts, strict=True):
        cells.put(x, TABLE_TOP, width, HEAD_H, title, size=10)
    if not roster.rows:
        cells.put(MARGIN, body_top, right - MARGIN, ROW_H, "本月没有受益学生", size=10)
    y = body_top
    for index in rows:
        row = roster.rows[index]
        values = (str(row.number), row.name, row.sex, row.student_number, row.id_number, row.class_label,
                  row.boarding, "是" if row.boarding_allowance else "否")
        for column, (value, x) in enumerate(zip(values, lefts, strict=False)):
            cells.put(x, y, widths[column], ROW_H, value, size=9.5 if column == 1 else 9)
        y += ROW_H
    pdf.set_y(bottom)


def _closing(pdf: FPDF, roster: Roster) -> None:
    """Totals, who made the roster and the principal's signature, and the box for the school's stamp."""
    top = pdf.get_y() + 4
    t = roster.totals
    pdf.set_xy(MARGIN, top)
    pdf.set_font_size(10.5)
    pdf.cell(180, 8, f"合计：受益学生 {t.students} 人，其中住校 {t.boarders} 人，享受一补 {t.boarding_allowance} 人。")
    pdf.set_xy(MARGIN, top + 11)
    pdf.set_font_size(9)
    pdf.cell(180, 6, "以上学生信息经监护人核对无误并签字确认；学校核实盖章后报县教育局审核（办法第十六条）。")
    pdf.set_font_size(10.5)
    pdf.set_xy(MARGIN, top + 26)
    pdf.cell(90, 8, "制表人（签字）：______________")
    pdf.cell(90, 8, "校长（签字）：______________")
    pdf.set_xy(MARGIN, top + 38)
    pdf.cell(90, 8, "日期：______年____月____日")
    box_w, box_h = 62.0, 46.0
    x = PAGE_W - MARGIN - box_w
    pdf.rect(x, top + 2, box_w, box_h)
    pdf.set_xy(x, top + 3)
    pdf.set_font_size(10)
    pdf.cell(box_w, 7, "学校盖章", align="C")


def _page_foot(pdf: FPDF, roster: Roster, number: int, total: int) -> None:
    pdf.set_font_size(8.5)
    pdf.set_xy(MARGIN, FOOTER_Y)
    pdf.cell(90, 6, f"{roster.school.name} {roster.month_label}受益学生花名册")
    pdf.set_font_size(10)
    pdf.set_xy(MARGIN, FOOTER_Y)
    pdf.cell(PAGE_W - 2 * MARGIN, 6, f"第 {number} 页 共 {total} 页", align="C")
