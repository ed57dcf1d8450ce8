"""Cell styles shared by the template, the row report and the export, so the three look alike."""

from openpyxl.styles import Alignment, Font, PatternFill

TEXT_FORMAT = "@"
HEADER_FONT = Font(bold=True)
REQUIRED_FONT = Font(bold=True, color="C00000")
HEADER_FILL = PatternFill("solid", fgColor="D9E1F2")
# Excel's own "Bad" and "Neutral" cell styles: what registrars already read as wrong / look again.
ERROR_FILL = PatternFill("solid", fgColor="FFC7CE")
WARNING_FILL = PatternFill("solid", fgColor="FFEB9C")
WRAP = Alignment(wrap_text=True, vertical="top")
