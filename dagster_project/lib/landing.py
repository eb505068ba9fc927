"""Reading landed files into rows of text, before any typing.

Every format becomes the same thing: a header-aligned list of text values per data row, the row's
1-based number in the file, its raw text (for quarantine) and, when the bytes themselves are broken,
a pre-check failure (bad_encoding, malformed_row). Typing and contract rules run afterwards in
DuckDB (see ingest.py), so they are the same for CSV, JSONL and Parquet.

Landing files come from other teams' systems and are read as hostile input (docs/quality.md,
"Hostile files"): only regular files inside the landing folder are opened, never through a link
that leaves it; a file is read as a stream in blocks, decompressed with a cap on its size and on
its compression ratio, and handed to the loader in batches of rows, so a file's size bounds the
time it takes but not the memory it needs.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import functools
import hashlib
import io
import json
import os
import re
import stat
import zlib
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import chain
from pathlib import Path
from typing import IO, Callable, Iterable, Iterator

from dagster_project.lib.contract import SOURCES

FILE_NAME_RE = re.compile(
    r"^(?P<source>[a-z_]+?)_(?P<date>\d{8})(?:_[^/]*)?\.(?P<ext>csv\.gz|csv|jsonl|parquet)$"
)
DONE_SUFFIX = ".done"  # `<file>.done` beside a file: its writer has finished (ingest.py)
_SURROGATE_RE = re.compile("[\udc80-\udcff]")
_NON_ASCII_RE = re.compile("[^\x00-\x7f]")
_LONE_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_LINE_RE = re.compile(r"[^\n]*\n|[^\n]+\Z")

CHUNK_BYTES = 1 << 20      # read and decompress 1 MiB at a time
BATCH_ROWS = 20_000        # rows handed to the loader at a time (~50 MB of Python objects)
BATCH_BYTES = 32 << 20     # ... or fewer, when the rows are long
MAX_LINE_BYTES = 16 << 20  # a longer line is refused (malformed_row) without being held in memory
_KEPT_OF_LONG_LINE = 1024  # bytes of such a line kept as its raw text


@dataclass(frozen=True)
class Limits:
    """What one landed file may cost (settings EW_MAX_FILE_MB, EW_MAX_COMPRESSION_RATIO).

    A file over a limit is refused as a whole (unreadable_file) before any of it is loaded.
    """

    max_bytes: int = 4096 << 20     # size of a file's content, decompressed
    max_ratio: float = 100.0        # decompressed / compressed size of a .csv.gz ...
    ratio_floor: int = 10 << 20     # ... once it has decompressed to more than this


class LandingFileError(ValueError):
    """A landed file that cannot be read at all (its name or its bytes), with the file named."""


class FileChanged(RuntimeError):
    """The file changed while it was being read: it is still being written, so not loaded now."""


@dataclass
class LandedFile:
    path: Path
    source: str
    file_date: date
    ext: str
    real: Path | None = None  # the file's own path, links resolved (checked to be in the landing folder)

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class ParsedFile:
    """Rows of a landed file (or of one batch of it) as text, aligned to the contract columns."""

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


@dataclass
class FileInfo:
    """What reading a file found out about it as a whole; complete once its batches are consumed."""

    encoding: str = ""
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Names and places

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


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def _real_file(path: Path, root: Path) -> tuple[Path | None, str | None]:
    """(the file's real path, None), or (None, why it is refused): it must be a regular file whose
    real path (links resolved) is inside the landing folder. A link to /etc/passwd or to another
    service's secrets would otherwise land their contents in raw.quarantine and its export."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None, "a symbolic link whose target does not exist (or loops): not loaded"
    if not real.is_relative_to(root):
        return None, f"resolves to {real}, outside the landing folder (a symbolic link): refused"
    try:
        st = os.stat(real)
    except OSError as exc:
        return None, f"cannot be examined ({exc.strerror}): not loaded"
    if not stat.S_ISREG(st.st_mode):
        return None, f"{_kind(st.st_mode)}, not a regular file: refused"
    return real, None


def _name_hint(name: str) -> str:
    lower = name.lower()
    if lower != name and FILE_NAME_RE.match(lower):
        return f" (names are case-sensitive: rename it to {lower})"
    return ""


def _scan(landing_dir: Path, source: str) -> tuple[list[LandedFile], list[tuple[Path, str]]]:
    folder = landing_dir / source
    found: list[LandedFile] = []
    problems: list[tuple[Path, str]] = []
    if not folder.is_dir():
        return found, problems
    root = landing_dir.resolve()
    for path in sorted(folder.iterdir()):
        name = path.name
        if path.is_dir() and not path.is_symlink():
            for sub in _files_under(path):
                problems.append((sub, f"in a subfolder: only files directly in {source}/ are loaded"))
            continue
        if name.endswith(DONE_SUFFIX) and not name.startswith("."):
            continue  # a marker that its file is complete (ingest.py), not a file to load
        if name.startswith("."):
            problems.append((path, "hidden file (its name starts with '.'): not loaded"))
            continue
        real, why = _real_file(path, root)
        if why is not None:
            problems.append((path, why))
            continue
        try:
            lf = parse_file_name(path)
        except LandingFileError as exc:
            problems.append((path, str(exc).removeprefix(f"{path}: ") + _name_hint(name)))
            continue
        if lf.source != source:
            problems.append((path, f"belongs to source {lf.source!r}, not in folder {source!r}"))
            continue
        lf.real = real
        found.append(lf)
    found.sort(key=lambda f: (f.file_date, f.name))
    return found, problems


def _files_under(folder: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):  # links to folders are not followed
        dirnames.sort()
        out += [Path(dirpath) / f for f in sorted(filenames + [d for d in dirnames
                                                               if os.path.islink(os.path.join(dirpath, d))])]
    return out


def _relative(path: Path, landing_dir: Path) -> str:
    try:
        return str(path.relative_to(landing_dir))
    except ValueError:
        return str(path)


def discover(landing_dir: Path, source: str) -> tuple[list[LandedFile], list[str]]:
    """Files of one source under landing/<source>/, oldest file date first, plus every other entry
    of that folder with why it is not loaded ("<path under landing>: <reason>")."""
    found, problems = _scan(landing_dir, source)
    return found, [f"{_relative(p, landing_dir)}: {why}" for p, why in problems]


def survey(landing_dir: Path) -> list[tuple[str, str]]:
    """Every file under the landing folder that no source will load, as (path under landing, why):
    misnamed or misplaced files, subfolders, folders that are not a source, links and special files."""
    out: list[tuple[str, str]] = []
    if not landing_dir.is_dir():
        return out
    for entry in sorted(landing_dir.iterdir()):
        name = entry.name
        if name in SOURCES and entry.is_dir():
            out += [(_relative(p, landing_dir), why) for p, why in _scan(landing_dir, name)[1]]
        elif entry.is_dir() and not entry.is_symlink():
            close = difflib.get_close_matches(name, list(SOURCES), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            for p in _files_under(entry):
                out.append((_relative(p, landing_dir), f"folder {name!r} is not a source{hint}: not loaded"))
        else:
            m = FILE_NAME_RE.match(name)
            where = f" (move it to {m.group('source')}/)" if m and m.group("source") in SOURCES else ""
            out.append((name, f"not in a source folder: files go in <source>/{where}"))
    return out


def done_marker_ns(path: Path) -> int | None:
    """The mtime of `<file>.done` beside a landed file, if there is one (a file name near the
    255-byte limit cannot have one)."""
    try:
        st = os.stat(path.with_name(path.name + DONE_SUFFIX))
    except OSError:
        return None
    return st.st_mtime_ns if stat.S_ISREG(st.st_mode) else None


# ---------------------------------------------------------------------------------------------
# Bytes

class OpenedFile:
    """A landed file opened for reading: never through a link (O_NOFOLLOW on its real path),
    never anything but a regular file (a FIFO would block, a device never ends)."""

    def __init__(self, lf: LandedFile):
        self.lf = lf
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            self.fd = os.open(lf.real or lf.path, flags)
        except OSError as exc:
            raise LandingFileError(f"{lf.path}: cannot be opened ({exc.strerror})") from exc
        self.stat = os.fstat(self.fd)
        if not stat.S_ISREG(self.stat.st_mode):
            os.close(self.fd)
            raise LandingFileError(f"{lf.path}: {_kind(self.stat.st_mode)}, not a regular file: refused")

    def __enter__(self) -> "OpenedFile":
        return self

    def __exit__(self, *exc) -> None:
        os.close(self.fd)

    def chunks(self) -> Iterator[bytes]:
        offset = 0
        while chunk := os.pread(self.fd, CHUNK_BYTES, offset):
            offset += len(chunk)
            yield chunk

    def head(self, n: int) -> bytes:
        return os.pread(self.fd, n, 0)

    def file(self) -> IO[bytes]:
        return os.fdopen(os.dup(self.fd), "rb")

    def check_unchanged(self) -> None:
        now = os.fstat(self.fd)
        before = self.stat
        if (now.st_size, now.st_mtime_ns, now.st_ctime_ns) != (before.st_size, before.st_mtime_ns, before.st_ctime_ns):
            raise FileChanged(f"{self.lf.path}: changed while it was being read (still being written?); "
                              f"not loaded now, it will be when it stops changing")


class BytesFile:
    """Bytes in memory that read like an opened file (tests, benchmarks)."""

    def __init__(self, data: bytes):
        self.data = data

    def chunks(self) -> Iterator[bytes]:
        view = memoryview(self.data)
        for i in range(0, len(view), CHUNK_BYTES):
            yield bytes(view[i:i + CHUNK_BYTES])

    def head(self, n: int) -> bytes:
        return self.data[:n]

    def file(self) -> IO[bytes]:
        return io.BytesIO(self.data)


def content_hash(data: bytes | Iterable[bytes]) -> str:
    h = hashlib.sha256()
    if isinstance(data, (bytes, bytearray, memoryview)):
        h.update(data)
    else:
        for chunk in data:
            h.update(chunk)
    return h.hexdigest()


def _mb(n: float) -> str:
    return f"{n / (1 << 20):,.1f} MB" if n >= 1 << 20 else f"{n / 1024:,.1f} KB"


def decompressed(lf: LandedFile, chunks: Iterable[bytes], size: int, limits: Limits) -> Iterator[bytes]:
    """The file's content, decompressed as a stream. Refuses (LandingFileError) a file whose content
    is over `limits.max_bytes`, a gzip stream that decompresses to more than `limits.max_ratio`
    times its size (a decompression bomb: 0.12 MB of gzip held 120 MB of rows), and a gzip stream
    cut short (an interrupted transfer), which must not replace a good earlier delivery."""
    total = 0
    if lf.ext != "csv.gz":
        for chunk in chunks:
            total += len(chunk)
            if total > limits.max_bytes:
                raise LandingFileError(f"{lf.path}: larger than {_mb(limits.max_bytes)} (EW_MAX_FILE_MB): refused")
            yield chunk
        return
    d = zlib.decompressobj(zlib.MAX_WBITS | 16)
    seen = False
    try:
        for chunk in chunks:
            buf = chunk
            while buf:
                seen = True
                if d.eof:  # a second gzip member follows the first (`cat a.gz b.gz`)
                    d = zlib.decompressobj(zlib.MAX_WBITS | 16)
                out = d.decompress(buf, CHUNK_BYTES)
                buf = d.unused_data if d.eof else d.unconsumed_tail
                if out:
                    total += len(out)
                    _check_inflated(lf, total, size, limits)
                    yield out
        out = d.flush()
    except zlib.error as exc:
        raise LandingFileError(f"{lf.path}: not a readable gzip file ({exc})") from exc
    if out:
        total += len(out)
        _check_inflated(lf, total, size, limits)
        yield out
    if not seen or not d.eof:
        raise LandingFileError(f"{lf.path}: not a readable gzip file (the compressed stream is cut short: "
                               f"an interrupted transfer?)")


def _check_inflated(lf: LandedFile, total: int, size: int, limits: Limits) -> None:
    if total > limits.max_bytes:
        raise LandingFileError(f"{lf.path}: decompresses to more than {_mb(limits.max_bytes)} "
                               f"(EW_MAX_FILE_MB): refused")
    if total > limits.ratio_floor and total > limits.max_ratio * max(size, 1):
        raise LandingFileError(
            f"{lf.path}: {_mb(size)} of gzip decompresses to more than {_mb(total)}, over "
            f"{limits.max_ratio:g} times its size (EW_MAX_COMPRESSION_RATIO): refused as a likely "
            f"decompression bomb")


class _LineBlocks:
    """A byte stream cut into blocks of whole lines (split on \\n only), counting lines. A line
    longer than MAX_LINE_BYTES is not held: its first bytes stand for it and `overlong` records
    its number and length, so the parser refuses it."""

    def __init__(self, chunks: Iterable[bytes]):
        self.chunks = chunks
        self.overlong: dict[int, int] = {}

    def __iter__(self) -> Iterator[bytes]:
        carry = b""
        lines = 0
        skipped: int | None = None  # bytes of an overlong line dropped so far
        for chunk in self.chunks:
            if skipped is not None:
                i = chunk.find(b"\n")
                if i < 0:
                    skipped += len(chunk)
                    continue
                lines += 1
                self.overlong[lines] = skipped + i
                skipped = None
                yield carry + b"\n"
                carry, chunk = b"", chunk[i + 1:]
            data = carry + chunk if carry else chunk
            cut = data.rfind(b"\n") + 1
            if cut:
                block = data[:cut] if cut < len(data) else data
                lines += block.count(b"\n")
                yield block
                carry = data[cut:]
            else:
                carry = data
            if len(carry) > MAX_LINE_BYTES:
                skipped = len(carry)
                carry = carry[:_KEPT_OF_LONG_LINE]
        if skipped is not None:
            self.overlong[lines + 1] = skipped
        if carry:
            yield carry


def _overlong_detail(n: int) -> str:
    return f"a line of {_mb(n)}, over the {_mb(MAX_LINE_BYTES)} a line may hold (only its start is kept)"


# ---------------------------------------------------------------------------------------------
# Text and encodings

def detect_encoding(blocks: Iterable[bytes], again: Iterable[bytes] | None = None) -> tuple[str, bool]:
    """The encoding of CSV bytes given as blocks of whole lines, and whether they decode cleanly.

    UTF-8 (with or without BOM) when it decodes cleanly. Otherwise the file is UTF-8 with a few
    broken bytes when most of its non-ASCII text is valid UTF-8 (more multibyte characters than
    broken bytes): its broken rows are quarantined one by one. A file whose bytes are mostly not
    UTF-8 is GB18030 (GBK) when that decodes cleanly. GB18030 decodes almost any bytes, so a UTF-8
    file with one cut character would otherwise load every Chinese value garbled and quarantine
    nothing. When neither decodes cleanly, the one with fewer broken lines is taken.

    `again` is a second iteration of the same blocks, needed only when UTF-8 does not decode cleanly.
    """
    first = True
    bom = False
    try:
        for block in blocks:
            if first:
                first, bom = False, block.startswith(codecs.BOM_UTF8)
            block.decode("utf-8")
        return ("utf-8-sig" if bom else "utf-8"), True
    except UnicodeDecodeError:
        if bom:
            return "utf-8-sig", False
    if again is None:
        raise ValueError("detect_encoding needs a second pass over bytes that are not clean UTF-8")
    bad = multibyte = bad_lines_utf8 = bad_lines_gb = 0
    gb_clean = True
    for block in again:
        text = block.decode("utf-8", "surrogateescape")
        n_bad = len(_SURROGATE_RE.findall(text))
        bad += n_bad
        multibyte += len(_NON_ASCII_RE.findall(text)) - n_bad
        if n_bad:
            bad_lines_utf8 += sum(1 for line in text.split("\n") if _SURROGATE_RE.search(line))
        try:
            block.decode("gb18030")
        except UnicodeDecodeError:
            gb_clean = False
            gb_text = block.decode("gb18030", "surrogateescape")
            bad_lines_gb += sum(1 for line in gb_text.split("\n") if _SURROGATE_RE.search(line))
    if multibyte > bad:
        return "utf-8", False
    if gb_clean:
        return "gb18030", True
    return ("utf-8", False) if bad_lines_utf8 <= bad_lines_gb else ("gb18030", False)


def printable(text: str) -> str:
    """Raw text safe to store: broken bytes shown as \\xNN."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that is not an escaped byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _batch(columns: tuple[str, ...], info: FileInfo) -> ParsedFile:
    return ParsedFile(columns, {c: [] for c in columns}, [], [], [], [], info.encoding, info.notes)


def _append_bad(out: ParsedFile, row_no: int, raw: str, rule: str, detail: str) -> None:
    out.row_numbers.append(row_no)
    out.raw_text.append(printable(raw))
    out.pre_rule.append(rule)
    out.pre_detail.append(detail)
    for c in out.columns:
        out.values[c].append(None)


def _header_notes(header: list[str], columns: tuple[str, ...], what: str = "columns") -> list[str]:
    """Columns the file lacks (read as empty) and columns it has that the contract does not know;
    a missing column with a close unknown one is probably renamed, and is said to be."""
    notes = []
    extra = [h for h in header if h not in columns]
    missing = []
    for c in columns:
        if c not in header:
            close = difflib.get_close_matches(c, extra, n=1, cutoff=0.6)
            missing.append(f"{c} (renamed {close[0]}?)" if close else c)
    if missing:
        notes.append(f"{what} absent from the file (read as empty): {', '.join(missing)}")
    if extra:
        notes.append(f"{what} not in the contract (ignored): {', '.join(extra)}")
    return [printable(n) for n in notes]  # a header's broken bytes as \xNN: the ledger stores text


def _check_header(path_hint: str, header: list[str], columns: tuple[str, ...], first_line: str) -> None:
    """A header that names no contract column is not a header (a file without one would lose its
    first row to it); a contract column named twice leaves it unknowable which value is meant."""
    if not any(h in columns for h in header):
        raise LandingFileError(
            f"{path_hint}the first line is not a header: none of its fields is a column of this source "
            f"({', '.join(columns)}); it reads {first_line[:120]!r}")
    seen: dict[str, list[int]] = {}
    for i, h in enumerate(header, start=1):
        if h in columns:
            seen.setdefault(h, []).append(i)
    dups = {h: pos for h, pos in seen.items() if len(pos) > 1}
    if dups:
        detail = "; ".join(f"{h} at fields {', '.join(map(str, pos))}" for h, pos in dups.items())
        raise LandingFileError(f"{path_hint}a column appears more than once in the header ({detail}): "
                               f"refused, which of them is meant cannot be known")


# ---------------------------------------------------------------------------------------------
# CSV

class _TextLines:
    """The decoded lines of a CSV stream as one iterator for csv.reader, numbered from 1 (the
    header), with the recent ones kept so a record's raw text can be cut out by line numbers."""

    def __init__(self, blocks: _LineBlocks, encoding: str):
        self.blocks = blocks
        self.encoding = "utf-8" if encoding == "utf-8-sig" else encoding
        self.bom = encoding == "utf-8-sig"
        self.kept: deque[tuple[int, list[str]]] = deque()  # (number of the first line, lines)
        self.next_no = 1
        self.pending_bytes = 0
        self.iter = chain.from_iterable(self._lines())

    def _lines(self) -> Iterator[list[str]]:
        first = True
        for block in self.blocks:
            if first and self.bom and block.startswith(codecs.BOM_UTF8):
                block = block[len(codecs.BOM_UTF8):]
            first = False
            # Only \n ends a line: str.splitlines would also split on \u2028, \x1c-\x1e, \x85,
            # which occur inside pasted product names and are not quoted by CSV writers.
            lines = _LINE_RE.findall(block.decode(self.encoding, "surrogateescape"))
            self.kept.append((self.next_no, lines))
            self.next_no += len(lines)
            self.pending_bytes += len(block)
            yield lines

    def lines(self, first: int, last: int) -> list[str]:
        out: list[str] = []
        for start, lines in self.kept:
            lo, hi = max(first, start), min(last, start + len(lines) - 1)
            if lo <= hi:
                out += lines[lo - start:hi - start + 1]
        return out

    def forget_before(self, line_no: int) -> None:
        while len(self.kept) > 1 and self.kept[0][0] + len(self.kept[0][1]) <= line_no:
            self.kept.popleft()


def _csv_batches(path_hint: str, blocks: _LineBlocks, encoding: str, clean: bool,
                 columns: tuple[str, ...], info: FileInfo, batch_rows: int) -> Iterator[ParsedFile]:
    src = _TextLines(blocks, encoding)
    reader = csv.reader(src.iter)
    try:
        header_fields = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise LandingFileError(f"{path_hint}the header row cannot be read ({exc})") from exc
    header = [h.strip().lstrip("\ufeff").lower() for h in header_fields]
    _check_header(path_hint, header, columns, "".join(src.lines(1, reader.line_num)).rstrip("\r\n"))
    info.notes += _header_notes(header, columns)
    index = [(c, header.index(c)) if c in header else (c, None) for c in columns]
    n_fields = len(header)
    base = 0                  # physical lines read before the current reader started
    prev = reader.line_num    # physical lines consumed up to the last record
    row_no = 0
    out = _batch(columns, info)
    overlong = blocks.overlong
    while True:
        try:
            record = next(reader)
            error = None
        except StopIteration:
            break
        except csv.Error as exc:
            record, error = None, exc
        start, end = prev + 1, base + reader.line_num  # this record's physical lines
        if end > start and (error is not None or len(record) != n_fields):
            # A quote that opens a field and never closes on its line swallows the lines after it
            # (~500 records until the field size limit). Refuse that line alone and read the lines
            # after it again, so they load and keep their own row numbers.
            row_no += 1
            _append_bad(out, row_no, src.lines(start, start)[0].rstrip("\r\n"), "malformed_row",
                        "a field opened with a quote (\") does not close on this line")
            reader = csv.reader(chain(src.lines(start + 1, end), src.iter))
            base = prev = start
            continue
        prev = end
        first_no, block = src.kept[-1]  # the block holding the newest line read, nearly always all of it
        if start >= first_no:
            raw = block[start - first_no] if start == end else "".join(block[start - first_no:end - first_no + 1])
        else:
            raw = "".join(src.lines(start, end))
        if len(src.kept) > 2:
            src.forget_before(start)
        if error is not None:
            row_no += 1
            _append_bad(out, row_no, raw.rstrip("\r\n"), "malformed_row", f"CSV syntax error: {error}")
            continue
        if not record or (len(record) == 1 and not record[0].strip()):
            continue  # blank line: not a row
        row_no += 1
        raw_clean = raw.rstrip("\r\n")
        if overlong and any(n in overlong for n in range(start, end + 1)):
            n = next(overlong[n] for n in range(start, end + 1) if n in overlong)
            _append_bad(out, row_no, raw_clean, "malformed_row", _overlong_detail(n))
        elif not clean and _SURROGATE_RE.search(raw):
            _append_bad(out, row_no, raw_clean, "bad_encoding", f"bytes that are not valid {encoding} text")
        elif len(record) != n_fields:
            _append_bad(out, row_no, raw_clean, "malformed_row",
                        f"{len(record)} fields where the header has {n_fields}")
        else:
            out.row_numbers.append(row_no)
            out.raw_text.append(raw_clean)
            out.pre_rule.append(None)
            out.pre_detail.append(None)
            for c, i in index:
                v = record[i].strip() if i is not None else ""
                out.values[c].append(v if v != "" else None)
        if len(out.row_numbers) >= batch_rows or src.pending_bytes >= BATCH_BYTES:
            yield out
            out = _batch(columns, info)
            src.pending_bytes = 0
    if out.row_numbers:
        yield out


# ---------------------------------------------------------------------------------------------
# JSON lines

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


class _Duplicated(dict):
    """An object whose text names a key twice (json keeps the last; which one is meant is unknown)."""

    __slots__ = ("keys_twice",)


def _object_pairs(pairs: list) -> dict:
    d = dict(pairs)
    if len(d) == len(pairs):
        return d
    dup = _Duplicated(d)
    seen: set = set()
    dup.keys_twice = sorted({k for k, _ in pairs if k in seen or seen.add(k)})
    return dup


_decode_json = json.JSONDecoder(object_pairs_hook=_object_pairs).decode
_ABSENT = object()


def _plan(keys: tuple, columns: tuple[str, ...], seen_keys: set[str]) -> tuple[tuple, str]:
    """For each column the key of a line that fills it, and what is wrong when two keys of the
    line (spelled apart only by case or spaces) name the same column."""
    normalised: dict[str, list] = {}
    for k in keys:
        normalised.setdefault(str(k).strip().lower(), []).append(k)
    seen_keys.update(normalised)
    twice = [n for n in columns if len(normalised.get(n, ())) > 1]
    problem = "; ".join(f"keys {' and '.join(map(repr, normalised[n]))} both name column {n}" for n in twice)
    return tuple(normalised[c][0] if c in normalised else _ABSENT for c in columns), problem


def _not_an_object(obj) -> str:
    if type(obj) is _Duplicated:
        return f"key {', '.join(map(repr, obj.keys_twice))} appears more than once in the object"
    return "a JSON line must be an object"


def _drop_partial(out: ParsedFile) -> None:
    """Forget the values a line appended before it turned out to be bad."""
    n = len(out.row_numbers)
    for values in out.values.values():
        del values[n:]


def _jsonl_batches(blocks: _LineBlocks, columns: tuple[str, ...], info: FileInfo,
                   batch_rows: int, seen_keys: set[str] | None = None) -> Iterator[ParsedFile]:
    """One JSON object per line; keys are matched like CSV headers (trimmed, lower case), values
    become text (`_json_text`). A key given twice, or two keys naming one column, refuse the line.

    This loop is most of an events file's ingest time (~8 us of ~15 us per row at L's sizes,
    benchmarks/profile_costs.py), so it works out the key -> column mapping once per distinct key
    order instead of normalising every row's keys, and takes plain strings on a short path."""
    info.encoding = "utf-8"
    seen_keys = set() if seen_keys is None else seen_keys  # given: keys the fast reader has seen
    plans: dict[tuple, tuple] = {}  # a line's keys in order -> for each column, the key it reads
    decode, decode_error = _decode_json, ValueError
    out = _batch(columns, info)
    line_no = 0
    first = True
    overlong = blocks.overlong
    for block in blocks:
        if first and block.startswith(codecs.BOM_UTF8):
            block = block[len(codecs.BOM_UTF8):]
        first = False
        parts = block.split(b"\n")
        if block.endswith(b"\n"):
            parts.pop()
        row_numbers, raw_text = out.row_numbers.append, out.raw_text.append
        pre_rule, pre_detail = out.pre_rule.append, out.pre_detail.append
        appenders = [out.values[c].append for c in columns]
        for line in parts:
            line_no += 1
            if not line.strip():
                continue
            try:
                text = line.decode("utf-8").rstrip("\r")
            except UnicodeDecodeError:
                _append_bad(out, line_no, line.decode("utf-8", "surrogateescape").rstrip("\r"),
                            "bad_encoding", "bytes that are not valid utf-8 text")
                continue
            try:
                obj = decode(text)
                if type(obj) is not dict:
                    _append_bad(out, line_no, text, "malformed_row", _not_an_object(obj))
                    continue
                # json turns a lone "\ud800" escape into a str that Arrow and DuckDB cannot hold
                if ("\\ud" in text or "\\uD" in text) and _LONE_SURROGATE_RE.search(
                        json.dumps(obj, ensure_ascii=False)):
                    _append_bad(out, line_no, text, "bad_encoding",
                                "a \\uXXXX escape of half a character (a lone surrogate), which is not text")
                    continue
                keys = tuple(obj)
                plan = plans.get(keys)
                if plan is None:
                    plan = _plan(keys, columns, seen_keys)
                    if len(plans) < 10_000:  # a file whose every line orders its keys differently: stop caching
                        plans[keys] = plan
                if plan[1]:
                    _append_bad(out, line_no, text, "malformed_row", plan[1])
                    continue
                for append, k in zip(appenders, plan[0]):
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
            except decode_error as exc:  # JSONDecodeError, or an integer of over 4,300 digits
                _drop_partial(out)
                _append_bad(out, line_no, text, "malformed_row",
                            _overlong_detail(overlong[line_no]) if line_no in overlong
                            else f"not valid JSON: {getattr(exc, 'msg', exc)}")
                continue
            except RecursionError:
                _drop_partial(out)
                _append_bad(out, line_no, text[:_KEPT_OF_LONG_LINE], "malformed_row",
                            "JSON nested too deeply to be read")
                continue
            row_numbers(line_no)
            raw_text(text)
            pre_rule(None)
            pre_detail(None)
        if len(out.row_numbers) >= batch_rows:
            yield out
            out = _batch(columns, info)
    extra = sorted(seen_keys - set(columns))
    if extra:
        info.notes.append(f"keys not in the contract (ignored): {', '.join(extra)}")
    if out.row_numbers:
        yield out


# ---------------------------------------------------------------------------------------------
# Parquet

def _parquet_batches(path_hint: str, open_file: Callable[[], IO[bytes]], columns: tuple[str, ...],
                     info: FileInfo, limits: Limits, batch_rows: int) -> Iterator[ParsedFile]:
    with open_file() as fobj:
        yield from _parquet_rows(path_hint, fobj, columns, info, limits, batch_rows)


def _parquet_opened(path_hint: str, fobj: IO[bytes], columns: tuple[str, ...], info: FileInfo,
                    limits: Limits):
    """The file's ParquetFile and its column names (stripped, lower case), once its size and header
    are judged as the contract says; both readers start here."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    info.encoding = "parquet"
    try:
        pf = pq.ParquetFile(fobj)
        meta = pf.metadata
        size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        names = [n.strip().lower() for n in pf.schema_arrow.names]
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise LandingFileError(f"{path_hint}not a readable Parquet file ({exc})") from exc
    if size > limits.max_bytes:
        raise LandingFileError(f"{path_hint}its row groups hold {_mb(size)} uncompressed, over "
                               f"{_mb(limits.max_bytes)} (EW_MAX_FILE_MB): refused")
    _check_header(path_hint, names, columns, ", ".join(names))
    info.notes += _header_notes(names, columns)
    return pf, names


# Text as DuckDB prints it: a float32 19.9 stays "19.9" (Python would say 19.899999618530273),
# timestamps keep their offset ("+00"). Both readers cast each column so.
def _as_text_sql(n_columns: int, also: str = "") -> str:
    return ("select " + ", ".join(f"cast(c{i} as varchar) as c{i}" for i in range(n_columns)) + also
            + " from batch")


def _parquet_row_text(names: list[str], row: tuple) -> str:
    """A Parquet row's raw text: its values (as DuckDB prints them) under the file's column names."""
    return json.dumps(dict(zip(names, row)), ensure_ascii=False, default=str)


def _parquet_rows(path_hint: str, fobj: IO[bytes], columns: tuple[str, ...], info: FileInfo,
                  limits: Limits, batch_rows: int) -> Iterator[ParsedFile]:
    import duckdb
    import pyarrow as pa

    pf, names = _parquet_opened(path_hint, fobj, columns, info, limits)
    index = {n: i for i, n in enumerate(names) if n in columns}
    positional = [f"c{i}" for i in range(len(names))]
    select = _as_text_sql(len(names))
    con = duckdb.connect()
    row_no = 0
    try:
        con.execute("set TimeZone = 'UTC'")
        for record_batch in pf.iter_batches(batch_size=batch_rows):
            con.register("batch", pa.Table.from_batches([record_batch]).rename_columns(positional))
            rows = con.execute(select).fetchall()
            con.unregister("batch")
            out = _batch(columns, info)
            for row in rows:
                row_no += 1
                out.row_numbers.append(row_no)
                out.raw_text.append(_parquet_row_text(names, row))
                out.pre_rule.append(None)
                out.pre_detail.append(None)
                for c in columns:
                    i = index.get(c)
                    out.values[c].append(_json_text(row[i]) if i is not None else None)
            yield out
    except (pa.ArrowException, OSError, duckdb.Error) as exc:
        raise LandingFileError(f"{path_hint}not a readable Parquet file ({exc})") from exc
    finally:
        con.close()


@functools.cache
def _py_whitespace() -> str:
    """What str.strip() strips: the exact reader strips each value so; the fast one trims these in SQL.
    Found once, when a Parquet file is first read (51 ms: not a cost of every process that imports this)."""
    return "".join(c for c in map(chr, range(0x110000)) if c.isspace())


def parquet_into_landed(con, lf: LandedFile, f: OpenedFile, columns: tuple[str, ...], limits: Limits,
                        info: FileInfo, batch_rows: int = 1_000_000) -> int:
    """The fast reader of a Parquet file: each batch of rows into the temp table `landed` of `con`, made
    text in SQL (cast, stripped, empty as null: what the exact reader's Python does value by value) in
    a connection of its own, as the exact reader does, so a value DuckDB cannot read refuses the file
    without touching `con`'s transaction. No raw text: parquet_raw_texts gives it for the refused
    rows. Returns the rows read."""
    import duckdb
    import numpy as np
    import pyarrow as pa

    hint = f"{lf.path}: " if lf.source else ""
    with f.file() as fobj:
        pf, names = _parquet_opened(hint, fobj, columns, info, limits)
        index = {n: i for i, n in enumerate(names) if n in columns}
        positional = [f"c{i}" for i in range(len(names))]
        # trim() with a set of characters costs ~10x a plain cast (0.14 s against 0.015 s for an L file's
        # 18k rows): only a value that starts or ends with one of them, or is empty, goes through it
        ws = "'" + _py_whitespace().replace("'", "''") + "'"

        def text(i: int) -> str:
            v = f"c{i}"
            return (f"nullif(case when contains({ws}, left({v}, 1)) or contains({ws}, right({v}, 1)) "
                    f"then trim({v}, {ws}) else {v} end, '')")

        select = ("select " + ", ".join(f"{text(index[c])} as {c}" if c in index else f"cast(null as varchar) as {c}"
                                        for c in columns)
                  + f", _row from ({_as_text_sql(len(names), also=', _row')})")
        n = 0
        with duckdb.connect() as scratch:
            scratch.execute("set TimeZone = 'UTC'")
            batches = pf.iter_batches(batch_size=batch_rows)
            while True:
                try:
                    record_batch = next(batches, None)
                    if record_batch is None:
                        break
                    table = pa.Table.from_batches([record_batch]).rename_columns(positional)
                    rows = np.arange(n + 1, n + table.num_rows + 1, dtype=np.int64)
                    table = table.append_column("_row", pa.array(rows))
                    scratch.register("batch", table)
                    text = scratch.sql(select).to_arrow_table()
                    scratch.unregister("batch")
                except (pa.ArrowException, OSError, duckdb.Error) as exc:
                    raise LandingFileError(f"{hint}not a readable Parquet file ({exc})") from exc
                con.register("_parquet_text", text)
                try:
                    con.execute("insert into landed select *, null, null, null from _parquet_text")
                finally:
                    con.unregister("_parquet_text")
                n += table.num_rows
    return n


def parquet_raw_texts(f: OpenedFile, rows: list[int]) -> list[str]:
    """The raw text of the given rows (1-based) of a Parquet file, as the exact reader writes it."""
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    with f.file() as fobj:
        pf = pq.ParquetFile(fobj)
        names = [n.strip().lower() for n in pf.schema_arrow.names]
        table = pf.read().rename_columns([f"c{i}" for i in range(len(names))])
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        con.register("batch", table.take(pa.array([r - 1 for r in rows], pa.int64())))
        return [_parquet_row_text(names, row) for row in con.execute(_as_text_sql(len(names))).fetchall()]


# ---------------------------------------------------------------------------------------------

def read_batches(lf: LandedFile, f: OpenedFile | BytesFile, size: int, limits: Limits = Limits(),
                 batch_rows: int = BATCH_ROWS,
                 columns: tuple[str, ...] | None = None) -> tuple[FileInfo, Iterator[ParsedFile]]:
    """A file's rows in batches, read as a stream (`size`: the file's size on disk). The file is
    unreadable (LandingFileError) from the call or from any batch; FileInfo is complete once the
    batches are consumed."""
    columns = columns or SOURCES[lf.source].column_names
    info = FileInfo()
    hint = f"{lf.path}: " if lf.source else ""
    if lf.ext == "parquet":
        return info, _parquet_batches(hint, f.file, columns, info, limits, batch_rows)
    if lf.ext == "jsonl":
        blocks = _LineBlocks(decompressed(lf, f.chunks(), size, limits))
        return info, _jsonl_batches(blocks, columns, info, batch_rows)
    # CSV: a first pass decides the encoding (and finds a cut or oversized gzip stream before
    # anything is loaded); the second parses.
    encoding, clean = detect_encoding(_LineBlocks(decompressed(lf, f.chunks(), size, limits)),
                                      _LineBlocks(decompressed(lf, f.chunks(), size, limits)))
    info.encoding = encoding
    blocks = _LineBlocks(decompressed(lf, f.chunks(), size, limits))
    return info, _csv_batches(hint, blocks, encoding, clean, columns, info, batch_rows)


def jsonl_lines(lines: list[bytes], columns: tuple[str, ...], info: FileInfo,
                seen_keys: set[str]) -> Iterator[ParsedFile]:
    """Lines of a JSON-lines file that the fast reader (fast_jsonl.py) leaves to this one, in file
    order, none blank: their rows are numbered 1.. in the order given. The note on keys not in the
    contract covers `seen_keys` too."""
    data = b"\n".join(lines) + b"\n" if lines else b""
    return _jsonl_batches(_LineBlocks([data]), columns, info, BATCH_ROWS, seen_keys)


def _whole(info: FileInfo, batches: Iterable[ParsedFile], columns: tuple[str, ...]) -> ParsedFile:
    out = ParsedFile(columns, {c: [] for c in columns}, [], [], [], [], "")
    for b in batches:
        out.row_numbers += b.row_numbers
        out.raw_text += b.raw_text
        out.pre_rule += b.pre_rule
        out.pre_detail += b.pre_detail
        for c in columns:
            out.values[c] += b.values[c]
    out.encoding, out.notes = info.encoding, info.notes
    return out


def parse(lf: LandedFile, data: bytes, limits: Limits = Limits()) -> ParsedFile:
    """A whole landed file held in memory (its bytes as landed, compressed or not) as one ParsedFile."""
    return _whole(*read_batches(lf, BytesFile(data), len(data), limits), SOURCES[lf.source].column_names)


def _parse_text(ext: str, data: bytes, columns: tuple[str, ...]) -> ParsedFile:
    lf = LandedFile(Path(f"in_memory.{ext}"), "", date.min, ext)
    return _whole(*read_batches(lf, BytesFile(data), len(data), columns=columns), columns)


def parse_csv(data: bytes, columns: tuple[str, ...]) -> ParsedFile:
    """CSV bytes held in memory, for any columns, as one ParsedFile (tests of the parser)."""
    return _parse_text("csv", data, columns)


def parse_jsonl(data: bytes, columns: tuple[str, ...]) -> ParsedFile:
    """JSON-lines bytes held in memory, for any columns, as one ParsedFile (tests of the parser)."""
    return _parse_text("jsonl", data, columns)


__all__ = [
    "LandedFile", "ParsedFile", "FileInfo", "Limits", "LandingFileError", "FileChanged", "OpenedFile",
    "BytesFile", "parse_file_name", "discover", "survey", "done_marker_ns", "content_hash", "decompressed",
    "detect_encoding", "read_batches", "parse", "parse_csv", "parse_jsonl", "printable",
    "DONE_SUFFIX",
]
