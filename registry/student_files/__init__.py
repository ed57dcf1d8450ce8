"""Bulk student files: the import template, reading and checking an upload, the row report, the export.

Pure functions on bytes and dicts; the batch_intake service stores the results.
"""

from registry.student_files.columns import COLUMNS, Column
from registry.student_files.reader import ReadResult, SheetRow, read_rows
from registry.student_files.report import build_export, build_report
from registry.student_files.template import build_template
from registry.student_files.validation import RowReport, check_rows

__all__ = [
    "COLUMNS", "Column", "ReadResult", "RowReport", "SheetRow", "build_export", "build_report", "build_template",
    "check_rows", "read_rows",
]
