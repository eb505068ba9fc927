"""Reading an export as downloaded: CSV (GBK/GB18030/UTF-8/UTF-8-BOM, optionally gzipped) or a
workbook (XLSX/XLS, through calamine, a Rust reader), into sheets of cells with the row numbers a
spreadsheet shows, so that a refused row can be found in the file the user has."""

from __future__ import annotations

import codecs
import csv
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

WORKBOOK_EXTS = (".xlsx", ".xlsm", ".xls")
CSV_EXTS = (".csv", ".csv.gz", ".txt")


class ExportFileError(ValueError):
    """The file cannot be read at all; the message names it."""


@dataclass
class Sheet:
    name: str | None             # worksheet name (None for CSV)
    rows: list[tuple[int, list]]  # (row number as a spreadsheet shows it, cells)
    encoding: str


def export_kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(WORKBOOK_EXTS):
        return "workbook"
    if name.endswith(CSV_EXTS):
        return "csv"
    raise ExportFileError(f"{path}: not an export this reads (.csv, .csv.gz, .xlsx, .xls)")


def decode(data: bytes, path: Path) -> tuple[str, str]:
    """UTF-8 (with or without BOM), else GB18030 (which contains GBK and GB2312)."""
    if data.startswith(codecs.BOM_UTF8):
        data, bom = data[len(codecs.BOM_UTF8):], True
    else:
        bom = False
    try:
        return data.decode("utf-8"), "utf-8-sig" if bom else "utf-8"
    except UnicodeDecodeError:
        if bom:
            return data.decode("utf-8", "replace"), "utf-8-sig"
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError:
        # keep going: the rows holding broken bytes are refused one by one (U+FFFD in their cells)
        return data.decode("gb18030", "replace"), "gb18030"


def read_csv_bytes(data: bytes, path: Path) -> Sheet:
    text, encoding = decode(data, path)
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = []
    try:
        for record in reader:
            rows.append((len(rows) + 1, record))
    except csv.Error as exc:
        raise ExportFileError(f"{path}: CSV syntax error after row {len(rows)}: {exc}") from exc
    return Sheet(None, rows, encoding)


def read_workbook(path: Path) -> list[Sheet]:
    from python_calamine import CalamineWorkbook

    try:
        wb = CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # noqa: BLE001 - calamine raises several types for a broken file
        raise ExportFileError(f"{path}: not a readable workbook ({exc})") from exc
    sheets = []
    try:
        for name in wb.sheet_names:
            sh = wb.get_sheet_by_name(name)
            start = sh.start[0] if sh.start else 0
            data = sh.to_python(skip_empty_area=False)
            sheets.append(Sheet(name, [(start + i + 1, list(r)) for i, r in enumerate(data)], "xlsx"))
    finally:
        wb.close()
    return sheets


def read_export(path: Path) -> list[Sheet]:
    path = Path(path)
    if not path.is_file():
        raise ExportFileError(f"{path}: no such file")
    if export_kind(path) == "workbook":
        return read_workbook(path)
    data = path.read_bytes()
    if path.name.lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise ExportFileError(f"{path}: not a readable gzip file ({exc})") from exc
    return [read_csv_bytes(data, path)]


def header_name(cell) -> str:
    """Header cells compared without BOM, edge spaces and tabs (exports pad them)."""
    return str(cell if cell is not None else "").replace("\ufeff", "").replace("\t", "").strip()


def is_blank(cells: list) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


def raw_text(cells: list) -> str:
    """The row as one CSV line, for quarantine."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(["" if c is None else c for c in cells])
    return buf.getvalue()
