"""Code tables (民族, 身份证件类型, 办学类型 …): the national CSVs in registry/codes, plus a county's own.

The CSV format and the sources of every table are described in registry/codes/README.md.
"""

import csv
import functools
import io
import re
import unicodedata
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

_COLUMNS = ("code", "label", "alias_of", "replaced_by")
# A county's file of these tables replaces the shipped one instead of adding to it: GB/T 2260 is
# revised every year, and a county that drops in the current official list must not collide with
# the copy shipped with the release.
_REPLACEABLE = frozenset({"area"})
_TABLE_NAME = re.compile(r"[a-z][a-z0-9_]*")


class CodeTableError(ValueError):
    """A code table file is malformed or clashes with another; raised at load time, never later."""


@dataclass(frozen=True, slots=True)
class CodeItem:
    code: str
    label: str


@dataclass(frozen=True, slots=True)
class _Row:
    code: str | None  # None on an alias row
    label: str
    alias_of: str | None
    replaced_by: str | None  # a former code (still on old records and ID numbers): its current code
    origin: str  # "file:line", for error messages
    national: bool


def _label_key(label: str) -> str:
    # Imports come from Excel sheets typed by hand: full-width vs half-width brackets and stray
    # spaces must not make "企业(单位)供餐" a different label from "企业（单位）供餐".
    return "".join(unicodedata.normalize("NFKC", label).split())


def _parse(text: str, origin: str, *, national: bool) -> list[_Row]:
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader, [])]
    if header[:2] != ["code", "label"] or any(h not in _COLUMNS for h in header):
        raise CodeTableError(f"{origin}：表头应为 code,label 或 code,label,alias_of[,replaced_by]，实为 {','.join(header)}")
    rows = []
    for line_no, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue
        if len(values) > len(header):
            raise CodeTableError(f"{origin}:{line_no}：列数多于表头")
        # Trailing empty cells may be missing altogether: a short row is fine.
        cells = dict(zip(header, (v.strip() for v in values), strict=False))
        code, label, alias_of = cells.get("code", ""), cells.get("label", ""), cells.get("alias_of", "")
        replaced_by = cells.get("replaced_by", "")
        where = f"{origin}:{line_no}"
        if not label:
            raise CodeTableError(f"{where}：缺少名称（label）")
        if bool(code) == bool(alias_of):
            raise CodeTableError(f"{where}：一行要么有代码（code），要么是别名（alias_of），不能两者都有或都没有")
        if replaced_by and not code:
            raise CodeTableError(f"{where}：停用代码行（replaced_by）必须有自己的代码（code）")
        rows.append(_Row(code or None, label, alias_of or None, replaced_by or None, where, national))
    return rows


def _read_text(path: Path) -> str:
    try:
        # utf-8-sig: a county's CSV saved from Excel starts with a byte-order mark.
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CodeTableError(f"{path}：不是 UTF-8 编码（Excel 请另存为“CSV UTF-8”）") from exc


@functools.cache
def _national_rows() -> dict[str, tuple[_Row, ...]]:
    # Read once per process: these files only change with a release.
    folder = resources.files("registry.codes")
    tables: dict[str, tuple[_Row, ...]] = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".csv"):
            text = entry.read_text(encoding="utf-8-sig")
            tables[entry.name.removesuffix(".csv")] = tuple(
                _parse(text, f"registry/codes/{entry.name}", national=True)
            )
    return tables


class _Table:
    def __init__(self, name: str, rows: list[_Row]) -> None:
        self.items: list[CodeItem] = []
        self.labels: dict[str, str] = {}  # every code, current and former
        self.replaced_by: dict[str, str] = {}
        self.by_label: dict[str, str] = {}
        origins: dict[str, _Row] = {}
        for row in rows:
            if row.code is None:
                continue
            if row.code in origins:
                raise CodeTableError(self._clash(name, "代码", row.code, origins[row.code], row))
            origins[row.code] = row
            self.labels[row.code] = row.label
            if row.replaced_by is None:
                self.items.append(CodeItem(row.code, row.label))
            else:
                self.replaced_by[row.code] = row.replaced_by
        for code, current in self.replaced_by.items():
            # One step, to a code in use: a chain (522423 → 520522 → 520581) is written out to its end.
            if current not in self.labels or current in self.replaced_by:
                raise CodeTableError(f"{origins[code].origin}：停用代码 {code} 的现行代码 {current} "
                                     f"不是代码表 {name} 中的现行代码")
        label_origins: dict[str, _Row] = {}
        for row in rows:
            target = row.code if row.code is not None else row.alias_of
            assert target is not None  # _parse guarantees one of the two
            if target not in self.labels:
                raise CodeTableError(f"{row.origin}：别名“{row.label}”指向的代码 {target} 不在代码表 {name} 中")
            # A former code's label, like an alias, resolves to the code to store today.
            target = self.replaced_by.get(target, target)
            key = _label_key(row.label)
            if key in label_origins:
                raise CodeTableError(self._clash(name, "名称", row.label, label_origins[key], row))
            label_origins[key] = row
            self.by_label[key] = target

    @staticmethod
    def _clash(name: str, what: str, value: str, first: _Row, second: _Row) -> str:
        if first.national and not second.national:
            return (f"{second.origin}：{what}“{value}”与国家代码表 {name} 冲突（{first.origin}），"
                    "本地代码不能改变国家代码")
        return f"{second.origin}：代码表 {name} 中{what}“{value}”重复（已见于 {first.origin}）"


class CodeTables:
    """All code tables, national and local. Codes are strings: "01" and "1" are different codes."""

    def __init__(self, extra_dir: Path | None = None) -> None:
        merged: dict[str, list[_Row]] = {name: list(rows) for name, rows in _national_rows().items()}
        if extra_dir is not None:
            extra_dir = Path(extra_dir)
            if not extra_dir.is_dir():
                raise CodeTableError(f"本地代码目录不存在：{extra_dir}")
            for path in sorted(extra_dir.glob("*.csv")):
                # A misspelt file name would otherwise create a table nobody reads.
                if not _TABLE_NAME.fullmatch(path.stem):
                    raise CodeTableError(f"{path}：代码表文件名只能用小写字母、数字和下划线，如 ethnicity.csv")
                rows = _parse(_read_text(path), str(path), national=False)
                if path.stem in _REPLACEABLE:
                    merged[path.stem] = rows
                else:
                    merged.setdefault(path.stem, []).extend(rows)
        self._tables = {name: _Table(name, rows) for name, rows in merged.items()}

    def names(self) -> list[str]:
        return sorted(self._tables)

    def table(self, name: str) -> list[CodeItem]:
        """The selectable rows in file order (national first, then local); aliases and former codes
        are not offered."""
        return list(self._get(name).items)

    def label(self, name: str, code: str) -> str | None:
        return self._get(name).labels.get(code)

    def contains(self, name: str, code: str | None) -> bool:
        """True for current and former codes alike: old records and ID numbers carry former ones."""
        return code is not None and code in self._get(name).labels

    def replacement(self, name: str, code: str) -> str | None:
        """The current code for a former one (522401 → 520502); None for a current or unknown code."""
        return self._get(name).replaced_by.get(code)

    def resolve_label(self, name: str, label_or_alias: str) -> str | None:
        """The code for a label or legacy alias (毛难族 → 36); None when the table has no such label."""
        return self._get(name).by_label.get(_label_key(label_or_alias))

    def _get(self, name: str) -> _Table:
        try:
            return self._tables[name]
        except KeyError:
            raise KeyError(f"unknown code table {name!r}; known tables: {', '.join(self.names())}") from None


@functools.cache
def load_code_tables(extra_dir: Path | None = None) -> CodeTables:
    """The shared instance. Read once per process, so a county's edited CSVs take effect on restart."""
    return CodeTables(extra_dir)
