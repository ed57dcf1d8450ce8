"""Every row of an upload checked by the student rules, plus the duplicates inside the file.

Duplicates against the registry (the same ID active or pending at another school, Art. 7) need
the database and are the batch service's job; this module sees the file alone.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from registry.code_tables import CodeTables
from registry.rules.findings import Finding, error, warning
from registry.rules.student import FIELD_LABELS, check_student, normalise_student
from registry.student_files.reader import SheetRow

_LISTED_ROWS = 5  # more duplicate rows than this are counted, not listed
PROGRESS_EVERY = 2000  # rows between progress reports: a 60k upload reports 30 times


@dataclass(frozen=True, slots=True)
class RowReport:
    row_number: int
    data: dict[str, Any]  # normalised, as it would be stored
    errors: list[Finding]
    warnings: list[Finding]

    @property
    def ok(self) -> bool:
        return not self.errors


def check_rows(rows: Sequence[SheetRow], *, today: date, codes: CodeTables,
               on_progress: Callable[[int], None] | None = None) -> list[RowReport]:
    """`on_progress(rows_checked)` is called every PROGRESS_EVERY rows and once at the end."""
    if isinstance(today, datetime):
        today = today.date()
    normalised = [normalise_student(row.data) for row in rows]
    findings: list[list[Finding]] = []
    for done, (row, data) in enumerate(zip(rows, normalised, strict=True), start=1):
        if on_progress is not None and done % PROGRESS_EVERY == 0:
            on_progress(done)
        # A cell the reader could not trust already has its precise message; the rules would only
        # add "required" or "wrong length" about the same cell.
        unreadable = {problem.field for problem in row.problems}
        found = list(row.problems)
        found.extend(f for f in check_student(data, today=today, codes=codes) if f.field not in unreadable)
        findings.append(found)

    _flag_duplicates(rows, normalised, findings)
    if on_progress is not None:
        on_progress(len(rows))
    return [
        RowReport(row.row_number, data,
                  [f for f in found if f.severity == "error"], [f for f in found if f.severity == "warning"])
        for row, data, found in zip(rows, normalised, findings, strict=True)
    ]


def _rows_text(numbers: list[int]) -> str:
    listed = "、".join(str(n) for n in numbers[:_LISTED_ROWS])
    return f"第 {listed} 行" + (f"等 {len(numbers)} 行" if len(numbers) > _LISTED_ROWS else "")


def _groups(keys: list[Any]) -> list[list[int]]:
    by_key: dict[Any, list[int]] = {}
    for index, key in enumerate(keys):
        if key is not None:
            by_key.setdefault(key, []).append(index)
    return [indexes for indexes in by_key.values() if len(indexes) > 1]


def _flag_duplicates(rows: Sequence[SheetRow], normalised: list[dict[str, Any]], findings: list[list[Finding]]) -> None:
    numbers = [row.row_number for row in rows]

    def others(indexes: list[int], index: int) -> list[int]:
        return [numbers[i] for i in indexes if i != index]

    def usable(index: int, field: str) -> Any:
        value = normalised[index].get(field)
        unreadable = any(p.field == field for p in rows[index].problems)
        return value if isinstance(value, str) and not unreadable else None

    # One person, one number (Art. 7): siblings who use a guardian's ID as 学籍主号 are told apart by
    # 学籍辅号, so the same ID is a duplicate only when the 辅号 is the same too (or both blank).
    id_keys = [
        (number, normalised[i].get("student_number_aux")) if (number := usable(i, "id_number")) is not None else None
        for i in range(len(rows))
    ]
    for indexes in _groups(id_keys):
        for index in indexes:
            detail = f"与{_rows_text(others(indexes, index))}重复（兄弟姐妹共用监护人的身份证件号时，请填写不同的学籍辅号）"
            findings[index].append(error("id_number", FIELD_LABELS["id_number"], "duplicate_in_file", detail))

    national_keys = [usable(i, "national_student_number") for i in range(len(rows))]
    for indexes in _groups(national_keys):
        for index in indexes:
            detail = f"与{_rows_text(others(indexes, index))}重复"
            findings[index].append(error("national_student_number", FIELD_LABELS["national_student_number"],
                                         "duplicate_in_file", detail))

    # The same child entered twice with a mistyped ID: same name, sex and birth date, other ID.
    person_keys = []
    for i in range(len(rows)):
        data = normalised[i]
        key = (data.get("name"), data.get("sex"), data.get("birth_date"))
        person_keys.append(key if all(isinstance(part, str) for part in key) else None)
    for indexes in _groups(person_keys):
        if len({id_keys[i] for i in indexes}) < 2:
            continue  # the same ID: already an error above
        for index in indexes:
            differing = [i for i in indexes if i != index and id_keys[i] != id_keys[index]]
            if differing:
                detail = (f"与{_rows_text([numbers[i] for i in differing])}的姓名、性别、出生日期相同而身份证件号不同，"
                          "请核对是否为同一学生")
                findings[index].append(warning("name", FIELD_LABELS["name"], "near_duplicate_in_file", detail))
