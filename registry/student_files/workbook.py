"""The few facts about an XLSX that python-calamine does not report.

calamine returns a formula's cached value, which is right, but gives an empty string both for a
formula that was never calculated (files written by programs) and for an error value (#N/A from a
failed VLOOKUP). Both would read as "required field missing" on the wrong evidence, so the
sheet's XML is scanned for them, only where it has formulas or error cells at all.
"""

import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from posixpath import join, normpath
from xml.etree import ElementTree

# Any namespace prefix: some generators write <x:c> and <x:f>.
_FORMULA_OR_ERROR = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?f[\s>/]|\st=\"e\"")
_CELL_OPEN = re.compile(rb"<(?:([A-Za-z_][\w.-]*):)?c(\s[^>]*?)?(/?)>")
_REF = re.compile(rb"\sr=\"([A-Z]{1,3})([0-9]+)\"")
_TYPE = re.compile(rb"\st=\"([a-zA-Z]+)\"")
_VALUE = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?v>([^<]*)<")
# Every sheet with a formula closes at least one <f> element (a shared formula's first cell holds
# its text), and an error cell carries t="e"; a sheet with neither marker needs no scan.
_MARKERS = (b"f>", b' t="e"')
_CHUNK = 8 * 1024 * 1024
_OVERLAP = 8


@dataclass(frozen=True, slots=True)
class WorkbookFacts:
    sheet_paths: dict[str, str]  # sheet name → ZIP member of its XML
    date1904: bool


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def workbook_facts(archive: zipfile.ZipFile) -> WorkbookFacts:
    workbook_path = "xl/workbook.xml"
    rels_path = "xl/_rels/workbook.xml.rels"
    workbook = ElementTree.fromstring(archive.read(workbook_path))
    try:
        rels = ElementTree.fromstring(archive.read(rels_path))
    except KeyError:
        return WorkbookFacts({}, False)
    targets = {}
    for rel in rels:
        target = rel.get("Target", "")
        # Targets are relative to xl/ unless absolute ("/xl/worksheets/sheet1.xml", as openpyxl writes).
        targets[rel.get("Id")] = target.lstrip("/") if target.startswith("/") else normpath(join("xl", target))
    paths: dict[str, str] = {}
    date1904 = False
    for element in workbook.iter():
        name = _local(element.tag)
        if name == "workbookPr":
            date1904 = element.get("date1904", "0").lower() in ("1", "true")
        elif name == "sheet":
            rel_id = next((v for k, v in element.attrib.items() if _local(k) == "id" and k.startswith("{")), None)
            if rel_id in targets:
                paths[element.get("name", "")] = targets[rel_id]
    return WorkbookFacts(paths, date1904)


def _column_index(letters: bytes) -> int:
    index = 0
    for letter in letters:
        index = index * 26 + letter - 64
    return index - 1


def may_have_unreadable_cells(archive: zipfile.ZipFile, path: str) -> bool:
    """Whether the sheet has any formula or error cell, streamed: most uploads have neither, and
    a 60k-row sheet is 100 MB of XML that need not be held for nothing."""
    tail = b""
    with archive.open(path) as stream:
        while chunk := stream.read(_CHUNK):
            window = tail + chunk
            if any(marker in window for marker in _MARKERS):
                return True
            tail = window[-_OVERLAP:]
    return False


def _candidates(xml: bytes) -> Iterator[int]:
    if b":f>" in xml or b":f " in xml:
        # Prefixed elements (<x:f>): the general scan, slower since it stops at every "<".
        yield from (match.start() for match in _FORMULA_OR_ERROR.finditer(xml))
        return
    for marker in (b"<f>", b"<f ", b"<f/", b' t="e"'):
        position = xml.find(marker)
        while position >= 0:
            yield position
            position = xml.find(marker, position + 1)


def unreadable_cells(xml: bytes) -> dict[tuple[int, int], str]:
    """(row number, column index from 0) → why the cell's value cannot be trusted (a Chinese detail)."""
    found: dict[tuple[int, int], str] = {}
    for position in _candidates(xml):
        # <f> is a cell's first child, so the tag before it is the cell's; t="e" sits in that tag.
        start = xml.rfind(b"<", 0, position)
        cell = _CELL_OPEN.match(xml, start)
        if cell is None:
            continue
        attributes = cell[2] or b""
        ref = _REF.search(attributes)
        if ref is None:
            continue
        key = (int(ref[2]), _column_index(ref[1]))
        if key in found:
            continue
        kind = _TYPE.search(attributes)
        cell_type = kind[1] if kind else b"n"
        if cell[3]:  # <c .../>: no content at all
            value = None
        else:
            end = xml.find(b"</" + (cell[1] + b":" if cell[1] else b"") + b"c>", cell.end())
            content = xml[cell.end():end if end >= 0 else len(xml)]
            value_match = _VALUE.search(content)
            value = value_match[1] if value_match else None
        if cell_type == b"e":
            shown = value.decode(errors="replace") if value else "#错误"
            found[key] = f"单元格是错误值 {shown}（公式出错），请改正后再上传"
        elif not value and cell_type != b"str":
            # t="str" with an empty <v> is a formula whose result is the empty string: a real value.
            found[key] = ("单元格是公式，但文件里没有保存计算结果（程序生成的表格常见）："
                          "请用 Excel 打开并保存一次后再上传，或把公式改为数值")
    return found
