"""Reading landed files into rows of text, before any typing.

Every format becomes the same thing: a header-aligned list of text values per data row, the row's
1-based number in the file, its raw text (for quarantine) and, when the bytes themselves are broken,
a pre-check failure (bad_encoding, malformed_row). Typing and contract rules run afterwards in
DuckDB (see ingest.py), so they are the same for CSV, JSONL and Parquet.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from dagster_project.lib.contract import SOURCES

FILE_NAME_RE = re.compile(
    r"^(?P<source>[a-z_]+?)_(?P<date>\d{8})(?:_[^/]*)?\.(?P<ext>csv\.gz|csv|jsonl|parquet)$"
)
_SURROGATE_RE = re.compile("[\udc80-\udcff]")
_LINE_RE = re.compile(r"[^\n]*\n|[^\n]+\Z")


class LandingFileError(ValueError):
    """A landed file that cannot be read at all (its name or its bytes), with the file named."""


@dataclass
class LandedFile:
    path: Path
    source: str
    file_date: date
    ext: str

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class ParsedFile:
    """Rows of a landed file as text, aligned to the contract columns of its source."""

    columns: tuple[str, ...]
    values: dict[str, list[str | None]]
    row_numbers: list[int]
    raw_text: list[str]
    pre_rule: list[str | None]
    pre_detail: list[str | None]
    encoding: str
    notes: list[str] = field(default_factory=list)

    @property
    def n_rows(self) -> int:
        return len(self.row_numbers)


def parse_file_name(path: Path) -> LandedFile:
    m = FILE_NAME_RE.match(path.name)
    if not m:
        raise LandingFileError(
            f"{path}: file name must be <source>_<YYYYMMDD>[_<anything>].(csv|csv.gz|jsonl|parquet)"
        )
    source = m.group("source")
    # "order_items_20260520.csv" would also match source "order" with a suffix: prefer the folder.
    folder = path.parent.name
    if folder in SOURCES and path.name.startswith(folder + "_"):
        source = folder
        m2 = re.match(rf"^{folder}_(\d{{8}})", path.name)
        raw_date = m2.group(1) if m2 else m.group("date")
    else:
        raw_date = m.group("date")
    if source not in SOURCES:
        raise LandingFileError(f"{path}: unknown source {source!r} (expected one of {sorted(SOURCES)})")
    try:
        file_date = datetime.strptime(raw_date, "%Y%m%d").date()
    except ValueError as exc:
        raise LandingFileError(f"{path}: {raw_date!r} in the file name is not a date YYYYMMDD") from exc
    return LandedFile(path=path, source=source, file_date=file_date, ext=m.group("ext"))


def discover(landing_dir: Path, source: str) -> tuple[list[LandedFile], list[str]]:
    """Files of one source under landing/<source>/, oldest file date first, plus misnamed files."""
    folder = landing_dir / source
    found: list[LandedFile] = []
    problems: list[str] = []
    if not folder.is_dir():
        return found, problems
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        try:
            lf = parse_file_name(path)
        except LandingFileError as exc:
            problems.append(str(exc))
            continue
        if lf.source != source:
            problems.append(f"{path}: belongs to source {lf.source!r}, not in folder {source!r}")
            continue
        found.append(lf)
    found.sort(key=lambda f: (f.file_date, f.name))
    return found, problems


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decompress(lf: LandedFile, data: bytes) -> bytes:
    if lf.ext == "csv.gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise LandingFileError(f"{lf.path}: not a readable gzip file ({exc})") from exc
    return data


def _count_bad_lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if _SURROGATE_RE.search(line))


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode CSV bytes: UTF-8 (with or without BOM) or GBK/GB18030.

    Broken bytes are kept as surrogate escapes so the rows holding them can be quarantined one by
    one instead of failing the file. When neither encoding decodes cleanly, the one with fewer
    broken lines is taken.
    """
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):].decode("utf-8", "surrogateescape"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError:
        pass
    as_utf8 = data.decode("utf-8", "surrogateescape")
    as_gb = data.decode("gb18030", "surrogateescape")
    if _count_bad_lines(as_utf8) <= _count_bad_lines(as_gb):
        return as_utf8, "utf-8"
    return as_gb, "gb18030"


def printable(text: str) -> str:
    """Raw text safe to store: broken bytes shown as \\xNN."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _empty(columns: tuple[str, ...], encoding: str) -> ParsedFile:
    return ParsedFile(columns, {c: [] for c in columns}, [], [], [], [], encoding)


def _header_notes(header: list[str], columns: tuple[str, ...]) -> list[str]:
    notes = []
    missing = [c for c in columns if c not in header]
    extra = [h for h in header if h not in columns]
    if missing:
        notes.append(f"columns absent from the file (read as empty): {', '.join(missing)}")
    if extra:
        notes.append(f"columns not in the contract (ignored): {', '.join(extra)}")
    return notes


def parse_csv(data: bytes, columns: tuple[str, ...]) -> ParsedFile:
    text, encoding = decode_text(data)
    # Only \n ends a line: str.splitlines would also split on \u2028, \x1c-\x1e, \x85, which
    # occur inside pasted product names and are not quoted by CSV writers.
    lines = _LINE_RE.findall(text)
    if not lines:
        return _empty(columns, encoding)
    reader = csv.reader(iter(lines))
    try:
        header = [h.strip().lstrip("\ufeff").lower() for h in next(reader)]
    except StopIteration:
        return _empty(columns, encoding)
    out = _empty(columns, encoding)
    out.notes = _header_notes(header, columns)
    index = {name: i for i, name in enumerate(header) if name in columns}
    prev_line = reader.line_num
    row_no = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            row_no += 1
            raw = "".join(lines[prev_line:reader.line_num])
            prev_line = reader.line_num
            _append_bad(out, row_no, raw, "malformed_row", f"CSV syntax error: {exc}")
            continue
        raw = "".join(lines[prev_line:reader.line_num])
        prev_line = reader.line_num
        if not record or (len(record) == 1 and not record[0].strip()):
            continue  # blank line: not a row
        row_no += 1
        raw_clean = raw.rstrip("\r\n")
        if _SURROGATE_RE.search(raw):
            _append_bad(out, row_no, raw_clean, "bad_encoding",
                        f"bytes that are not valid {encoding} text")
            continue
        if len(record) != len(header):
            _append_bad(out, row_no, raw_clean, "malformed_row",
                        f"{len(record)} fields where the header has {len(header)}")
            continue
        out.row_numbers.append(row_no)
        out.raw_text.append(raw_clean)
        out.pre_rule.append(None)
        out.pre_detail.append(None)
        for c in columns:
            i = index.get(c)
            v = record[i].strip() if i is not None else ""
            out.values[c].append(v if v != "" else None)
    return out


def _append_bad(out: ParsedFile, row_no: int, raw: str, rule: str, detail: str) -> None:
    out.row_numbers.append(row_no)
    out.raw_text.append(printable(raw))
    out.pre_rule.append(rule)
    out.pre_detail.append(detail)
    for c in out.columns:
        out.values[c].append(None)


def _json_text(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v) if isinstance(v, float) else str(v)
    if isinstance(v, str):
        v = v.strip()
        return v if v != "" else None
    return json.dumps(v, ensure_ascii=False, sort_keys=True)


_ABSENT = object()


def parse_jsonl(data: bytes, columns: tuple[str, ...]) -> ParsedFile:
    """One JSON object per line; keys are matched like CSV headers (trimmed, lower case; of two keys
    that match one column, the later wins), values become text (`_json_text`).

    This loop is most of an events file's ingest time (~8 us of ~15 us per row at L's sizes,
    benchmarks/profile_costs.py), so it works out the key -> column mapping once per distinct key
    order instead of normalising every row's keys, and takes plain strings on a short path."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    out = _empty(columns, "utf-8")
    seen_keys: set[str] = set()
    plans: dict[tuple, tuple] = {}  # a line's keys in order -> for each column, the key it reads
    loads, decode_error = json.loads, json.JSONDecodeError
    row_numbers, raw_text = out.row_numbers.append, out.raw_text.append
    pre_rule, pre_detail = out.pre_rule.append, out.pre_detail.append
    appenders = [out.values[c].append for c in columns]
    for line_no, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError:
            _append_bad(out, line_no, line.decode("utf-8", "surrogateescape").rstrip("\r"),
                        "bad_encoding", "bytes that are not valid utf-8 text")
            continue
        try:
            obj = loads(text)
        except decode_error as exc:
            _append_bad(out, line_no, text, "malformed_row", f"not valid JSON: {exc.msg}")
            continue
        if not isinstance(obj, dict):
            _append_bad(out, line_no, text, "malformed_row", "a JSON line must be an object")
            continue
        keys = tuple(obj)
        plan = plans.get(keys)
        if plan is None:
            normalised = {}
            for k in keys:
                normalised[str(k).strip().lower()] = k  # the later key wins, as in a dict
            seen_keys.update(normalised)
            plan = tuple(normalised.get(c, _ABSENT) for c in columns)
            if len(plans) < 10_000:  # a file whose every line orders its keys differently: stop caching
                plans[keys] = plan
        row_numbers(line_no)
        raw_text(text)
        pre_rule(None)
        pre_detail(None)
        for append, k in zip(appenders, plan):
            if k is _ABSENT:
                append(None)
                continue
            v = obj[k]
            if type(v) is str:
                v = v.strip()
                append(v if v else None)
            elif v is None:
                append(None)
            else:
                append(_json_text(v))
    extra = sorted(seen_keys - set(columns))
    if extra:
        out.notes.append(f"keys not in the contract (ignored): {', '.join(extra)}")
    return out


def parse_parquet(path: Path, columns: tuple[str, ...]) -> ParsedFile:
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        try:
            rel = con.sql("select * from read_parquet(?)", params=[str(path)])
            names = [n.lower() for n in rel.columns]
            # Text as DuckDB prints it: a float32 19.9 stays "19.9" (Python would say
            # 19.899999618530273), timestamps keep their offset ("+00").
            rows = con.sql(
                "select " + ", ".join(f"cast(c{i} as varchar)" for i in range(len(names)))
                + " from read_parquet(?) as t(" + ", ".join(f"c{i}" for i in range(len(names))) + ")",
                params=[str(path)],
            ).fetchall()
        except duckdb.Error as exc:
            raise LandingFileError(f"{path}: not a readable Parquet file ({exc})") from exc
    finally:
        con.close()
    out = _empty(columns, "parquet")
    out.notes = _header_notes(names, columns)
    index = {n: i for i, n in enumerate(names) if n in columns}
    for row_no, row in enumerate(rows, start=1):
        out.row_numbers.append(row_no)
        out.raw_text.append(json.dumps(dict(zip(names, row)), ensure_ascii=False, default=str))
        out.pre_rule.append(None)
        out.pre_detail.append(None)
        for c in columns:
            i = index.get(c)
            out.values[c].append(_json_text(row[i]) if i is not None else None)
    return out


def parse(lf: LandedFile, data: bytes) -> ParsedFile:
    columns = SOURCES[lf.source].column_names
    if lf.ext in ("csv", "csv.gz"):
        return parse_csv(data, columns)
    if lf.ext == "jsonl":
        return parse_jsonl(data, columns)
    if lf.ext == "parquet":
        return parse_parquet(lf.path, columns)
    raise LandingFileError(f"{lf.path}: unsupported extension {lf.ext}")


__all__ = [
    "LandedFile", "ParsedFile", "LandingFileError", "parse_file_name", "discover", "content_hash",
    "decompress", "decode_text", "parse", "parse_csv", "parse_jsonl", "parse_parquet", "printable",
]
