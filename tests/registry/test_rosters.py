"""受益学生花名册 (Art. 16) on a real database: who is on it for a month, what the paper shows, and its PDF."""

import io
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.access import mask_id_number
from registry.audit import AuditEntry
from registry.errors import NotFound, PermissionDenied, RuleViolation
from registry.org_units import OrgUnit
from registry.rosters import (
    PdfFontMissing,
    class_label,
    paginate,
    parse_font_setting,
    roster,
    roster_month,
    roster_pdf,
    school_year_of,
)
from registry.student_status import change_status
from registry.students import EnrolmentPeriod, Student, StudentStatus
from registry.transfers import move_within_county
from tests.factories import SCHOOL_1, SCHOOL_2, admit, make_id_number, make_school, make_user, user

CONFIRMED = datetime(2025, 9, 20, 2, 0, tzinfo=UTC)
BIRTH = date(2015, 11, 23)  # this file's own birth date: ID numbers no other test makes
TODAY = date(2026, 9, 8)
SURNAMES = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨"
GIVEN = ("子涵", "雨桐", "浩然", "梓萱", "思远")


def names(r: Any) -> list[str]:
    return [row.name for row in r.rows]


def enrol(session: Session, school: OrgUnit, *, seq: int, name: str, grade: int = 3,
          class_name: str = "三年级（1）班", from_month: str = "2025-09", to_month: str | None = None,
          status: str = StudentStatus.active, boarding_mode: str = "1", boarding_allowance: bool = False) -> Student:
    """A confirmed record and its enrolment period written directly: what intake leaves behind, without the
    three approvals each (the process itself is covered in test_intake.py)."""
    id_number = make_id_number(birth=BIRTH, seq=seq)
    student = Student(school_id=school.id, status=status, name=name, sex="1" if seq % 2 else "2", birth_date=BIRTH,
                      id_type="1", id_number=id_number, ethnicity="01", grade=grade, class_name=class_name,
                      enrolled_month=from_month, boarding_mode=boarding_mode, boarding_allowance=boarding_allowance,
                      student_number=id_number)
    session.add(student)
    session.flush()
    session.add(EnrolmentPeriod.opening(student, school, from_month, to_month=to_month))
    session.flush()
    return student


@pytest.fixture
def school(session: Session) -> OrgUnit:
    unit = make_school(session, code="2152019961", name="花名册测试小学")
    make_user(session, "roster_registrar", role="school_registrar", org_unit_code=unit.code)
    return unit


def print_roster(session: Session, school: OrgUnit, **kwargs: Any) -> Any:
    kwargs.setdefault("today", TODAY)
    return roster(session, actor=user(session, "roster_registrar"), school_code=school.code, **kwargs)


# Who is on it -----------------------------------------------------------------------------------------


def test_the_roster_lists_the_months_beneficiaries_by_grade_class_and_name(session: Session, school: OrgUnit) -> None:
    enrol(session, school, seq=1, name="王五", grade=4, class_name="四年级（10）班")
    enrol(session, school, seq=3, name="李四", grade=4, class_name="四年级（9）班")
    enrol(session, school, seq=5, name="张三", grade=3)
    enrol(session, school, seq=7, name="陈二", grade=3)
    enrol(session, school, seq=9, name="已作废", status=StudentStatus.voided)
    enrol(session, school, seq=11, name="已离校", from_month="2024-09", to_month="2026-08")
    enrol(session, school, seq=13, name="十月入学", from_month="2026-10")
    r = print_roster(session, school)
    assert r.month == "2026-09" and r.period_label == "2026–2027 学年 2026年9月"
    # Grade, then class as a person counts ((9) before (10)), then name; numbered from 1.
    assert names(r) == ["张三", "陈二", "李四", "王五"]
    assert [row.number for row in r.rows] == [1, 2, 3, 4]
    assert r.classes == ["三年级（1）班", "四年级（9）班", "四年级（10）班"]
    assert names(print_roster(session, school, month=10)) == ["十月入学", "张三", "陈二", "李四", "王五"]
    assert "已离校" in names(print_roster(session, school, year=2025, month=8))


def test_a_student_transferred_out_is_on_the_old_roster_only_before_the_transfer_month(session: Session) -> None:
    student = admit(session, now=CONFIRMED, seq=101, birth=BIRTH, name="转学生", enrolled_month="2025-09")
    move_within_county(session, student_id=student.id, to_school_code=SCHOOL_2, change_month="2026-03",
                       actor=user(session, "reviewer"))
    registrar1, registrar2 = user(session, "registrar1"), user(session, "registrar2")

    def on(actor: Any, code: str, month: int) -> bool:
        return "转学生" in names(roster(session, actor=actor, school_code=code, year=2025, month=month, today=TODAY))

    # Art. 15: from the change month the subsidy is no longer paid at the old school.
    assert on(registrar1, SCHOOL_1, 2) and not on(registrar1, SCHOOL_1, 3)
    assert on(registrar2, SCHOOL_2, 3) and not on(registrar2, SCHOOL_2, 2)


def test_a_suspended_student_is_not_on_the_roster_from_the_suspension_month(session: Session) -> None:
    student = admit(session, now=CONFIRMED, seq=103, birth=BIRTH, name="休学生", enrolled_month="2025-09")
    change_status(session, student_id=student.id, to_status=StudentStatus.suspended, effective_month="2026-01",
                  reason="病休", actor=user(session, "reviewer"))
    registrar = user(session, "registrar1")

    def on(month: int) -> bool:
        return "休学生" in names(roster(session, actor=registrar, school_code=SCHOOL_1, year=2025, month=month,
                                      today=TODAY))

    assert on(12) and not on(1) and not on(6)


def test_the_class_filter_takes_the_printed_label_or_the_stored_class_name(session: Session, school: OrgUnit) -> None:
    enrol(session, school, seq=21, name="三年级一班生", grade=3, class_name="1班")
    enrol(session, school, seq=23, name="四年级一班生", grade=4, class_name="1班")
    enrol(session, school, seq=25, name="四年级二班生", grade=4, class_name="2班", boarding_mode="2",
          boarding_allowance=True)
    assert names(print_roster(session, school, class_name="四年级1班")) == ["四年级一班生"]
    assert names(print_roster(session, school, class_name="1班")) == ["三年级一班生", "四年级一班生"]
    only = print_roster(session, school, class_name="四年级2班")
    assert only.class_name == "四年级2班" and names(only) == ["四年级二班生"]
    assert (only.totals.students, only.totals.boarders, only.totals.boarding_allowance) == (1, 1, 1)
    # The filter's choices are the whole school's classes, whichever one is shown.
    assert only.classes == ["三年级1班", "四年级1班", "四年级2班"]


def test_id_and_student_numbers_are_masked_even_for_a_registrar_who_reads_them_in_full(
        session: Session, school: OrgUnit) -> None:
    student = enrol(session, school, seq=31, name="遮挡", boarding_mode="2", boarding_allowance=True)
    row = print_roster(session, school).rows[0]
    # Art. 10: the ID number is the 学籍主号, so the 学籍号 is masked as well.
    assert row.id_number == row.student_number == mask_id_number(student.id_number) != student.id_number
    assert (row.sex, row.boarding, row.boarding_allowance, row.class_label) == ("男", "住校", True, "三年级（1）班")


@pytest.mark.parametrize(("grade", "stored", "printed"), [
    (6, "六年级（3）班", "六年级（3）班"), (6, "（3）班", "六年级（3）班"), (7, "1班", "七年级1班"),
    (7, "初一（2）班", "初一（2）班"), (9, " 九年级3班 ", "九年级3班")])
def test_the_grade_is_printed_once(grade: int, stored: str, printed: str) -> None:
    assert class_label(grade, stored) == printed


def test_year_means_the_school_year_and_the_default_is_its_september() -> None:
    assert school_year_of(date(2027, 3, 5)) == 2026 and school_year_of(date(2026, 9, 1)) == 2026
    assert school_year_of(date(2026, 8, 31)) == 2025
    assert roster_month(school_year=2026, month=None) == "2026-09"
    assert roster_month(school_year=2026, month=12) == "2026-12"
    assert roster_month(school_year=2026, month=3) == "2027-03"


def test_a_roster_printed_in_spring_defaults_to_the_september_before(session: Session, school: OrgUnit) -> None:
    assert print_roster(session, school, today=date(2027, 3, 5)).month == "2026-09"


def test_an_impossible_month_or_year_is_refused(session: Session, school: OrgUnit) -> None:
    with pytest.raises(RuleViolation, match="月份"):
        print_roster(session, school, month=13)
    with pytest.raises(RuleViolation, match="学年"):
        print_roster(session, school, year=1899)


# Who may print it -------------------------------------------------------------------------------------


def test_registrar_of_another_school_gets_not_found(session: Session) -> None:
    with pytest.raises(NotFound):
        roster(session, actor=user(session, "registrar2"), school_code=SCHOOL_1, today=TODAY)


def test_the_township_and_the_county_may_print_a_process_admin_may_not(session: Session) -> None:
    for username in ("principal1", "township1", "reviewer", "aidcenter", "admin", "auditor"):
        assert roster(session, actor=user(session, username), school_code=SCHOOL_1, today=TODAY).school.code == SCHOOL_1
    with pytest.raises(PermissionDenied):
        roster(session, actor=user(session, "processadmin"), school_code=SCHOOL_1, today=TODAY)


def test_every_print_is_audited(session: Session, school: OrgUnit) -> None:
    enrol(session, school, seq=41, name="审计")
    print_roster(session, school, month=10, medium="pdf")
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "roster.print",
                                                     AuditEntry.object_id == school.code)).one()
    assert entry.actor is not None and entry.actor.username == "roster_registrar"
    assert (entry.object_type, entry.org_unit_id) == ("roster", school.id)
    assert entry.after == {"month": "2026-10", "class_name": None, "students": 1, "medium": "pdf"}


# The PDF ----------------------------------------------------------------------------------------------


def test_the_pdf_carries_the_names_as_text_page_numbers_and_an_embedded_font(session: Session,
                                                                           school: OrgUnit) -> None:
    made = [f"{SURNAMES[i % 16]}{GIVEN[i % 5]}{'甲乙丙'[i // 20]}" for i in range(60)]
    for i, name in enumerate(made):
        enrol(session, school, seq=201 + i, name=name, grade=3 + i // 20, class_name=f"（{i // 20 + 1}）班")
    printed = print_roster(session, school)
    pdf = PdfReader(io.BytesIO(roster_pdf(printed)))
    texts = [page.extract_text() for page in pdf.pages]
    # 20 rows a page; the totals, signatures and stamp box do not fit under the third page's 20: a 4th page
    # takes them with the last 3 rows.
    assert len(pdf.pages) == 4
    for number, text in enumerate(texts, start=1):
        assert f"第 {number} 页 共 4 页" in text
        assert "受益学生花名册" in text and "花名册测试小学" in text and "2026–2027 学年" in text
    everything = "\n".join(texts)
    assert all(name in everything for name in made)
    assert "五年级（3）班" in everything and "合计：受益学生 60 人" in everything
    last = [row.name for row in printed.rows[-4:]]
    assert "学校盖章" in texts[-1] and all(name in texts[-1] for name in last[1:]) and last[0] not in texts[-1]
    assert not re.search(r"\d{17}[\dX]", everything)  # no ID number in full
    for page in pdf.pages:
        for font in page["/Resources"]["/Font"].values():
            descriptor = font.get_object()["/DescendantFonts"][0].get_object()["/FontDescriptor"].get_object()
            assert "/FontFile2" in descriptor or "/FontFile3" in descriptor


def test_pages_are_counted_before_drawing() -> None:
    assert [len(p) for p in paginate(0)] == [0]
    assert [len(p) for p in paginate(12)] == [12]  # room left for the closing block
    # Not enough: the last 3 rows go with the block to a page of its own, so the stamp page lists students too.
    assert [len(p) for p in paginate(13)] == [10, 3]
    assert [len(p) for p in paginate(40)] == [20, 17, 3]
    assert [len(p) for p in paginate(45)] == [20, 20, 5]
    assert [(p.start, p.stop) for p in paginate(60)] == [(0, 20), (20, 40), (40, 57), (57, 60)]


def test_an_empty_roster_is_one_page(session: Session, school: OrgUnit) -> None:
    pdf = PdfReader(io.BytesIO(roster_pdf(print_roster(session, school))))
    assert len(pdf.pages) == 1
    text = pdf.pages[0].extract_text()
    assert "本月没有受益学生" in text and "第 1 页 共 1 页" in text and "合计：受益学生 0 人" in text


def test_without_a_usable_font_the_pdf_says_so_in_chinese(session: Session, school: OrgUnit, tmp_path: Path) -> None:
    r = print_roster(session, school)
    not_a_font = tmp_path / "font.ttf"
    not_a_font.write_text("不是字体")
    for setting in (str(tmp_path / "missing.ttc"), str(not_a_font)):
        with pytest.raises(PdfFontMissing, match="中文字体") as raised:
            roster_pdf(r, font=setting)
        assert raised.value.status == 503 and setting in raised.value.message


def test_a_font_setting_may_name_a_face_of_a_collection() -> None:
    assert parse_font_setting("/fonts/a.ttc#2") == parse_font_setting(" /fonts/a.ttc#2 ")
    assert (str(parse_font_setting("/fonts/a.ttc#2").path), parse_font_setting("/fonts/a.ttc#2").index) == \
        ("/fonts/a.ttc", 2)
    assert parse_font_setting("/fonts/b.ttf").index == 0


NOTO = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")


@pytest.mark.skipif(not NOTO.is_file(), reason="needs Debian's fonts-noto-cjk as the fallback font")
def test_a_rare_character_the_main_font_lacks_comes_from_a_fallback_font(
        session: Session, school: OrgUnit, caplog: pytest.LogCaptureFixture) -> None:
    enrol(session, school, seq=51, name="王䶮")  # U+4DAE, CJK Extension A: not in WenQuanYi Micro Hei
    pdf = PdfReader(io.BytesIO(roster_pdf(print_roster(session, school))))
    assert "missing" not in caplog.text
    assert len(pdf.pages[0]["/Resources"]["/Font"]) == 2
