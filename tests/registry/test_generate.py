"""bench/generate.py: the synthetic county is reproducible, valid by our own rules, and realistic."""

import csv
import importlib.util
import sys
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from registry.code_tables import load_code_tables
from registry.rules.findings import errors, warnings
from registry.rules.id_number import parse_id_number
from registry.rules.student import FIELD_LABELS, check_student

ROOT = Path(__file__).resolve().parents[2]
CODES = load_code_tables()
YEAR = 2025  # school year 2025/26: fixed, so that ages and enrolment months do not drift
TODAY = date(YEAR, 10, 15)


def _load_generator() -> Any:
    # bench/ is a folder of scripts, not a package: load the file itself.
    spec = importlib.util.spec_from_file_location("bench_generate", ROOT / "bench" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


@pytest.fixture(scope="module")
def small() -> Any:
    return gen.generate_county(11, students=2_000, school_year=YEAR)


@pytest.fixture(scope="module")
def large() -> Any:
    """Big enough for shares to settle: the sampling noise on a 30% share is about ±0.5 points."""
    return gen.generate_county(5, students=20_000, school_year=YEAR)


def age_on_first_september(birth_date: str, year: int) -> int:
    born = date.fromisoformat(birth_date)
    return year - born.year - ((9, 1) < (born.month, born.day))


def share(rows: list[dict[str, Any]], predicate: Any) -> float:
    return sum(1 for r in rows if predicate(r)) / len(rows)


def test_the_same_seed_gives_the_same_county() -> None:
    first = gen.generate_county(3, students=2_000, school_year=YEAR)
    again = gen.generate_county(3, students=2_000, school_year=YEAR)
    other = gen.generate_county(4, students=2_000, school_year=YEAR)
    assert again.students[:100] == first.students[:100]
    assert again.schools == first.schools
    assert other.students[:100] != first.students[:100]
    # Streaming yields exactly what the in-memory county holds.
    streamed = gen.plan_county(3, students=2_000, school_year=YEAR).iter_students()
    assert list(streamed) == first.students


def test_every_student_passes_check_student_without_errors(small: Any) -> None:
    assert len(small.students) == 2_000
    flagged = Counter()
    for student in small.students:
        findings = check_student(student, today=TODAY, codes=CODES)
        assert errors(findings) == [], (student, errors(findings))
        flagged.update(f.code for f in warnings(findings))
    # The few students over their grade's age band are there on purpose, and only they warn.
    assert set(flagged) <= {"age_for_grade"}
    assert flagged["age_for_grade"] <= 0.02 * len(small.students)


def test_ids_are_unique_except_siblings_on_a_guardians_number(large: Any) -> None:
    students = large.students
    assert len({(s["id_number"], s["student_number_aux"]) for s in students}) == len(students)
    assert len({s["national_student_number"] for s in students}) == len(students)
    by_id: dict[str, list[dict[str, Any]]] = {}
    for s in students:
        by_id.setdefault(s["id_number"], []).append(s)
    pairs = [group for group in by_id.values() if len(group) > 1]
    assert pairs, "the deliberate sibling pairs are missing"
    for group in pairs:
        assert len(group) == 2
        a, b = group
        assert {a["student_number_aux"], b["student_number_aux"]} == {"01", "02"}
        assert a["id_type"] == b["id_type"] == "Z"  # no ID of their own: 主号 is the guardian's
        assert a["guardian_name"] == b["guardian_name"] and a["guardian_phone"] == b["guardian_phone"]
        assert a["school_code"] == b["school_code"]
        assert parse_id_number(a["id_number"]).birth_date.year < 2000  # an adult's number
        assert a["national_student_number"][0] == "J" and a["national_student_number"] != b["national_student_number"]
    sibling_share = sum(len(g) for g in pairs) / len(students)
    assert 0.002 <= sibling_share <= 0.01
    # Everyone else: a resident ID that is their own, matching sex and birth date.
    for s in students:
        if s["id_type"] == "1":
            parsed = parse_id_number(s["id_number"])
            assert (parsed.sex, parsed.birth_date.isoformat()) == (s["sex"], s["birth_date"])
            assert s["student_number"] == s["id_number"] and s["national_student_number"] == "G" + s["id_number"]


def test_ids_carry_guizhou_area_codes_mostly_the_countys_own(large: Any) -> None:
    info = gen.COUNTY_BY_CODE[large.code]
    own = {info.code, *(code for code, _ in info.former)}
    areas = [s["id_number"][:6] for s in large.students]
    assert all(area in gen.AREA_CODES for area in areas)
    assert share(large.students, lambda s: s["id_number"][:6] in own) >= 0.9
    current = {c.code for c in gen.COUNTIES}
    assert all(s["hukou_area"] in current for s in large.students)


def test_grades_and_ages_fit_together(large: Any) -> None:
    schools = {s["code"]: s for s in large.schools}
    regular = 0
    for s in large.students:
        grade = s["grade"]
        age = age_on_first_september(s["birth_date"], YEAR)
        assert grade + 5 <= age <= grade + 9, s
        regular += age <= grade + 7
        school_type = schools[s["school_code"]]["school_type"]
        assert grade in {"211": range(1, 7), "218": range(1, 5), "311": range(7, 10), "312": range(1, 10)}[school_type]
        entry_grade = 7 if school_type == "311" else 1
        assert s["enrolled_month"] == f"{YEAR - (grade - entry_grade)}-09"
        assert s["class_name"].startswith("一二三四五六七八九"[grade - 1] + "年级（") and s["class_name"].endswith("）班")
    assert regular / len(large.students) >= 0.95
    grades = Counter(s["grade"] for s in large.students)
    assert set(grades) == set(range(1, 10))
    assert max(grades.values()) < 1.4 * min(grades.values())


def test_shares_are_realistic(large: Any) -> None:
    students = large.students
    primary = [s for s in students if s["grade"] <= 6]
    junior = [s for s in students if s["grade"] >= 7]
    assert 0.27 <= len(junior) / len(students) <= 0.36
    assert 0.06 <= share(primary, lambda s: s["boarding_mode"] == "2") <= 0.14
    assert 0.22 <= share(junior, lambda s: s["boarding_mode"] == "2") <= 0.38
    boarders = [s for s in students if s["boarding_mode"] == "2"]
    assert all(s["boarding_allowance"] is False for s in students if s["boarding_mode"] == "1")
    assert 0.5 <= share(boarders, lambda s: s["boarding_allowance"]) <= 0.7
    left = Counter(s["left_behind"] for s in students)
    assert 0.18 <= (left["1"] + left["2"]) / len(students) <= 0.32
    assert left["2"] > left["1"]
    assert 0.015 <= share(students, lambda s: s["migrant_child"]) <= 0.05
    assert all(s["left_behind"] == "0" for s in students if s["migrant_child"])
    assert 0.48 <= share(students, lambda s: s["sex"] == "1") <= 0.58
    ethnicities = Counter(s["ethnicity"] for s in students)
    assert 0.5 <= ethnicities["01"] / len(students) <= 0.7  # 普定县: 汉 with 布依 and 苗
    assert {"06", "09"} <= set(ethnicities)
    assert all(CODES.contains("ethnicity", code) for code in ethnicities)
    assert share(students, lambda s: s["guardian_phone"].startswith("1")) >= 0.98
    surnames = Counter(s["name"][0] for s in students)
    assert {"杨", "王", "李", "张"} <= {name for name, _ in surnames.most_common(10)}
    assert all(2 <= len(s["name"]) <= 3 for s in students)


def test_schools_look_like_a_county(large: Any) -> None:
    schools = large.schools
    assert 150 <= len(schools) <= 330
    codes = [s["code"] for s in schools]
    assert len(set(codes)) == len(codes)
    assert all(len(c) == 10 and c.isdigit() and c.startswith("2152") for c in codes)
    assert len({s["name"] for s in schools}) == len(schools)
    types = Counter(s["school_type"] for s in schools)
    assert set(types) == {"211", "218", "311", "312"}
    assert types["218"] >= 0.2 * len(schools)  # 教学点 are many and small
    assert share(schools, lambda s: s["meal_model"] == "1") >= 0.6
    assert share(schools, lambda s: s["urban_rural"] in ("210", "220")) >= 0.6
    assert all(s["subsidy_rate"] == 5 and s["county_code"] == large.code for s in schools)
    assert all(CODES.contains(table, s[table]) for s in schools
               for table in ("school_type", "urban_rural", "meal_model", "sponsor_type"))
    townships = Counter(s["township"] for s in schools)
    assert set(townships) == set(large.townships) and 10 <= len(townships) <= 28
    enrolled = Counter(s["school_code"] for s in large.students)
    assert set(enrolled) <= set(codes)


def test_a_province_run_keeps_ids_and_school_codes_unique_across_counties() -> None:
    counties = list(gen.iter_province(2, school_year=YEAR, counties=4, students_range=(400, 600)))
    assert [c.code for c in counties] == [c.code for c in gen.COUNTIES[:4]]
    keys = [(s["id_number"], s["student_number_aux"]) for c in counties for s in c.iter_students()]
    assert len(set(keys)) == len(keys)
    codes = [s["code"] for c in counties for s in c.schools]
    assert len(set(codes)) == len(codes)


def test_the_area_code_table() -> None:
    assert len(gen.COUNTIES) == 88
    current = [c.code for c in gen.COUNTIES]
    former = [code for c in gen.COUNTIES for code, _ in c.former]
    assert len(set(current)) == 88 and not set(current) & set(former) and len(set(former)) == len(former)
    assert {c.prefecture for c in gen.COUNTIES} == set(gen.PREFECTURES)
    assert all(code.startswith("52") and len(code) == 6 for code in current + former)


def test_the_command_line_writes_csv_files_the_rules_accept(tmp_path: Path) -> None:
    assert gen.main(["--scale", "county", "--seed", "9", "--students", "500", "--school-year", str(YEAR),
                     "--out", str(tmp_path)]) == 0
    with (tmp_path / "students.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    with (tmp_path / "schools.csv").open(encoding="utf-8", newline="") as f:
        schools = list(csv.DictReader(f))
    assert tuple(rows[0]) == gen.STUDENT_COLUMNS
    assert set(gen.STUDENT_COLUMNS) == set(FIELD_LABELS)  # the DESIGN.md student field names
    assert len(rows) == 500 and 150 <= len(schools) <= 330
    # Read back as text, the way an import sees it, every row is still valid.
    for row in rows:
        assert errors(check_student(row, today=TODAY, codes=CODES)) == [], row
    expected = gen.generate_county(9, students=500, school_year=YEAR)
    assert rows[0]["id_number"] == expected.students[0]["id_number"]
    assert [s["code"] for s in schools] == [s["code"] for s in expected.schools]
