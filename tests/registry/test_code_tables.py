from pathlib import Path

import pytest

from registry.code_tables import CodeItem, CodeTableError, CodeTables, load_code_tables

# GB/T 3304-1991 in the standard's order; written out again here so that a reordered CSV fails.
NATIONALITIES = (
    "汉族 蒙古族 回族 藏族 维吾尔族 苗族 彝族 壮族 布依族 朝鲜族 满族 侗族 瑶族 白族 土家族 哈尼族 哈萨克族 傣族 "
    "黎族 傈僳族 佤族 畲族 高山族 拉祜族 水族 东乡族 纳西族 景颇族 柯尔克孜族 土族 达斡尔族 仫佬族 羌族 布朗族 撒拉族 "
    "毛南族 仡佬族 锡伯族 阿昌族 普米族 塔吉克族 怒族 乌孜别克族 俄罗斯族 鄂温克族 德昂族 保安族 裕固族 京族 塔塔尔族 "
    "独龙族 鄂伦春族 赫哲族 门巴族 珞巴族 基诺族"
).split()

EXPECTED = {
    "sex": [("1", "男"), ("2", "女")],
    "id_type": [
        ("1", "居民身份证"), ("6", "香港特区护照/身份证明"), ("7", "澳门特区护照/身份证明"),
        ("8", "台湾居民来往大陆通行证"), ("9", "境外永久居住证"), ("A", "护照"), ("Z", "其他"),
    ],
    "enrolment_mode": [("11", "就近入学"), ("12", "其他")],
    "boarding_mode": [("1", "走读"), ("2", "住校")],
    "health": [("1", "健康或良好"), ("2", "一般或较弱"), ("3", "有慢性病"), ("6", "残疾")],
    "left_behind": [("0", "非留守儿童"), ("1", "单亲留守儿童"), ("2", "双亲留守儿童")],
    "migrant_child": [("0", "否"), ("1", "是")],
    "school_type": [
        ("211", "小学"), ("218", "小学教学点"), ("219", "附设小学班"), ("311", "初级中学"),
        ("312", "九年一贯制学校"), ("319", "附设普通初中班"), ("341", "完全中学"), ("345", "十二年一贯制学校"),
    ],
    "urban_rural": [
        ("111", "主城区"), ("112", "城乡结合区"), ("121", "镇中心区"), ("122", "镇乡结合区"),
        ("123", "特殊区域"), ("210", "乡中心区"), ("220", "村庄"),
    ],
    "sponsor_type": [("811", "教育部门"), ("812", "其他部门"), ("821", "地方企业"), ("891", "民办")],
    "meal_model": [("1", "学校食堂"), ("2", "企业（单位）供餐"), ("3", "家庭（个人）托餐"), ("4", "混合供餐")],
    "ethnicity": [(f"{i:02d}", name) for i, name in enumerate(NATIONALITIES, 1)]
    + [("97", "其他"), ("98", "外国血统中国籍人士")],
}


@pytest.fixture(scope="module")
def codes() -> CodeTables:
    return load_code_tables()


def write(folder: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = folder / name
    path.write_bytes(text.encode(encoding))
    return path


def test_national_table_names(codes: CodeTables) -> None:
    # area (GB/T 2260, Guizhou) is large and tested on its own in test_area_codes.py.
    assert codes.names() == sorted([*EXPECTED, "area"])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_national_table_contents(codes: CodeTables, name: str) -> None:
    assert codes.table(name) == [CodeItem(code, label) for code, label in EXPECTED[name]]


def test_ethnicity_has_56_nationalities_and_two_other_rows(codes: CodeTables) -> None:
    rows = codes.table("ethnicity")
    assert len(NATIONALITIES) == len(set(NATIONALITIES)) == 56
    assert len(rows) == 58
    assert (rows[0], rows[35], rows[36], rows[45], rows[55]) == (
        CodeItem("01", "汉族"), CodeItem("36", "毛南族"), CodeItem("37", "仡佬族"),
        CodeItem("46", "德昂族"), CodeItem("56", "基诺族"),
    )


@pytest.mark.parametrize(
    ("name", "alias", "code"),
    [("ethnicity", "毛难族", "36"), ("ethnicity", "崩龙族", "46"), ("sex", "男性", "1"), ("sex", "女性", "2"),
     ("id_type", "身份证", "1"), ("boarding_mode", "寄宿", "2")],
)
def test_legacy_aliases_resolve_to_the_current_code_but_are_not_offered(
    codes: CodeTables, name: str, alias: str, code: str
) -> None:
    assert codes.resolve_label(name, alias) == code
    assert alias not in {item.label for item in codes.table(name)}
    assert codes.label(name, code) != alias


@pytest.mark.parametrize(
    ("name", "text", "code"),
    [
        ("ethnicity", "汉族", "01"),
        ("ethnicity", " 苗族 ", "06"),
        ("ethnicity", "布 依 族", "09"),
        ("meal_model", "企业(单位)供餐", "2"),
        ("meal_model", "家庭（个人）托餐", "3"),
        ("id_type", "香港特区护照／身份证明", "6"),
        ("school_type", "小学教学点", "218"),
        ("ethnicity", "汉", None),
        ("ethnicity", "01", None),
        ("sex", "", None),
    ],
)
def test_resolve_label(codes: CodeTables, name: str, text: str, code: str | None) -> None:
    assert codes.resolve_label(name, text) == code


@pytest.mark.parametrize(
    ("name", "code", "label"),
    [("ethnicity", "06", "苗族"), ("ethnicity", "6", None), ("sex", "0", None), ("sex", "9", None),
     ("id_type", "a", None), ("id_type", "A", "护照"), ("urban_rural", "11", None)],
)
def test_label_and_contains(codes: CodeTables, name: str, code: str, label: str | None) -> None:
    assert codes.label(name, code) == label
    assert codes.contains(name, code) is (label is not None)


def test_contains_none_is_false(codes: CodeTables) -> None:
    assert codes.contains("sex", None) is False


def test_unknown_table_is_a_key_error_naming_the_known_ones(codes: CodeTables) -> None:
    for call in (
        lambda: codes.table("nation"),
        lambda: codes.label("nation", "01"),
        lambda: codes.contains("nation", "01"),
        lambda: codes.resolve_label("nation", "汉族"),
    ):
        with pytest.raises(KeyError, match="unknown code table 'nation'; known tables: area, boarding_mode, "):
            call()


def test_table_returns_a_copy(codes: CodeTables) -> None:
    codes.table("sex").append(CodeItem("9", "未说明的性别"))
    assert len(codes.table("sex")) == 2


def test_load_code_tables_is_shared() -> None:
    assert load_code_tables() is load_code_tables()


def test_every_shipped_csv_is_a_table() -> None:
    folder = Path(__file__).parents[2] / "registry" / "codes"
    assert sorted(p.stem for p in folder.glob("*.csv")) == sorted([*EXPECTED, "area"])


# County codes ------------------------------------------------------------------------------------


def test_county_rows_are_appended_after_the_national_ones(tmp_path: Path) -> None:
    write(tmp_path, "ethnicity.csv", "code,label,alias_of\n99,穿青人,\n,穿青,99\n,汉,01\n")
    codes = CodeTables(extra_dir=tmp_path)
    rows = codes.table("ethnicity")
    assert len(rows) == 59 and rows[-1] == CodeItem("99", "穿青人")
    assert codes.contains("ethnicity", "99")
    assert codes.resolve_label("ethnicity", "穿青") == "99"
    assert codes.resolve_label("ethnicity", "汉") == "01"
    # The national instance is untouched.
    assert not load_code_tables().contains("ethnicity", "99")


def test_a_county_may_add_a_whole_table(tmp_path: Path) -> None:
    write(tmp_path, "area.csv", "code,label\n522627,天柱县\n522628,锦屏县\n")
    codes = load_code_tables(tmp_path)
    assert "area" in codes.names()
    assert codes.label("area", "522627") == "天柱县"


def test_an_excel_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    write(tmp_path, "meal_model.csv", "\ufeffcode,label\n9,其他供餐\n")
    assert CodeTables(extra_dir=tmp_path).label("meal_model", "9") == "其他供餐"


def test_blank_lines_are_ignored(tmp_path: Path) -> None:
    write(tmp_path, "health.csv", "code,label\n\n9,其他\n,\n")
    assert CodeTables(extra_dir=tmp_path).table("health")[-1] == CodeItem("9", "其他")


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("ethnicity.csv", "code,label\n01,汉,\n", "列数多于表头"),
        ("ethnicity.csv", "code,label\n01,本地汉族\n", "代码“01”与国家代码表 ethnicity 冲突"),
        ("ethnicity.csv", "code,label\n99,苗族\n", "名称“苗族”与国家代码表 ethnicity 冲突"),
        ("ethnicity.csv", "code,label,alias_of\n,毛难族,36\n", "名称“毛难族”与国家代码表 ethnicity 冲突"),
        ("ethnicity.csv", "code,label\n99,甲\n99,乙\n", "代码表 ethnicity 中代码“99”重复"),
        ("ethnicity.csv", "code,label\n98,甲\n", "本地代码不能改变国家代码"),
        ("ethnicity.csv", "code,label,alias_of\n,某族,99\n", "别名“某族”指向的代码 99 不在代码表 ethnicity 中"),
        ("ethnicity.csv", "code,label,alias_of\n99,某族,01\n", "要么有代码"),
        ("ethnicity.csv", "code,label,alias_of\n,某族,\n", "要么有代码"),
        ("ethnicity.csv", "code,label\n99,\n", "缺少名称"),
        ("ethnicity.csv", "label,code\n穿青人,99\n", "表头应为 code,label"),
        ("ethnicity.csv", "code,label,note\n99,穿青人,x\n", "表头应为 code,label"),
        ("ethnicity.csv", "", "表头应为 code,label"),
        ("Ethnicity.csv", "code,label\n99,穿青人\n", "文件名只能用小写字母"),
        ("民族.csv", "code,label\n99,穿青人\n", "文件名只能用小写字母"),
    ],
)
def test_bad_county_files_are_refused_at_load_time(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(CodeTableError, match=message) as caught:
        CodeTables(extra_dir=tmp_path)
    assert str(path) in str(caught.value)


def test_the_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "sex.csv", "code,label\n3,甲\n1,男二\n")
    with pytest.raises(CodeTableError, match=f"{path}:3：代码“1”与国家代码表 sex 冲突（registry/codes/sex.csv:2）"):
        CodeTables(extra_dir=tmp_path)


def test_a_non_utf8_file_is_refused_with_advice(tmp_path: Path) -> None:
    write(tmp_path, "ethnicity.csv", "code,label\n99,穿青人\n", encoding="gbk")
    with pytest.raises(CodeTableError, match="不是 UTF-8 编码"):
        CodeTables(extra_dir=tmp_path)


def test_a_missing_extra_dir_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CodeTableError, match="本地代码目录不存在"):
        CodeTables(extra_dir=tmp_path / "nowhere")


def test_code_table_error_is_a_value_error() -> None:
    assert issubclass(CodeTableError, ValueError)
