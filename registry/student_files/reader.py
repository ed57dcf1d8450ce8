"""Reading an uploaded student list (XLSX or CSV) into rows of student fields.

Nothing here judges a student: `check_rows` does. The reader finds the header, converts cells
for their column, and refuses what cannot be read without guessing: a file that is no spreadsheet,
a header it cannot find, an ID number that Excel already stored as a number.
"""

import csv
import hashlib
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import python_calamine

from registry.code_tables import CodeTables, load_code_tables
from registry.errors import msg
from registry.rules.findings import Finding, error
from registry.student_files.cells import CellProblem, converter
from registry.student_files.columns import BY_FIELD, column_letter, is_report_header, match_header
from registry.student_files.sniff import FileKind, sniff
from registry.student_files.workbook import may_have_unreadable_cells, unreadable_cells, workbook_facts

# A county loads 35k–60k students at once (DESIGN); above this it is a wrong file or a whole
# province, and the worker should not spend minutes on it before saying so.
MAX_ROWS = 100_000
HEADER_SEARCH_ROWS = 20
# A 60k × 28 sheet unpacks to about 110 MB of XML (measured, bench/import_rows.py); ten times that
# is a ZIP bomb or no student list, and must be refused before anything unpacks it.
MAX_UNPACKED_BYTES = 1024 * 1024 * 1024
FILE = "file"  # the Finding.field of problems about the file as a whole
HEADER = "header"


@dataclass(frozen=True, slots=True)
class SheetRow:
    row_number: int  # as the spreadsheet program numbers it, counting title and header rows
    data: dict[str, Any]
    problems: tuple[Finding, ...] = ()  # cells that could not be read faithfully


@dataclass(frozen=True, slots=True)
class ReadResult:
    rows: list[SheetRow]
    # About the file and its header. Any error means the file as a whole is refused.
    problems: list[Finding]
    columns: list[str]  # the recognised fields, in the file's column order
    sha256: str  # of the uploaded bytes: the same file uploaded twice is recognisable
    sheet_name: str | None = None
    encoding: str | None = None
    unknown_columns: list[str] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return any(p.severity == "error" for p in self.problems)


def _file_error(code: str, message: str) -> Finding:
    return error(FILE, "文件", code, message)


def _header_error(field_name: str, code: str, message: str) -> Finding:
    return error(field_name, "表头", code, message)


def read_rows(data: bytes, filename: str, *, codes: CodeTables | None = None) -> ReadResult:
    codes = codes if codes is not None else load_code_tables()
    digest = hashlib.sha256(data).hexdigest()
    sniffed = sniff(data)
    if sniffed.kind is None:
        assert sniffed.refusal is not None
        return ReadResult([], [_file_error("file_type", f"{filename}：{sniffed.refusal}")], [], digest)
    if sniffed.kind is FileKind.xlsx:
        return _read_xlsx(data, filename, codes, digest)
    return _read_text(data, filename, codes, digest)


def _read_xlsx(data: bytes, filename: str, codes: CodeTables, digest: str) -> ReadResult:
    def refuse(code: str, message: str) -> ReadResult:
        return ReadResult([], [_file_error(code, f"{filename}：{message}")], [], digest)

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        if sum(item.file_size for item in archive.infolist()) > MAX_UNPACKED_BYTES:
            return refuse("too_large", "文件解压后过大，不像是学生名单：请按学校拆分后分别上传")
        facts = workbook_facts(archive)
        book = python_calamine.CalamineWorkbook.from_object(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, SyntaxError, python_calamine.CalamineError) as exc:
        # ElementTree's ParseError is a SyntaxError; KeyError is a part the workbook names but lacks.
        return refuse("corrupt", f"Excel 文件已损坏，无法打开（{type(exc).__name__}）：请在 Excel 中重新保存后再上传")
    members = set(archive.namelist())
    visible = [
        sheet.name for sheet in book.sheets_metadata
        if sheet.typ == python_calamine.SheetTypeEnum.WorkSheet and sheet.visible == python_calamine.SheetVisibleEnum.Visible
    ]
    if not visible:
        return refuse("no_sheet", "文件中没有可见的工作表")
    first: tuple[str, list[list[Any]]] | None = None
    for name in visible:
        path = facts.sheet_paths.get(name)
        path = path if path in members else None
        try:
            grid = book.get_sheet_by_name(name).to_python(skip_empty_area=False)
        except python_calamine.CalamineError as exc:
            return refuse("corrupt", f"工作表“{name}”无法读取（{exc}）：请在 Excel 中重新保存后再上传")
        if first is None:
            first = (name, grid)
        # A workbook may keep notes or a cover sheet first: the student sheet is the first whose
        # header is recognisable.
        if _find_header(grid) is not None:
            bad = unreadable_cells(archive.read(path)) \
                if path is not None and may_have_unreadable_cells(archive, path) else {}
            return _read_grid(grid, codes, digest, sheet_name=name, date1904=facts.date1904, bad_cells=bad)
    assert first is not None
    return _read_grid(first[1], codes, digest, sheet_name=first[0], date1904=facts.date1904, bad_cells={})


def _decode(data: bytes) -> tuple[str, str] | None:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            return None
    # Strict UTF-8 first: GB18030 decodes almost any byte sequence, UTF-8 text included, wrongly.
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError:
        return None


def _delimiter(text: str) -> str:
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    counts = {d: first_line.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _read_text(data: bytes, filename: str, codes: CodeTables, digest: str) -> ReadResult:
    decoded = _decode(data)
    if decoded is None:
        message = (f"{filename}：无法识别文件的文字编码（不是 UTF-8，也不是 GB18030/GBK）："
                   "请在 Excel 中另存为“CSV UTF-8（逗号分隔）”或 .xlsx 后再上传")
        return ReadResult([], [_file_error("encoding", message)], [], digest)
    text, encoding = decoded
    try:
        grid: list[list[Any]] = list(csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text)))
    except csv.Error as exc:
        message = f"{filename}：CSV 格式错误（{exc}）：请在 Excel 中打开并重新保存后再上传"
        return ReadResult([], [_file_error("csv", message)], [], digest, encoding=encoding)
    return _read_grid(grid, codes, digest, sheet_name=None, date1904=False, bad_cells={}, encoding=encoding)


def _find_header(grid: Sequence[Sequence[Any]]) -> tuple[int, dict[int, str]] | None:
    # The row naming the most known columns, at least two, among the first rows: title rows and
    # notes above the header are common, and a lone "姓名" in a note is no header.
    best: tuple[int, dict[int, str]] | None = None
    best_count = 1
    for index, row in enumerate(grid[:HEADER_SEARCH_ROWS]):
        matched = {i: f for i, cell in enumerate(row) if (f := match_header(cell)) is not None}
        count = len(set(matched.values()))
        if count > best_count:
            best, best_count = (index, matched), count
    return best


def _read_grid(grid: list[list[Any]], codes: CodeTables, digest: str, *, sheet_name: str | None, date1904: bool,
               bad_cells: dict[tuple[int, int], str], encoding: str | None = None) -> ReadResult:
    found = _find_header(grid)
    if found is None:
        required = "、".join(c.label for c in BY_FIELD.values() if c.required)
        message = (f"找不到表头行：前 {HEADER_SEARCH_ROWS} 行中没有一行是学生信息的列名。"
                   f"表头应包含 {required} 等列，请使用系统提供的导入模板")
        where = f"工作表“{sheet_name}”：" if sheet_name else ""
        return ReadResult([], [_header_error(HEADER, "no_header", where + message)], [], digest,
                          sheet_name=sheet_name, encoding=encoding)
    header_index, matched = found
    header_row = grid[header_index]
    header_number = header_index + 1
    problems: list[Finding] = []
    unknown: list[str] = []
    columns: dict[str, int] = {}
    for index, cell in enumerate(header_row):
        field_name = matched.get(index)
        where = f"第 {header_number} 行 {column_letter(index)} 列"
        if field_name is None:
            if isinstance(cell, str) and cell.strip() and not is_report_header(cell):
                unknown.append(cell.strip())
                problems.append(Finding(HEADER, "unknown_column",
                                        msg("表头：{where}“{cell}”不是导入模板中的列，该列内容不会导入",
                                            where=where, cell=cell.strip()), "warning"))
            continue
        if field_name in columns:
            first = column_letter(columns[field_name])
            problems.append(_header_error(field_name, "duplicate_column",
                                          f"“{BY_FIELD[field_name].label}”出现了两次（{first} 列和 {column_letter(index)} 列），请删去一列"))
            continue
        columns[field_name] = index
    for column in BY_FIELD.values():
        if column.required and column.field not in columns:
            problems.append(_header_error(column.field, "missing_column",
                                          f"缺少必填列“{column.label}”（表头在第 {header_number} 行）"))

    converters = [(index, field_name, BY_FIELD[field_name].label, converter(BY_FIELD[field_name], codes, date1904=date1904))
                  for field_name, index in sorted(columns.items(), key=lambda item: item[1])]
    field_at = {index: field_name for field_name, index in columns.items()}
    bad_by_row: dict[int, list[tuple[int, str]]] = {}
    for (row_number, col), detail in bad_cells.items():
        bad_by_row.setdefault(row_number, []).append((col, detail))

    rows: list[SheetRow] = []
    for index in range(header_index + 1, len(grid)):
        cells = grid[index]
        width = len(cells)
        row_number = index + 1
        data: dict[str, Any] = {}
        row_problems: list[Finding] = []
        for col, field_name, label, convert in converters:
            value = cells[col] if col < width else None
            try:
                data[field_name] = convert(value)
            except CellProblem as problem:
                data[field_name] = problem.shown
                row_problems.append(error(field_name, label, problem.code, problem.detail))
        if not row_problems and all(value is None for value in data.values()):
            continue
        if _is_totals_row(data):
            continue
        for col, detail in bad_by_row.get(row_number, ()):
            field_name = field_at.get(col)
            if field_name is not None:
                data[field_name] = None
                row_problems.append(error(field_name, BY_FIELD[field_name].label, "unreadable_cell", detail))
        rows.append(SheetRow(row_number, data, tuple(row_problems)))

    if not rows and not any(p.severity == "error" for p in problems):
        problems.append(_file_error("no_rows", f"表头（第 {header_number} 行）下面没有学生信息：请确认上传的是填好的名单"))
    if len(rows) > MAX_ROWS:
        problems.append(_file_error("too_many_rows", f"共 {len(rows)} 行学生，超过一次最多 {MAX_ROWS} 行：请按学校拆分后分别上传"))
        rows = []
    return ReadResult(rows, problems, [field_name for _, field_name, _, _ in converters], digest,
                      sheet_name=sheet_name, encoding=encoding, unknown_columns=unknown)


def _is_totals_row(data: dict[str, Any]) -> bool:
    # The export ends with "合计：N 人"; a registrar who edits an export and uploads it must not
    # get an error row for it.
    name = data.get("name")
    return isinstance(name, str) and name.startswith(("合计", "总计")) and data.get("id_number") is None
