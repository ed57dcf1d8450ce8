"""A synthetic but realistic county (or all of Guizhou) for benchmarks: schools and students.

    python bench/generate.py --scale county|province --seed 1 --out DIR
        [--students N] [--county 520422] [--school-year 2026] [--counties N]

writes DIR/schools.csv and DIR/students.csv (UTF-8, header = the DESIGN.md field names). As a
library: `generate_county(seed, students=..., county_code=...)` returns a `County` with `schools`
and `students` (lists of dicts); `plan_county` + `County.iter_students()` and `iter_province`
stream rows for the province scale (~88 counties, ~4M students) in constant memory.

Everything is deterministic: one seed gives the same rows on every machine and Python version
(each county has its own `random.Random` seeded with a string, which CPython hashes with SHA-512).

What is real and what is made up:
- Area codes (GB/T 2260) of the 88 county-level units and the older codes still carried by IDs of
  children born before a renaming: real, see COUNTIES. Postcodes come from a public third-party
  list (not checked against China Post). Phone area code 0851 is Guizhou's single area code
  since 2015.
- School codes (`2152` + county position + serial), township and village names, people's names,
  and the ethnic shares per prefecture are synthetic: plausible, not statistics.
- Every student passes `registry.rules.student.check_student` without errors (warnings: a few
  students older than their grade's band, on purpose).
"""

from __future__ import annotations

import argparse
import bisect
import csv
import itertools
import math
import random
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from registry.rules.id_number import check_digit

STUDENT_COLUMNS = (
    "name", "former_name", "sex", "birth_date", "id_type", "id_number", "ethnicity", "hukou_area",
    "hukou_address", "school_code", "grade", "class_name", "enrolled_month", "enrolment_mode",
    "boarding_mode", "health", "height_cm", "weight_kg", "left_behind", "migrant_child",
    "boarding_allowance", "address", "guardian_name", "guardian_phone", "file_card_no",
    "student_number", "student_number_aux", "national_student_number",
)
SCHOOL_COLUMNS = (
    "code", "name", "sponsor_type", "urban_rural", "school_type", "subsidy_rate", "meal_model",
    "address", "postcode", "phone", "fax", "email", "website", "principal_name", "principal_phone",
    "principal_mobile",
    # Not school record fields: where the school sits in the org tree (county → township → school).
    "county_code", "township",
)

DEFAULT_COUNTY = "520422"  # 普定县 (安顺市): a rural county of about the default size
SUBSIDY_RATE = 5  # 元/天 since autumn 2021
PROVINCE_STUDENTS = (35_000, 60_000)  # per county, uniform: ~4.2M over 88 counties

# ---------------------------------------------------------------------------------------------
# Area codes
# ---------------------------------------------------------------------------------------------

PREFECTURES = {
    "5201": "贵阳市", "5202": "六盘水市", "5203": "遵义市", "5204": "安顺市", "5205": "毕节市",
    "5206": "铜仁市", "5223": "黔西南布依族苗族自治州", "5226": "黔东南苗族侗族自治州",
    "5227": "黔南布依族苗族自治州",
}


@dataclass(frozen=True)
class CountyInfo:
    code: str  # current GB/T 2260 code
    name: str
    short: str  # as used in school names: 威宁彝族回族苗族自治县 → 威宁
    postcode: str
    # Codes in force before the current one, as (code, last birth year that got it). An ID number
    # keeps the code of its first registration, so children born before a renaming still carry it.
    # The years are the approval year or the year after, from memory: approximate.
    former: tuple[tuple[str, int], ...] = ()

    @property
    def prefecture(self) -> str:
        return self.code[:4]

    @property
    def urban(self) -> bool:
        """A city district (区) or county-level city: its seat schools are 主城区, not 县城."""
        return self.name.endswith(("区", "市"))

    def code_for_birth_year(self, year: int) -> str:
        for code, last_year in self.former:
            if year <= last_year:
                return code
        return self.code


# The 88 county-level units of Guizhou, current codes (2021 onwards). Checked against memory and
# two independent public lists (a current one, and a pre-2014 one for the former codes); all
# agree. Former codes: 毕节地区 5224xx and 铜仁地区 5222xx became 毕节市 5205xx and 铜仁市 5206xx
# (approved 2011); 平坝县 520421→平坝区 (2014), 遵义县 520321→播州区 (2016), 盘县 520222→盘州市
# (2017), 兴仁县 522322→兴仁市 (2018), 水城县 520221→水城区 (2020), 黔西县 520522→黔西市 (2021).
# Left out on purpose, because a county's old code there is not one code: 小河区 520114 (merged
# into 花溪区 2012) and the parts of 乌当/白云/清镇 that formed 观山湖区 (2012).
COUNTIES: tuple[CountyInfo, ...] = (
    CountyInfo("520102", "南明区", "南明", "550001"),
    CountyInfo("520103", "云岩区", "云岩", "550001"),
    CountyInfo("520111", "花溪区", "花溪", "550025"),
    CountyInfo("520112", "乌当区", "乌当", "550018"),
    CountyInfo("520113", "白云区", "白云", "550014"),
    CountyInfo("520115", "观山湖区", "观山湖", "550000"),  # postcode: 贵阳's, not checked
    CountyInfo("520121", "开阳县", "开阳", "550300"),
    CountyInfo("520122", "息烽县", "息烽", "551100"),
    CountyInfo("520123", "修文县", "修文", "550200"),
    CountyInfo("520181", "清镇市", "清镇", "551400"),
    CountyInfo("520201", "钟山区", "钟山", "553000"),
    CountyInfo("520203", "六枝特区", "六枝", "553400"),
    CountyInfo("520204", "水城区", "水城", "553000", (("520221", 2020),)),
    CountyInfo("520281", "盘州市", "盘州", "561601", (("520222", 2016),)),
    CountyInfo("520302", "红花岗区", "红花岗", "563000"),
    CountyInfo("520303", "汇川区", "汇川", "563000"),
    CountyInfo("520304", "播州区", "播州", "563100", (("520321", 2015),)),
    CountyInfo("520322", "桐梓县", "桐梓", "563200"),
    CountyInfo("520323", "绥阳县", "绥阳", "563300"),
    CountyInfo("520324", "正安县", "正安", "563400"),
    CountyInfo("520325", "道真仡佬族苗族自治县", "道真", "563500"),
    CountyInfo("520326", "务川仡佬族苗族自治县", "务川", "564300"),
    CountyInfo("520327", "凤冈县", "凤冈", "564200"),
    CountyInfo("520328", "湄潭县", "湄潭", "564100"),
    CountyInfo("520329", "余庆县", "余庆", "564400"),
    CountyInfo("520330", "习水县", "习水", "564600"),
    CountyInfo("520381", "赤水市", "赤水", "564700"),
    CountyInfo("520382", "仁怀市", "仁怀", "564500"),
    CountyInfo("520402", "西秀区", "西秀", "561000"),
    CountyInfo("520403", "平坝区", "平坝", "561100", (("520421", 2014),)),
    CountyInfo("520422", "普定县", "普定", "562100"),
    CountyInfo("520423", "镇宁布依族苗族自治县", "镇宁", "561200"),
    CountyInfo("520424", "关岭布依族苗族自治县", "关岭", "561300"),
    CountyInfo("520425", "紫云苗族布依族自治县", "紫云", "550800"),
    CountyInfo("520502", "七星关区", "七星关", "551700", (("522401", 2011),)),
    CountyInfo("520521", "大方县", "大方", "551600", (("522422", 2011),)),
    CountyInfo("520523", "金沙县", "金沙", "551800", (("522424", 2011),)),
    CountyInfo("520524", "织金县", "织金", "552100", (("522425", 2011),)),
    CountyInfo("520525", "纳雍县", "纳雍", "553300", (("522426", 2011),)),
    CountyInfo("520526", "威宁彝族回族苗族自治县", "威宁", "553100", (("522427", 2011),)),
    CountyInfo("520527", "赫章县", "赫章", "553200", (("522428", 2011),)),
    CountyInfo("520581", "黔西市", "黔西", "551500", (("522423", 2011), ("520522", 2020))),
    CountyInfo("520602", "碧江区", "碧江", "554300", (("522201", 2011),)),
    CountyInfo("520603", "万山区", "万山", "554200", (("522230", 2011),)),
    CountyInfo("520621", "江口县", "江口", "554400", (("522222", 2011),)),
    CountyInfo("520622", "玉屏侗族自治县", "玉屏", "554004", (("522223", 2011),)),
    CountyInfo("520623", "石阡县", "石阡", "555100", (("522224", 2011),)),
    CountyInfo("520624", "思南县", "思南", "565100", (("522225", 2011),)),
    CountyInfo("520625", "印江土家族苗族自治县", "印江", "555200", (("522226", 2011),)),
    CountyInfo("520626", "德江县", "德江", "565200", (("522227", 2011),)),
    CountyInfo("520627", "沿河土家族自治县", "沿河", "565300", (("522228", 2011),)),
    CountyInfo("520628", "松桃苗族自治县", "松桃", "554100", (("522229", 2011),)),
    CountyInfo("522301", "兴义市", "兴义", "562400"),
    CountyInfo("522302", "兴仁市", "兴仁", "562300", (("522322", 2018),)),
    CountyInfo("522323", "普安县", "普安", "561500"),
    CountyInfo("522324", "晴隆县", "晴隆", "561400"),
    CountyInfo("522325", "贞丰县", "贞丰", "562200"),
    CountyInfo("522326", "望谟县", "望谟", "552300"),
    CountyInfo("522327", "册亨县", "册亨", "552200"),
    CountyInfo("522328", "安龙县", "安龙", "552400"),
    CountyInfo("522601", "凯里市", "凯里", "556000"),
    CountyInfo("522622", "黄平县", "黄平", "556100"),
    CountyInfo("522623", "施秉县", "施秉", "556200"),
    CountyInfo("522624", "三穗县", "三穗", "556500"),
    CountyInfo("522625", "镇远县", "镇远", "557700"),
    CountyInfo("522626", "岑巩县", "岑巩", "557800"),
    CountyInfo("522627", "天柱县", "天柱", "556600"),
    CountyInfo("522628", "锦屏县", "锦屏", "556700"),
    CountyInfo("522629", "剑河县", "剑河", "556400"),
    CountyInfo("522630", "台江县", "台江", "556300"),
    CountyInfo("522631", "黎平县", "黎平", "557300"),
    CountyInfo("522632", "榕江县", "榕江", "557200"),
    CountyInfo("522633", "从江县", "从江", "557400"),
    CountyInfo("522634", "雷山县", "雷山", "557100"),
    CountyInfo("522635", "麻江县", "麻江", "557600"),
    CountyInfo("522636", "丹寨县", "丹寨", "557500"),
    CountyInfo("522701", "都匀市", "都匀", "558000"),
    CountyInfo("522702", "福泉市", "福泉", "550500"),
    CountyInfo("522722", "荔波县", "荔波", "558400"),
    CountyInfo("522723", "贵定县", "贵定", "551300"),
    CountyInfo("522725", "瓮安县", "瓮安", "550400"),
    CountyInfo("522726", "独山县", "独山", "558200"),
    CountyInfo("522727", "平塘县", "平塘", "558300"),
    CountyInfo("522728", "罗甸县", "罗甸", "550100"),
    CountyInfo("522729", "长顺县", "长顺", "550700"),
    CountyInfo("522730", "龙里县", "龙里", "551200"),
    CountyInfo("522731", "惠水县", "惠水", "550600"),
    CountyInfo("522732", "三都水族自治县", "三都", "558100"),
)
COUNTY_BY_CODE = {c.code: c for c in COUNTIES}
# Every code an ID number of a child from Guizhou may start with: current and former.
AREA_CODES = frozenset(itertools.chain(
    (c.code for c in COUNTIES), (code for c in COUNTIES for code, _ in c.former)))

# ---------------------------------------------------------------------------------------------
# People
# ---------------------------------------------------------------------------------------------

# GB/T 3304 codes. Rough shares per prefecture, and for the autonomous counties whose mix differs
# most from their prefecture's: for variety, not statistics. 97 其他 stands for the undetermined
# groups (穿青人 in 毕节) that the 学籍系统 files under it.
_ETHNICITY_BY_PREFECTURE = {
    "5201": {"01": 80, "06": 7, "09": 7, "03": 1, "15": 1, "12": 1, "07": 1, "37": 0.5, "25": 0.5, "97": 1},
    "5202": {"01": 70, "07": 9, "06": 8, "09": 8, "03": 1.5, "37": 1.5, "14": 1, "97": 1},
    "5203": {"01": 88, "37": 5, "06": 4, "15": 2, "03": 0.5, "97": 0.5},
    "5204": {"01": 60, "09": 20, "06": 15, "37": 2, "03": 1, "97": 2},
    "5205": {"01": 72, "07": 9, "06": 10, "03": 2, "14": 1.5, "09": 1, "37": 1, "97": 3.5},
    "5206": {"01": 30, "15": 38, "06": 17, "12": 12, "37": 2, "97": 1},
    "5223": {"01": 57, "09": 31, "06": 8, "03": 1.5, "07": 1, "37": 1, "97": 0.5},
    "5226": {"01": 19, "06": 43, "12": 30, "25": 2, "09": 2, "13": 1.5, "15": 1, "97": 1.5},
    "5227": {"01": 42, "09": 33, "06": 12, "25": 8, "13": 1.5, "36": 1.5, "15": 0.5, "97": 1.5},
}
_ETHNICITY_BY_COUNTY = {
    "520325": {"01": 50, "37": 40, "06": 8, "15": 2},  # 道真
    "520326": {"01": 50, "37": 40, "06": 8, "15": 2},  # 务川
    "520423": {"09": 45, "01": 38, "06": 15, "37": 2},  # 镇宁
    "520424": {"09": 45, "01": 38, "06": 15, "37": 2},  # 关岭
    "520425": {"01": 40, "06": 30, "09": 30},  # 紫云
    "520526": {"01": 73, "06": 10, "07": 9, "03": 6, "14": 1, "09": 1},  # 威宁
    "520622": {"12": 60, "01": 30, "06": 5, "15": 5},  # 玉屏
    "520625": {"15": 55, "01": 30, "06": 15},  # 印江
    "520627": {"15": 65, "01": 30, "06": 5},  # 沿河
    "520628": {"06": 55, "01": 30, "15": 13, "12": 2},  # 松桃
    "522326": {"09": 75, "01": 17, "06": 8},  # 望谟
    "522327": {"09": 75, "01": 17, "06": 8},  # 册亨
    "522630": {"06": 90, "01": 10},  # 台江
    "522631": {"12": 70, "01": 15, "06": 12, "13": 1, "97": 2},  # 黎平
    "522634": {"06": 85, "01": 15},  # 雷山
    "522722": {"09": 55, "01": 27, "25": 8, "13": 5, "06": 5},  # 荔波
    "522727": {"01": 45, "09": 35, "06": 10, "36": 8, "25": 2},  # 平塘
    "522732": {"25": 65, "09": 15, "01": 10, "06": 9, "13": 1},  # 三都
}

_SURNAMES = {
    "杨": 8, "王": 7, "李": 7, "张": 6, "陈": 5, "刘": 5, "吴": 5, "罗": 4, "龙": 3, "石": 3, "黄": 3,
    "赵": 2.5, "周": 2.5, "田": 2.5, "潘": 2, "胡": 2, "何": 2, "朱": 1.5, "徐": 1.5, "马": 1.5,
    "谢": 1.5, "韦": 1.5, "熊": 1.5, "邓": 1.5, "唐": 1.5, "冯": 1, "宋": 1, "袁": 1, "付": 1,
    "蒋": 1, "欧": 1, "梁": 1, "曾": 1, "姚": 1, "卢": 1, "向": 1, "安": 1, "郭": 1, "雷": 1,
    "余": 1, "孙": 1, "彭": 1, "许": 0.8, "肖": 0.8, "蒙": 0.8, "邹": 0.8, "冉": 0.8, "代": 0.8,
    "莫": 0.5, "秦": 0.5, "陆": 0.5, "姜": 0.5, "岑": 0.3, "班": 0.3, "禄": 0.3, "邰": 0.3, "申": 0.3,
}
# Surnames far more common in one group than overall (苗 and 侗 杨 吴 龙 石, 布依 and 水 韦 蒙 …).
_SURNAME_BOOST = {
    "06": "杨吴龙石潘王李张欧邰", "12": "杨吴石龙潘欧姜", "09": "韦王罗黄岑陆班蒙杨", "25": "韦蒙潘吴陆",
    "15": "田杨冉张向", "07": "安禄陈王杨李", "37": "王蒋申邹", "03": "马",
}
_MALE_CHARS = "浩宇轩子俊杰博文明豪鑫磊涛鹏宏伟强勇峰睿泽晨阳凯翔然航天辰毅鸿志建家兴成龙飞旭东海波斌坤林森健超江永思嘉锦逸瑞承宸铭煜皓昊梓奕恒远一"
_FEMALE_CHARS = "欣怡雨涵梓思佳雪婷琪萱诗语梦瑶雅静丽敏芳慧颖娜玲月悦彤妍蕊晶兰春艳霞可馨茜菲露娟燕倩洁薇琳紫依晓美玉淑蓉"
_FEMALE_DOUBLED = "婷欢佳琳莹丹甜圆露"
_OLDER_MALE_CHARS = "国华明军平建勇德成富贵文昌正光友忠兴发荣林云清金洪学志开仁祥顺海永强刚伟"
_OLDER_FEMALE_CHARS = "秀英兰芬珍梅琴凤花翠菊玉芳艳霞红丽春萍琼敏燕群娥莲桂仙"

_PLACE_FIRST = "大小新老上下中高沙石白黑红青黄花龙马牛羊茶桃杉松竹梅柏岩水田河坡团凉冷平长安兴和丰金银鸡猫猴"
_TOWN_SECOND = "场坪寨坝溪江堡关哨屯口塘山河洞阳营"
_VILLAGE_SECOND = "寨坪坝井园山冲湾田坡岩堡箐关桥屯林沟营哨脚头口溪塘庄院"
_GRADE_NAMES = ("", "一", "二", "三", "四", "五", "六", "七", "八", "九")

# Guizhou's mobiles: the three operators' common prefixes.
_MOBILE_PREFIXES = (
    "134", "135", "136", "137", "138", "139", "147", "150", "151", "152", "157", "158", "159", "182",
    "183", "184", "187", "188", "198", "130", "131", "132", "155", "156", "166", "185", "186", "133",
    "153", "173", "177", "180", "181", "189", "199",
)

# Mean height (cm) at ages 6…17, boys and girls; SD 6 cm. BMI rises from ~15.5 to ~20.
_HEIGHT = {
    "1": (116, 122, 127, 132, 137, 143, 149, 156, 162, 166, 168, 169),
    "2": (115, 121, 126, 132, 138, 144, 149, 153, 155, 156, 157, 157),
}

# Age on 1 September above the regular age (grade g is regularly 5+g): late entry and repeated
# years. +4 is outside check_student's band and gets the age_for_grade warning, as in real data.
_EXTRA_YEARS = ((0, 0.74), (1, 0.19), (2, 0.05), (3, 0.015), (4, 0.005))

SIBLING_PAIR_RATE = 0.0025  # per student: ~0.5% of students are in a pair
_NON_LOCAL_BIRTH_RATE = 0.02  # local 户口 now, but first registered in another county


class _Weighted:
    """`random.choices` for one item, without building a list on every call."""

    __slots__ = ("items", "cum", "total")

    def __init__(self, weights: dict[Any, float] | Iterable[tuple[Any, float]]) -> None:
        pairs = list(weights.items()) if isinstance(weights, dict) else list(weights)
        self.items = [item for item, _ in pairs]
        self.cum = list(itertools.accumulate(w for _, w in pairs))
        self.total = self.cum[-1]

    def pick(self, rng: random.Random) -> Any:
        return self.items[bisect.bisect_right(self.cum, rng.random() * self.total)]


_SURNAME_GENERAL = _Weighted(_SURNAMES)
_SURNAME_BY_ETHNICITY = {
    eth: _Weighted({s: w * (5 if s in boosted else 1) for s, w in _SURNAMES.items()})
    for eth, boosted in _SURNAME_BOOST.items()
}
_EXTRA = _Weighted(_EXTRA_YEARS)


# ---------------------------------------------------------------------------------------------
# The county plan: townships, schools, and how many students each school has in each grade
# ---------------------------------------------------------------------------------------------

@dataclass
class _SchoolPlan:
    record: dict[str, Any]
    kind: str  # urban_primary, urban_junior, central_primary, junior, nine_year, village_primary, teaching_point
    township: int
    village: str | None
    grades: dict[int, int] = field(default_factory=dict)  # grade → students
    class_size: int = 50


@dataclass
class County:
    """One county's schools and students. `students` is filled by `generate_county`; in streaming
    use it stays empty and `iter_students()` yields the rows one by one."""

    info: CountyInfo
    seed: int
    school_year: int
    townships: list[str]
    schools: list[dict[str, Any]]
    students: list[dict[str, Any]]
    _plans: list[_SchoolPlan] = field(repr=False)
    _index: int = field(repr=False)
    _villages: list[list[str]] = field(repr=False)

    @property
    def code(self) -> str:
        return self.info.code

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def student_count(self) -> int:
        return sum(sum(p.grades.values()) for p in self._plans)

    def iter_students(self) -> Iterator[dict[str, Any]]:
        return _StudentMaker(self).rows()


def current_school_year(today: date | None = None) -> int:
    today = today or date.today()
    return today.year if today.month >= 9 else today.year - 1


def generate_county(seed: int, *, students: int = 60_000, county_code: str = DEFAULT_COUNTY,
                    school_year: int | None = None, schools: int | None = None) -> County:
    """A whole county in memory: ~150–330 schools, `students` students."""
    county = plan_county(seed, students=students, county_code=county_code, school_year=school_year,
                         schools=schools)
    county.students = list(county.iter_students())
    return county


def plan_county(seed: int, *, students: int = 60_000, county_code: str = DEFAULT_COUNTY,
                school_year: int | None = None, schools: int | None = None) -> County:
    """Townships, schools and per-grade head counts; students are made by `iter_students()`."""
    if county_code not in COUNTY_BY_CODE:
        raise ValueError(f"unknown Guizhou county code {county_code!r}; known: see COUNTIES")
    if students < 1:
        raise ValueError("students must be at least 1")
    info = COUNTY_BY_CODE[county_code]
    index = COUNTIES.index(info) + 1
    year = school_year if school_year is not None else current_school_year()
    rng = random.Random(f"mealroll-bench:{seed}:{county_code}:plan")
    n_schools = schools if schools is not None else min(330, max(150, round(students / rng.uniform(170, 260))))
    if not 1 <= n_schools <= 9999:
        raise ValueError("schools must be 1…9999 (4-digit serial in the school code)")

    n_townships = min(28, max(10, round(n_schools / rng.uniform(11, 16))))
    townships = _township_names(rng, n_townships, info)
    villages = [_unique_names(rng, rng.randint(10, 22), _PLACE_FIRST, _VILLAGE_SECOND) for _ in townships]
    size = [1.0] + [rng.uniform(0.5, 1.6) for _ in townships[1:]]  # township 0 is the county seat

    kinds: list[tuple[str, int]] = []  # (kind, township)
    kinds += [("urban_primary", 0)] * rng.randint(3, 7)
    kinds += [("urban_junior", 0)] * rng.randint(2, 4)
    for t in range(1, n_townships):
        kinds.append(("central_primary", t))
        kinds.append(("nine_year" if rng.random() < 0.25 else "junior", t))
        if size[t] > 1.3 and rng.random() < 0.5:
            kinds.append(("nine_year", t))
    kinds = kinds[:n_schools]
    rural = _Weighted((t, size[t]) for t in range(1, n_townships))
    while len(kinds) < n_schools:
        kinds.append(("village_primary" if rng.random() < 0.55 else "teaching_point", rural.pick(rng)))

    plans: list[_SchoolPlan] = []
    used_names: set[str] = set()
    ordinals = {"urban_primary": itertools.count(1), "urban_junior": itertools.count(1)}
    for serial, (kind, t) in enumerate(kinds, start=1):
        village = None if kind.startswith("urban") else rng.choice(villages[t])
        name = _school_name(kind, info, townships[t], village, used_names, ordinals)
        used_names.add(name)
        plans.append(_SchoolPlan(_school_record(rng, info, index, serial, kind, townships[t], village, name),
                                 kind, t, village))

    _allocate_students(rng, plans, students, size)
    return County(info=info, seed=seed, school_year=year, townships=townships,
                  schools=[p.record for p in plans], students=[], _plans=plans, _index=index, _villages=villages)


def _township_names(rng: random.Random, n: int, info: CountyInfo) -> list[str]:
    seat = "城关镇" if not info.urban else f"{rng.choice(_PLACE_FIRST)}{rng.choice(_TOWN_SECOND)}街道"
    names = [seat]
    for stem in _unique_names(rng, n - 1, _PLACE_FIRST, _TOWN_SECOND):
        roll = rng.random()
        suffix = "镇" if roll < 0.65 else ("乡" if roll < 0.92 else rng.choice(("苗族乡", "布依族乡", "彝族乡")))
        names.append(stem + suffix)
    return names


def _unique_names(rng: random.Random, n: int, first: str, second: str) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        name = rng.choice(first) + rng.choice(second)
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


def _school_name(kind: str, info: CountyInfo, township: str, village: str | None, used: set[str],
                 ordinals: dict[str, Iterator[int]]) -> str:
    if kind in ordinals:  # the county seat's schools are numbered: 普定县第三小学, 兴义市第二中学
        seat = info.name if info.urban else f"{info.short}县"
        return f"{seat}第{_cn_number(next(ordinals[kind]))}{'小学' if kind == 'urban_primary' else '中学'}"
    base = {
        "central_primary": f"{township}中心小学",
        "junior": f"{township}中学",
        "nine_year": f"{township}{village}九年一贯制学校",
        "village_primary": f"{township}{village}小学",
        "teaching_point": f"{township}{village}教学点",
    }[kind]
    name, n = base, 2
    while name in used:  # a second school of one kind in one village
        name = base.replace("小学", f"第{_cn_number(n)}小学").replace("中学", f"第{_cn_number(n)}中学") \
            .replace("教学点", f"{_cn_number(n)}组教学点").replace("学校", f"{_cn_number(n)}校")
        n += 1
    return name


def _cn_number(n: int) -> str:
    digits = "零一二三四五六七八九"
    if n < 10:
        return digits[n]
    if n < 20:
        return "十" + (digits[n % 10] if n % 10 else "")
    return digits[n // 10] + "十" + (digits[n % 10] if n % 10 else "")


_SCHOOL_TYPE = {
    "urban_primary": "211", "urban_junior": "311", "central_primary": "211", "junior": "311",
    "nine_year": "312", "village_primary": "211", "teaching_point": "218",
}
_MEAL_MODEL = {  # 1 学校食堂, 2 企业(单位)供餐, 3 家庭(个人)托餐, 4 混合
    "urban_primary": _Weighted({"1": 70, "2": 25, "4": 5}),
    "urban_junior": _Weighted({"1": 85, "2": 12, "4": 3}),
    "central_primary": _Weighted({"1": 95, "4": 3, "2": 2}),
    "junior": _Weighted({"1": 97, "4": 3}),
    "nine_year": _Weighted({"1": 96, "4": 4}),
    "village_primary": _Weighted({"1": 85, "4": 10, "3": 5}),
    "teaching_point": _Weighted({"1": 55, "3": 30, "4": 15}),
}


def _school_record(rng: random.Random, info: CountyInfo, county_index: int, serial: int, kind: str,
                   township: str, village: str | None, name: str) -> dict[str, Any]:
    if kind.startswith("urban"):
        urban_rural = "111" if info.urban else "121"  # 县城 is 镇中心区 in the statistics
    elif kind in ("village_primary", "teaching_point") or (kind == "nine_year" and village and rng.random() < 0.5):
        urban_rural = "220"
    else:
        urban_rural = "210" if township.endswith("乡") else "121"
    place = f"贵州省{PREFECTURES[info.prefecture]}{info.name}{township}" + (f"{village}村" if village else "")
    principal_surname = _SURNAME_GENERAL.pick(rng)
    mobile = _mobile(rng)
    return {
        # Synthetic structure: 21 + 52 (Guizhou) + the county's position in COUNTIES + a serial.
        "code": f"2152{county_index:02d}{serial:04d}",
        "name": name,
        "sponsor_type": "811",  # 教育部门: the plan's schools are public
        "urban_rural": urban_rural,
        "school_type": _SCHOOL_TYPE[kind],
        "subsidy_rate": SUBSIDY_RATE,
        "meal_model": _MEAL_MODEL[kind].pick(rng),
        "address": place,
        "postcode": info.postcode,
        "phone": "" if kind == "teaching_point" else f"0851-{rng.randint(2, 8)}{rng.randrange(10**7):07d}",
        "fax": "",
        "email": f"{rng.randint(10**8, 10**10 - 1)}@qq.com" if rng.random() < 0.4 else "",
        "website": "",
        "principal_name": principal_surname + _given_name(rng, "1" if rng.random() < 0.75 else "2", older=True),
        "principal_phone": "",
        "principal_mobile": mobile,
        "county_code": info.code,
        "township": township,
    }


def _allocate_students(rng: random.Random, plans: list[_SchoolPlan], total: int, size: list[float]) -> None:
    junior_total = round(total * rng.uniform(0.30, 0.33))
    primary_total = total - junior_total
    primary_w: list[float] = []
    junior_w: list[float] = []
    for p in plans:
        f = 1.0 if p.kind.startswith("urban") else size[p.township]
        primary_w.append(f * {
            "urban_primary": rng.uniform(1800, 3500), "central_primary": rng.uniform(700, 1600),
            "nine_year": rng.uniform(300, 900), "village_primary": rng.uniform(90, 450),
            "teaching_point": rng.uniform(8, 60),
        }.get(p.kind, 0.0))
        junior_w.append(f * {
            "urban_junior": rng.uniform(1800, 3200), "junior": rng.uniform(700, 1800),
            "nine_year": rng.uniform(150, 500),
        }.get(p.kind, 0.0))
    if not any(junior_w):  # a tiny county of primary schools only
        primary_total, junior_total = total, 0
    if not any(primary_w):
        primary_total, junior_total = 0, total
    primary = _apportion(primary_total, primary_w)
    junior = _apportion(junior_total, junior_w)
    for p, n_primary, n_junior in zip(plans, primary, junior, strict=True):
        if p.kind == "teaching_point":
            top = _Weighted({2: 0.35, 3: 0.45, 4: 0.2}).pick(rng)
            primary_grades = list(range(1, top + 1))
        else:
            primary_grades = [1, 2, 3, 4, 5, 6]
        # Births in Guizhou fell after 2017: the lower grades are the smaller cohorts.
        pw = [(0.90 + 0.03 * g) * rng.uniform(0.92, 1.08) for g in primary_grades]
        jw = [(1.0 - 0.035 * (g - 7)) * rng.uniform(0.92, 1.08) for g in (7, 8, 9)]
        counts = {}
        if n_primary:
            counts.update(zip(primary_grades, _apportion(n_primary, pw), strict=True))
        if n_junior:
            counts.update(zip((7, 8, 9), _apportion(n_junior, jw), strict=True))
        p.grades = {g: n for g, n in sorted(counts.items()) if n}
        p.class_size = {"urban_primary": 50, "urban_junior": 50, "central_primary": 50, "junior": 50,
                        "nine_year": 45, "village_primary": 40}.get(p.kind, 10**6)


def _apportion(total: int, weights: Sequence[float]) -> list[int]:
    """Integers proportional to weights that add up to total exactly (largest remainder)."""
    w_sum = sum(weights)
    if total == 0 or w_sum == 0:
        return [0] * len(weights)
    shares = [total * w / w_sum for w in weights]
    counts = [math.floor(s) for s in shares]
    short = total - sum(counts)
    by_remainder = sorted(range(len(weights)), key=lambda i: (counts[i] - shares[i], i))
    for i in by_remainder[:short]:
        counts[i] += 1
    return counts


# ---------------------------------------------------------------------------------------------
# Students
# ---------------------------------------------------------------------------------------------

class _IdNumbers:
    """Resident ID numbers, unique by construction and checked.

    Sequence numbers 000–799 are for codes of the county being generated (its own children and
    their guardians). A number with another county's code (a migrant child, or a child first
    registered elsewhere) gets 800 + 2 × (this county's position) + sex bit, a slot no other
    county uses: so IDs are unique across a whole province run without remembering them all.
    """

    def __init__(self, county_index: int) -> None:
        self.foreign_base = 800 + 2 * (county_index - 1)
        assert self.foreign_base + 1 <= 999
        self.used: set[str] = set()

    def new(self, rng: random.Random, area: str, birth: date, male: bool, *, local: bool) -> str | None:
        ymd = f"{birth.year:04d}{birth.month:02d}{birth.day:02d}"
        sex_bit = 1 if male else 0
        for _ in range(20 if local else 1):
            seq = rng.randrange(400) * 2 + sex_bit if local else self.foreign_base + sex_bit
            first17 = f"{area}{ymd}{seq:03d}"
            if first17 not in self.used:
                self.used.add(first17)
                return first17 + check_digit(first17)
        return None  # caller picks another area code or birth date


@dataclass
class _Family:
    surname: str
    ethnicity: str
    hukou_area: str
    hukou_address: str
    address: str
    guardian_name: str
    guardian_phone: str
    guardian_id: str
    left_behind: str
    next_aux: int = 1
    twin_birth: date | None = None  # siblings in one grade are twins


class _StudentMaker:
    def __init__(self, county: County) -> None:
        self.c = county
        self.info = county.info
        self.rng = random.Random(f"mealroll-bench:{county.seed}:{county.code}:students")
        self.ids = _IdNumbers(county._index)
        eth = _ETHNICITY_BY_COUNTY.get(self.info.code) or _ETHNICITY_BY_PREFECTURE[self.info.prefecture]
        self.ethnicity = _Weighted(eth)
        self.others = [c for c in COUNTIES if c.code != self.info.code]
        self.same_prefecture = [c for c in self.others if c.prefecture == self.info.prefecture]
        self.prefix = f"贵州省{PREFECTURES[self.info.prefecture]}{self.info.name}"
        sy = county.school_year
        # Birth window for age a on 1 September of the school year: 2 Sept (sy-a-1) … 1 Sept (sy-a).
        self.birth_window = {a: (date(sy - a - 1, 9, 2).toordinal(), date(sy - a, 9, 1).toordinal())
                             for a in range(5, 20)}

    def rows(self) -> Iterator[dict[str, Any]]:
        for plan in self.c._plans:
            slots = [(g, k % max(1, math.ceil(n / plan.class_size)) + 1)
                     for g, n in plan.grades.items() for k in range(n)]
            partner = self._pair_siblings(slots)
            families: dict[int, _Family] = {}
            for i, (grade, klass) in enumerate(slots):
                j = partner.get(i)
                if j is None:
                    yield self._student(plan, grade, klass)
                elif j > i:  # the first-listed sibling founds the family
                    families[j] = family = self._family(plan)
                    yield self._student(plan, grade, klass, family=family)
                else:
                    family = families.pop(i)
                    yield self._student(plan, grade, klass, family=family, twin=slots[j][0] == grade)
            assert not families

    def _pair_siblings(self, slots: list[tuple[int, int]]) -> dict[int, int]:
        rng, n = self.rng, len(slots)
        partner: dict[int, int] = {}
        for i in range(n):
            if rng.random() >= SIBLING_PAIR_RATE or i in partner or n < 2:
                continue
            for _ in range(5):
                j = rng.randrange(n)
                if j != i and j not in partner:
                    partner[i], partner[j] = j, i
                    break
        return partner

    # -- one student ------------------------------------------------------------------------

    def _student(self, plan: _SchoolPlan, grade: int, klass: int, *, family: _Family | None = None,
                 twin: bool = False) -> dict[str, Any]:
        rng = self.rng
        sy = self.c.school_year
        male = rng.random() < 0.53  # Guizhou's birth sex ratio of the 2010s is ~113
        sex = "1" if male else "2"
        if twin and family is not None and family.twin_birth is not None:
            birth = family.twin_birth
        else:
            age = 5 + grade + _EXTRA.pick(rng)
            lo, hi = self.birth_window[age]
            birth = date.fromordinal(rng.randint(lo, hi))
        urban = plan.kind.startswith("urban")

        migrant = family is None and rng.random() < (0.06 if urban else 0.02)
        if family is not None:
            family.twin_birth = birth
            surname, ethnicity = family.surname, family.ethnicity
            hukou_area, hukou_address, address = family.hukou_area, family.hukou_address, family.address
            left_behind = family.left_behind
            guardian_name, guardian_phone = family.guardian_name, family.guardian_phone
            id_type = "Z"  # no ID of their own (户口 not registered): 主号 is the guardian's
            id_number = family.guardian_id
            aux = f"{family.next_aux:02d}"
            family.next_aux += 1
            body = self.ids.new(rng, self.info.code_for_birth_year(birth.year), birth, male, local=True)
            assert body is not None
            national = "J" + body  # a J number carries a valid check character
        else:
            ethnicity = self.ethnicity.pick(rng)
            surname = _SURNAME_BY_ETHNICITY.get(ethnicity, _SURNAME_GENERAL).pick(rng)
            if migrant:
                origin = rng.choice(self.same_prefecture if self.same_prefecture and rng.random() < 0.6
                                    else self.others)
                hukou_area = origin.code
                hukou_address = (f"贵州省{PREFECTURES[origin.prefecture]}{origin.name}"
                                 f"{rng.choice(_PLACE_FIRST)}{rng.choice(_TOWN_SECOND)}镇"
                                 f"{rng.choice(_PLACE_FIRST)}{rng.choice(_VILLAGE_SECOND)}村{rng.randint(1, 12)}组")
                address = self._local_address(plan)
                left_behind = "0"  # they live with the parents who moved
            else:
                hukou_area = self.info.code
                hukou_address = self._local_address(plan)
                address = hukou_address if rng.random() < 0.9 else self._local_address(plan)
                left_behind = self._left_behind(urban)
            guardian_name, guardian_phone, _ = self._guardian(surname, left_behind)
            id_type, aux = "1", None
            id_number = self._id_number(birth, male, migrant, hukou_area)
            national = "G" + id_number

        boarder = rng.random() < self._boarding_rate(plan.kind, grade)
        height, weight = self._measures(sex, sy - birth.year - ((9, 1) < (birth.month, birth.day)))
        entry_year = sy - (grade - 7 if plan.kind in ("junior", "urban_junior") else grade - 1)
        roll = rng.random()
        return {
            "name": surname + _given_name(rng, sex),
            "former_name": surname + _given_name(rng, sex) if rng.random() < 0.01 else None,
            "sex": sex,
            "birth_date": birth.isoformat(),
            "id_type": id_type,
            "id_number": id_number,
            "ethnicity": ethnicity,
            "hukou_area": hukou_area,
            "hukou_address": hukou_address,
            "school_code": plan.record["code"],
            "grade": grade,
            "class_name": f"{_GRADE_NAMES[grade]}年级（{klass}）班",
            "enrolled_month": f"{entry_year}-09",
            "enrolment_mode": "11" if rng.random() < 0.97 else "12",
            "boarding_mode": "2" if boarder else "1",
            "health": "1" if roll < 0.94 else ("2" if roll < 0.98 else ("3" if roll < 0.995 else "6")),
            "height_cm": height,
            "weight_kg": weight,
            "left_behind": left_behind,
            "migrant_child": migrant,
            # 一补 is for boarders from poor families; no day student may have it.
            "boarding_allowance": boarder and rng.random() < 0.6,
            "address": address,
            "guardian_name": guardian_name,
            "guardian_phone": guardian_phone,
            "file_card_no": None,  # 建档卡号: format not known well enough to fake
            "student_number": id_number,
            "student_number_aux": aux,
            "national_student_number": national,
        }

    def _id_number(self, birth: date, male: bool, migrant: bool, hukou_area: str) -> str:
        rng = self.rng
        if migrant or rng.random() < _NON_LOCAL_BIRTH_RATE:
            # The code of the county of first registration, in force in the birth year.
            for attempt in range(20):
                origin = COUNTY_BY_CODE[hukou_area] if migrant and attempt == 0 else rng.choice(self.others)
                number = self.ids.new(rng, origin.code_for_birth_year(birth.year), birth, male, local=False)
                if number is not None:
                    return number
        # Late 户口 registration after a renaming gets the new code; most got the one in force.
        area = self.info.code if rng.random() < 0.1 else self.info.code_for_birth_year(birth.year)
        number = self.ids.new(rng, area, birth, male, local=True)
        if number is None:  # 400 numbers per sex, day and code: practically never
            number = self.ids.new(rng, self.info.code, birth, male, local=True)
        assert number is not None, "ID space of one county, sex and birth date exhausted"
        return number

    def _family(self, plan: _SchoolPlan) -> _Family:
        rng = self.rng
        ethnicity = self.ethnicity.pick(rng)
        surname = _SURNAME_BY_ETHNICITY.get(ethnicity, _SURNAME_GENERAL).pick(rng)
        address = self._local_address(plan)
        left_behind = self._left_behind(plan.kind.startswith("urban"))
        guardian_name, guardian_phone, male_guardian = self._guardian(surname, left_behind)
        gbirth = date.fromordinal(rng.randint(date(1968, 1, 1).toordinal(), date(1998, 12, 31).toordinal()))
        guardian_id = self.ids.new(rng, self.info.code_for_birth_year(gbirth.year), gbirth, male_guardian,
                                   local=True)
        assert guardian_id is not None
        return _Family(surname, ethnicity, self.info.code, address, address, guardian_name, guardian_phone,
                       guardian_id, left_behind)

    def _left_behind(self, urban: bool) -> str:
        roll = self.rng.random()
        both, one = (0.07, 0.05) if urban else (0.18, 0.11)
        return "2" if roll < both else ("1" if roll < both + one else "0")

    def _guardian(self, surname: str, left_behind: str) -> tuple[str, str, bool]:
        """Name, phone, and whether the guardian is a man."""
        rng = self.rng
        # Left behind by both parents: a grandparent; otherwise mostly the father.
        same_surname = rng.random() < (0.6 if left_behind == "2" else 0.65)
        gsurname = surname if same_surname else _SURNAME_GENERAL.pick(rng)
        name = gsurname + _given_name(rng, "1" if same_surname else "2", older=True)
        phone = _mobile(rng) if rng.random() < 0.995 else f"0851-{rng.randint(2, 8)}{rng.randrange(10**7):07d}"
        return name, phone, same_surname

    def _local_address(self, plan: _SchoolPlan) -> str:
        rng = self.rng
        t = plan.township
        if plan.village is not None and rng.random() < 0.8:
            village = plan.village
        else:
            village = rng.choice(self.c._villages[t])
        return f"{self.prefix}{self.c.townships[t]}{village}村{rng.randint(1, 12)}组"

    @staticmethod
    def _boarding_rate(kind: str, grade: int) -> float:
        if grade >= 7:
            return {"junior": 0.38, "urban_junior": 0.12, "nine_year": 0.30}[kind]
        base = {"teaching_point": 0.0, "village_primary": 0.05, "central_primary": 0.30,
                "urban_primary": 0.03, "nine_year": 0.20}[kind]
        return base * (0.4, 0.4, 0.9, 0.9, 1.5, 1.6)[grade - 1]

    def _measures(self, sex: str, age: int) -> tuple[float | None, float | None]:
        rng = self.rng
        if rng.random() < 0.03:  # not measured yet
            return None, None
        mean = _HEIGHT[sex][min(max(age, 6), 17) - 6]
        height = round(rng.gauss(mean, 6.0) * 2) / 2
        bmi = rng.gauss(15.5 + 0.45 * max(0, min(age, 17) - 6), 1.8)
        weight = round(max(13.0, bmi * (height / 100) ** 2), 1)
        return max(90.0, min(195.0, height)), min(110.0, weight)


def _given_name(rng: random.Random, sex: str, *, older: bool = False) -> str:
    if older:
        chars = _OLDER_MALE_CHARS if sex == "1" else _OLDER_FEMALE_CHARS
        return rng.choice(chars) + (rng.choice(chars) if rng.random() < 0.7 else "")
    if sex == "2" and rng.random() < 0.04:
        return rng.choice(_FEMALE_DOUBLED) * 2
    chars = _MALE_CHARS if sex == "1" else _FEMALE_CHARS
    if rng.random() < 0.25:
        return rng.choice(chars)
    first = rng.choice(chars)
    second = rng.choice(chars)
    while second == first:
        second = rng.choice(chars)
    return first + second


def _mobile(rng: random.Random) -> str:
    return rng.choice(_MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"


# ---------------------------------------------------------------------------------------------
# Province, CSV, command line
# ---------------------------------------------------------------------------------------------

def iter_province(seed: int, *, school_year: int | None = None, counties: int | None = None,
                  students_range: tuple[int, int] = PROVINCE_STUDENTS) -> Iterator[County]:
    """Every county of Guizhou (or the first `counties`), planned; stream each one's students."""
    rng = random.Random(f"mealroll-bench:{seed}:province")
    sizes = [rng.randint(*students_range) for _ in COUNTIES]
    for info, students in list(zip(COUNTIES, sizes, strict=True))[:counties]:
        yield plan_county(seed, students=students, county_code=info.code, school_year=school_year)


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "1"
    if value is False:
        return "0"
    return str(value)


def write_csv(out: Path, counties: Iterable[County], *, progress: bool = True) -> tuple[int, int, float]:
    """Write schools.csv and students.csv, one county at a time; returns (schools, students, seconds)."""
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    n_schools = n_students = 0
    next_report = 200_000
    with (out / "schools.csv").open("w", encoding="utf-8", newline="") as sf, \
            (out / "students.csv").open("w", encoding="utf-8", newline="") as tf:
        schools_w, students_w = csv.writer(sf), csv.writer(tf)
        schools_w.writerow(SCHOOL_COLUMNS)
        students_w.writerow(STUDENT_COLUMNS)
        for county in counties:
            for school in county.schools:
                schools_w.writerow([_csv_value(school[c]) for c in SCHOOL_COLUMNS])
            n_schools += len(county.schools)
            rows = county.students or county.iter_students()
            for student in rows:
                students_w.writerow([_csv_value(student[c]) for c in STUDENT_COLUMNS])
                n_students += 1
                if progress and n_students >= next_report:
                    elapsed = time.perf_counter() - started
                    print(f"  {n_students:>9,} students  {n_students / elapsed:,.0f} rows/s  ({county.code} {county.name})",
                          file=sys.stderr, flush=True)
                    next_report += 200_000
    return n_schools, n_students, time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate a synthetic Guizhou county or province (schools.csv, students.csv).")
    parser.add_argument("--scale", choices=("county", "province"), default="county")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--students", type=int, default=60_000, help="county scale: number of students")
    parser.add_argument("--county", default=DEFAULT_COUNTY, help="county scale: GB/T 2260 code")
    parser.add_argument("--school-year", type=int, default=None,
                        help="school year starting in September of YEAR (default: the current one)")
    parser.add_argument("--counties", type=int, default=None, help="province scale: only the first N counties")
    args = parser.parse_args(argv)

    if args.scale == "county":
        counties: Iterable[County] = [plan_county(args.seed, students=args.students, county_code=args.county,
                                                  school_year=args.school_year)]
    else:
        counties = iter_province(args.seed, school_year=args.school_year, counties=args.counties)
    n_schools, n_students, seconds = write_csv(args.out, counties)
    print(f"{args.scale}: {n_schools:,} schools, {n_students:,} students in {seconds:.1f} s "
          f"({n_students / seconds:,.0f} rows/s) → {args.out}/schools.csv, {args.out}/students.csv",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
