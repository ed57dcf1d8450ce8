"""Time reading and checking a county-size student upload (target: read + validate 60k rows ≤ 30 s).

    .venv/bin/python bench/import_rows.py [--rows 60000] [--seed 7] [--keep FILE.xlsx]

Generates a valid XLSX in the import template's columns (Guizhou area codes, ages matching
grades, realistic shares of boarders, left-behind and migrant children, codes written in the
dropdown form "06 苗族"), then times `read_rows` and `check_rows` separately, and the row report.
"""

import argparse
import io
import os
import platform
import random
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from openpyxl import Workbook

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from registry.code_tables import load_code_tables  # noqa: E402
from registry.rules.id_number import check_digit  # noqa: E402
from registry.student_files import COLUMNS, build_report, check_rows, read_rows  # noqa: E402
from registry.student_files.columns import code_display  # noqa: E402

TARGET_SECONDS = 30.0
AREAS = ("520102", "520103", "520111", "520112", "520113", "520115", "520121", "520122", "520123",
         "520181", "520201", "520203", "520221", "520281", "520302", "520303", "520322", "520323",
         "522601", "522622", "522623", "522624", "522625", "522626", "522627", "522628")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢龙吴石"
GIVEN = "小明华丽强军芳敏静伟磊洋勇艳杰娟涛超霞平刚桂英文玉兰秀云峰建国红梅海燕春花金凤天宇子涵欣怡浩然梓轩雨萱"
# 汉 苗 布依 侗 土家 彝 水 仡佬: the large groups of Guizhou, with rough shares.
ETHNICITIES = (("01", 50), ("06", 15), ("09", 10), ("12", 8), ("15", 7), ("07", 4), ("25", 3), ("37", 3))
CLASS_DIGITS = "一二三四五六七八九"


def school_year_start(today: date) -> int:
    return today.year if today.month >= 9 else today.year - 1


def generate(rows: int, seed: int, today: date, school: str | None = None) -> bytes:
    """`school`: every row at that school (one school's upload); otherwise spread over 250 schools."""
    rng = random.Random(seed)
    codes = load_code_tables()
    label = {name: {item.code: code_display(item.code, item.label) for item in codes.table(name)}
             for name in ("sex", "id_type", "ethnicity", "enrolment_mode", "boarding_mode", "health", "left_behind")}
    year = school_year_start(today)
    schools = [f"21520{n:05d}" for n in rng.sample(range(1, 99999), 250)]
    ethnic_codes = [code for code, _ in ETHNICITIES]
    ethnic_weights = [weight for _, weight in ETHNICITIES]
    used: set[str] = set()

    book = Workbook(write_only=True)
    sheet = book.create_sheet("学生信息")
    sheet.append([column.header for column in COLUMNS])
    for _ in range(rows):
        grade = rng.randint(1, 9)
        # On 1 September of this school year a grade-g student is 5+g … 8+g; most are 6+g-1 or 6+g.
        age = 5 + grade + rng.choice((0, 1, 1, 1, 2))
        birth = date(year - age, 9, 1) - timedelta(days=rng.randint(0, 364))
        area = rng.choice(AREAS)
        while True:
            first17 = f"{area}{birth:%Y%m%d}{rng.randint(0, 999):03d}"
            number = first17 + check_digit(first17)
            if number not in used:
                used.add(number)
                break
        sex = "1" if int(first17[16]) % 2 else "2"
        boarder = rng.random() < (0.6 if grade >= 7 else 0.15)
        enrolled_year = year - (grade - 1 if grade <= 6 else grade - 7)
        height = round(110 + 6 * grade + rng.uniform(-8, 8), 1)
        weight = round(18 + 3.5 * grade + rng.uniform(-4, 5), 1)
        values = {
            "name": rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2))),
            "sex": label["sex"][sex],
            "birth_date": birth.isoformat(),
            "id_type": label["id_type"]["1"],
            "id_number": number,
            "ethnicity": label["ethnicity"][rng.choices(ethnic_codes, ethnic_weights)[0]],
            "hukou_area": area,
            "hukou_address": "贵州省某县某镇某村某组",
            "school_code": school or rng.choice(schools),
            "grade": str(grade),
            "class_name": f"{CLASS_DIGITS[grade - 1]}年级（{rng.randint(1, 4)}）班",
            "enrolled_month": f"{enrolled_year}-09",
            "enrolment_mode": label["enrolment_mode"]["11"],
            "boarding_mode": label["boarding_mode"]["2" if boarder else "1"],
            "health": label["health"]["1"],
            "height_cm": height,
            "weight_kg": weight,
            "left_behind": label["left_behind"][rng.choices(("0", "1", "2"), (70, 18, 12))[0]],
            "migrant_child": "是" if rng.random() < 0.05 else "否",
            "boarding_allowance": "是" if boarder and rng.random() < 0.8 else "否",
            "address": "贵州省某县某镇某村某组",
            "guardian_name": rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN),
            "guardian_phone": f"1{rng.choice('3578')}{rng.randint(0, 999_999_999):09d}",
            "student_number": number,
            "national_student_number": "G" + number,
        }
        sheet.append([values.get(column.field) for column in COLUMNS])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="also write the generated XLSX here")
    args = parser.parse_args()
    today = date.today()
    codes = load_code_tables()
    print(f"machine: nproc {os.cpu_count()}, Python {platform.python_version()}, "
          f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}; rows {args.rows}")

    started = time.perf_counter()
    data = generate(args.rows, args.seed, today)
    print(f"generate XLSX: {time.perf_counter() - started:.1f} s, {len(data) / 1e6:.1f} MB")
    if args.keep:
        args.keep.write_bytes(data)

    started = time.perf_counter()
    result = read_rows(data, "bench.xlsx", codes=codes)
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    reports = check_rows(result.rows, today=today, codes=codes)
    check_s = time.perf_counter() - started
    started = time.perf_counter()
    report = build_report(reports, result.columns, codes=codes)
    report_s = time.perf_counter() - started

    with_errors = sum(1 for r in reports if r.errors)
    with_warnings = sum(1 for r in reports if r.warnings)
    print(f"read_rows:    {read_s:6.1f} s  ({len(result.rows)} rows, {len(result.columns)} columns, "
          f"file problems: {len(result.problems)})")
    print(f"check_rows:   {check_s:6.1f} s  (rows with errors: {with_errors}, with warnings: {with_warnings})")
    print(f"build_report: {report_s:6.1f} s  ({len(report) / 1e6:.1f} MB; not part of the target)")
    total = read_s + check_s
    verdict = "PASS" if total <= TARGET_SECONDS and len(result.rows) == args.rows else "MISS"
    print(f"target: read + validate {args.rows} rows ≤ {TARGET_SECONDS:.0f} s: {verdict} ({total:.1f} s)")
    if with_errors:
        first = next(r for r in reports if r.errors)
        print(f"first error (generator bug?): row {first.row_number}: {first.errors[0].message}")


if __name__ == "__main__":
    main()
