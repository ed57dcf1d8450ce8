"""What an uploaded file really is, judged by its bytes: names lie (an HTML page saved as .xls,
a CSV renamed .xlsx), and the refusal has to tell a registrar what to do instead."""

import io
import zipfile
from dataclasses import dataclass
from enum import StrEnum

from registry.errors import msg

_SAVE_AS_XLSX = msg("请用 Excel 或 WPS 打开，选择“另存为” → “Excel 工作簿（*.xlsx）”后再上传")


class FileKind(StrEnum):
    xlsx = "xlsx"
    text = "text"


@dataclass(frozen=True, slots=True)
class Sniffed:
    kind: FileKind | None  # None: refused
    refusal: str | None = None  # Chinese, when refused


def _refuse(message: str) -> Sniffed:
    return Sniffed(None, message)


_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED = "EncryptedPackage".encode("utf-16-le")
_BINARY_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "PDF 文件"),
    (b"\x89PNG", "PNG 图片"),
    (b"\xff\xd8\xff", "JPEG 图片"),
    (b"GIF8", "GIF 图片"),
    (b"Rar!", "RAR 压缩包"),
    (b"7z\xbc\xaf\x27\x1c", "7z 压缩包"),
    (b"\x1f\x8b", "gzip 压缩包"),
    (b"{\\rtf", "RTF 文档"),
)


def sniff(data: bytes) -> Sniffed:
    if not data.strip():
        return _refuse(msg("文件是空的：请确认选择了填好的学生名单文件"))
    if data.startswith(b"PK\x03\x04"):
        return _sniff_zip(data)
    if data.startswith(_OLE):
        # Office 2007+ files with a password are OLE containers too, holding the encrypted ZIP.
        if _ENCRYPTED in data:
            return _refuse(msg("文件设置了打开密码，无法读取：请在 Excel 中取消密码（文件 → 信息 → 保护工作簿）后另存为 .xlsx 再上传"))
        return _refuse(msg("这是旧版 Excel 97-2003 工作簿（.xls）或 WPS 表格（.et），系统不读取这种格式：{save_as_xlsx}",
                           save_as_xlsx=_SAVE_AS_XLSX))
    for signature, what in _BINARY_SIGNATURES:
        if data.startswith(signature):
            return _refuse(msg("这是{what}，不是学生名单表格：请上传 .xlsx 或 .csv 文件", what=what))
    head = data[:4096].lstrip(b"\xef\xbb\xbf\xff\xfe\x00 \t\r\n").lower().replace(b"\x00", b"")
    if head.startswith((b"<!doctype html", b"<html", b"<table", b"<meta", b"<head")) or b"<html" in head[:1024]:
        return _refuse(msg("这是网页（HTML）文件，只是扩展名为 .xls（常见于从其他系统导出的表格）：{save_as_xlsx}", save_as_xlsx=_SAVE_AS_XLSX))
    if head.startswith(b"mime-version:"):
        return _refuse(msg("这是单个文件网页（.mht），不是表格文件：{save_as_xlsx}", save_as_xlsx=_SAVE_AS_XLSX))
    if head.startswith(b"<?xml"):
        if b"urn:schemas-microsoft-com:office:spreadsheet" in data[:8192]:
            return _refuse(msg("这是 XML 电子表格 2003 文件：{save_as_xlsx}", save_as_xlsx=_SAVE_AS_XLSX))
        return _refuse(msg("这是 XML 文件，不是学生名单表格：请上传 .xlsx 或 .csv 文件"))
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return Sniffed(FileKind.text)  # "Unicode 文本" saved from Excel: UTF-16, tab-separated
    if b"\x00" in data[:65536]:
        return _refuse(msg("这不是表格文件（内容是二进制数据）：请上传 .xlsx 或 .csv 文件"))
    return Sniffed(FileKind.text)


def _sniff_zip(data: bytes) -> Sniffed:
    try:
        names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    except (zipfile.BadZipFile, EOFError, ValueError):
        return _refuse(msg("文件已损坏（ZIP 结构不完整），可能没有上传完整：请重新保存后再上传"))
    if "xl/workbook.xml" in names or any(n.endswith("/workbook.xml") and n.startswith("xl") for n in names):
        return Sniffed(FileKind.xlsx)
    if "xl/workbook.bin" in names:
        return _refuse(msg("这是 Excel 二进制工作簿（.xlsb）：{save_as_xlsx}", save_as_xlsx=_SAVE_AS_XLSX))
    if "word/document.xml" in names:
        return _refuse(msg("这是 Word 文档，不是表格：请把名单放进 Excel 表格，保存为 .xlsx 后再上传"))
    if "ppt/presentation.xml" in names:
        return _refuse(msg("这是 PowerPoint 演示文稿，不是表格：请上传 .xlsx 或 .csv 文件"))
    if "mimetype" in names and "content.xml" in names:
        return _refuse(msg("这是 OpenDocument 文件（.ods/.odt）：{save_as_xlsx}", save_as_xlsx=_SAVE_AS_XLSX))
    return _refuse(msg("这是 ZIP 压缩包，不是 Excel 文件：请解压后上传其中的 .xlsx 文件"))
