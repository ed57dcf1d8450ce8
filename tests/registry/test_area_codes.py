"""The GB/T 2260 table for Guizhou (registry/codes/area.csv) and the area-code warnings it drives."""

import importlib.util
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from registry.code_tables import CodeItem, CodeTableError, CodeTables, load_code_tables
from registry.rules.findings import Finding, errors
from registry.rules.id_number import check_digit
from registry.rules.student import check_student

ROOT = Path(__file__).resolve().parents[2]
CODES = load_code_tables()
TODAY = date(2024, 10, 8)

PREFECTURES = {
    "520100": "贵阳市", "520200": "六盘水市", "520300": "遵义市", "520400": "安顺市", "520500": "毕节市",
    "520600": "铜仁市", "522300": "黔西南布依族苗族自治州", "522600": "黔东南苗族侗族自治州",
    "522700": "黔南布依族苗族自治州",
}
# Former code → current code: the renamings of DESIGN's "older codes still found in ID numbers".
FORMER = {
    "522400": "520500", "522401": "520502", "522422": "520521", "522423": "520581", "522424": "520523",
    "522425": "520524", "522426": "520525", "522427": "520526", "522428": "520527",
    "522200": "520600", "522201": "520602", "522222": "520621", "522223": "520622", "522224": "520623",
    "522225": "520624", "522226": "520625", "522227": "520626", "522228": "520627", "522229": "520628",
    "522230": "520603",
    "520114": "520111", "520421": "520403", "520321": "520304", "520222": "520281", "522322": "522302",
    "520221": "520204", "520522": "520581",
}


def _load_generator() -> Any:
    # bench/ is a folder of scripts, not a package: load the file itself.
    spec = importlib.util.spec_from_file_location("bench_generate_area", ROOT / "bench" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def resident_id(area: str, birth: str = "20120304", seq: str = "001") -> str:
    first17 = f"{area}{birth}{seq}"
    return first17 + check_digit(first17)


def student(**changes: Any) -> dict[str, Any]:
    """A boy from 天柱县 in grade 6, valid in every respect."""
    number = resident_id("522627")
    data: dict[str, Any] = {
        "name": "杨小明", "sex": "1", "birth_date": "2012-03-04", "id_type": "1", "id_number": number,
        "ethnicity": "12", "hukou_area": "522627", "school_code": "2152000123", "grade": 6,
        "class_name": "六（1）班", "enrolled_month": "2018-09", "boarding_mode": "2",
        "student_number": number, "national_student_number": "G" + number,
    }
    if "id_number" in changes:
        data["student_number"] = changes["id_number"]
        data["national_student_number"] = "G" + changes["id_number"]
    data.update(changes)
    return data


def check(data: dict[str, Any], codes: CodeTables = CODES) -> list[Finding]:
    return check_student(data, today=TODAY, codes=codes)


# The table --------------------------------------------------------------------------------------


def test_the_area_table_is_national() -> None:
    assert "area" in CODES.names()
    assert CODES.label("area", "520000") == "贵州省"


def test_province_prefectures_and_88_current_county_level_codes_are_offered() -> None:
    rows = CODES.table("area")
    codes = [item.code for item in rows]
    assert len(codes) == len(set(codes)) == 1 + 9 + 88
    assert rows[0] == CodeItem("520000", "贵州省")
    assert {c: CODES.label("area", c) for c in codes if c.endswith("00") and c != "520000"} == PREFECTURES
    counties = [c for c in codes if not c.endswith("00")]
    assert len(counties) == 88
    assert all(c.startswith("52") and len(c) == 6 and c.isdigit() for c in codes)
    # Each prefecture is followed by its own units.
    prefecture = None
    for code in codes[1:]:
        if code.endswith("00"):
            prefecture = code[:4]
        else:
            assert code[:4] == prefecture, code
    per_prefecture = {p: sum(c.startswith(p[:4]) for c in counties) for p in PREFECTURES}
    assert per_prefecture == {"520100": 10, "520200": 4, "520300": 14, "520400": 6, "520500": 8,
                              "520600": 10, "522300": 8, "522600": 16, "522700": 12}


@pytest.mark.parametrize(
    ("code", "label"),
    [("520102", "南明区"), ("520115", "观山湖区"), ("520204", "水城区"), ("520281", "盘州市"),
     ("520304", "播州区"), ("520403", "平坝区"), ("520422", "普定县"), ("520502", "七星关区"),
     ("520526", "威宁彝族回族苗族自治县"), ("520581", "黔西市"), ("520603", "万山区"),
     ("522302", "兴仁市"), ("522627", "天柱县"), ("522702", "福泉市"), ("522732", "三都水族自治县")],
)
def test_spot_checks_of_current_names(code: str, label: str) -> None:
    assert CODES.label("area", code) == label
    assert CodeItem(code, label) in CODES.table("area")
    assert CODES.resolve_label("area", label) == code
    assert CODES.replacement("area", code) is None


def test_former_codes_are_known_marked_and_not_offered() -> None:
    offered = {item.code for item in CODES.table("area")}
    for former, current in FORMER.items():
        assert CODES.contains("area", former), former
        assert CODES.replacement("area", former) == current, former
        assert former not in offered and current in offered
    assert CODES.label("area", "522401") == "毕节市（原毕节地区毕节市）"
    assert CODES.label("area", "520421") == "平坝县（原安顺市平坝县）"
    # Like an alias, a former label resolves to the code to store today.
    assert CODES.resolve_label("area", "盘县（原六盘水市盘县）") == "520281"
    # Every former row is one of these: nothing else hides in the file.
    text = (ROOT / "registry" / "codes" / "area.csv").read_text(encoding="utf-8")
    former_rows = [line.split(",")[0] for line in text.splitlines()[1:] if line and not line.endswith(",")]
    assert sorted(former_rows) == sorted(FORMER)


def test_the_table_agrees_with_the_benchmark_generator() -> None:
    gen = _load_generator()
    offered = {item.code: item.label for item in CODES.table("area")}
    assert {c.code: c.name for c in gen.COUNTIES} == {c: n for c, n in offered.items() if not c.endswith("00")}
    assert {f"{p}00": name for p, name in gen.PREFECTURES.items()} == PREFECTURES
    for county in gen.COUNTIES:
        for code, _ in county.former:
            assert CODES.replacement("area", code) == county.code, code
    assert all(CODES.contains("area", code) for code in gen.AREA_CODES)


# The loader's former-code column ----------------------------------------------------------------


def test_a_county_area_file_replaces_the_shipped_table(tmp_path: Path) -> None:
    (tmp_path / "area.csv").write_text(
        "code,label,replaced_by\n520000,贵州省,\n520102,南明区,\n520199,某新区,\n520114,小河区,520102\n",
        encoding="utf-8")
    codes = CodeTables(extra_dir=tmp_path)
    assert [item.code for item in codes.table("area")] == ["520000", "520102", "520199"]
    assert codes.replacement("area", "520114") == "520102"
    assert not codes.contains("area", "522627")
    assert CODES.contains("area", "522627")  # the shipped instance is untouched


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("code,label,replaced_by\n1,甲,\n,乙,1\n", "要么有代码"),
        ("code,label,alias_of,replaced_by\n1,甲,,\n,乙,1,1\n", "停用代码行"),
        ("code,label,replaced_by\n1,甲,\n2,乙,9\n", "现行代码 9 不是代码表 area 中的现行代码"),
        ("code,label,replaced_by\n1,甲,\n2,乙,3\n3,丙,1\n", "现行代码 3 不是代码表 area 中的现行代码"),
        ("code,label,replaced_by\n1,甲,\n2,甲,1\n", "名称“甲”重复"),
    ],
)
def test_bad_former_rows_are_refused(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "area.csv").write_text(text, encoding="utf-8")
    with pytest.raises(CodeTableError, match=message):
        CodeTables(extra_dir=tmp_path)


# The warnings -----------------------------------------------------------------------------------


def test_a_valid_guizhou_student_raises_nothing() -> None:
    assert check(student()) == []


@pytest.mark.parametrize("area", ["520102", "520581", "522732", "520100", "520000"])
def test_current_guizhou_codes_raise_nothing(area: str) -> None:
    assert check(student(id_number=resident_id(area), hukou_area=area)) == []


@pytest.mark.parametrize("area", sorted(FORMER))
def test_former_codes_in_an_id_number_raise_nothing(area: str) -> None:
    assert check(student(id_number=resident_id(area))) == []


def test_an_unknown_guizhou_code_in_an_id_number_is_a_warning() -> None:
    findings = check(student(id_number=resident_id("520999")))
    assert findings == [
        Finding("id_number", "unknown_area", "身份证件号：地区码 520999 不在贵州省行政区划代码表中，请核对", "warning"),
    ]
    assert errors(findings) == []


def test_an_unknown_guizhou_hukou_area_is_a_warning() -> None:
    assert check(student(hukou_area="522799")) == [
        Finding("hukou_area", "unknown_area", "户籍所在地：522799 不在贵州省行政区划代码表中，请核对", "warning"),
    ]


def test_a_former_hukou_area_is_a_warning_naming_the_current_code() -> None:
    assert check(student(hukou_area="522401")) == [
        Finding("hukou_area", "former_area",
                "户籍所在地：522401 毕节市（原毕节地区毕节市）已撤销或更名，现行代码为 520502 七星关区，请核对",
                "warning"),
    ]


@pytest.mark.parametrize("area", ["110105", "500101", "510104", "530102", "440305", "650102", "990101"])
def test_other_provinces_raise_nothing(area: str) -> None:
    # 随迁子女: a migrant child from another province is no data error; nor can the table tell a
    # code of a province it does not hold from a typo there.
    assert check(student(id_number=resident_id(area), hukou_area=area, migrant_child=True)) == []


def test_only_resident_ids_are_checked() -> None:
    assert check(student(id_type="A", id_number="E12345678", student_number=None,
                         national_student_number=None)) == []


def test_a_fifteen_digit_id_is_checked_after_its_upgrade() -> None:
    data = student(id_number="520999850304001", birth_date="1985-03-04", grade=9,
                   student_number=None, national_student_number=None)
    found = [(f.field, f.code, f.severity) for f in check(data)]
    assert ("id_number", "unknown_area", "warning") in found
    assert errors(check(data)) == []
