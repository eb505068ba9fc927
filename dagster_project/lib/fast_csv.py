"""CSV files split into rows and fields by DuckDB, exactly as the exact reader (landing.py) reads them.

The exact reader runs Python's csv module over every line (the bulk of a CSV row's cost: orders,
order lines, users, returns, member and WeCom events are CSV). In the common case a CSV line is one
record whose fields are its comma-separated parts, and DuckDB can split it as well as Python can.
What the exact reader would judge differently is found cheaply and sent, line by line, to it:

- the file's text is held in memory as UTF-8 (clean UTF-8 as landed, with or without a byte-order
  mark, or a clean GB18030/GBK file re-encoded); a file with broken bytes, or larger than
  MAX_FAST_BYTES decompressed, is read by the exact reader whole, as before;
- numpy finds the line ends (only \\n ends a line, as for the exact reader) and the lines that are
  not plain: a quote character (quoted fields, escaped quotes) or a control character other than a
  tab and a carriage return before the line end. Those lines go to the exact reader with their own
  row numbers, after checking that each is a whole record on its own line (a quoted field that
  runs onto the next line makes the exact reader read the file whole);
- lines with no comma are the only ones that can be blank (skipped, and not numbered, by both
  readers): Python decides which are;
- DuckDB splits every plain line on its commas: a line with another number of fields than the
  header is malformed_row, said as the exact reader says it; values are stripped of whitespace as
  Python's str.strip() strips them, and empty ones are NULL.

The header is read by the exact reader's own rules (landing._check_header and its notes). The rows
reach the validation through the view VIEW, as the fast JSON-lines reader's do (fast_jsonl.py).
"""

from __future__ import annotations

import codecs
import csv
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pyarrow as pa

from dagster_project.lib import landing
from dagster_project.lib.fast_jsonl import VIEW, Declined, _edge_space, _ident, _ws

if TYPE_CHECKING:
    from dagster_project.lib.landing import FileInfo, LandedFile, Limits, OpenedFile

MAX_FAST_BYTES = 256 << 20  # a larger file (decompressed) streams through the exact reader (~8x in memory)
_NL, _CR, _TAB, _QUOTE, _COMMA = 10, 13, 9, 34, 44
_SPACE_LUT = np.zeros(256, dtype=bool)
_SPACE_LUT[[9, 11, 12, 28, 29, 30, 31, 32, 0xC2, 0xE1, 0xE2, 0xE3]] = True
_LINES = "_fast_csv_lines"


def _text_bytes(data: bytes) -> tuple[bytes, str, bool]:
    """The file's bytes as UTF-8 without a byte-order mark, its encoding as the exact reader names it,
    and whether they are clean (a UTF-8 file with a few broken bytes is not: the exact reader refuses
    its broken lines one by one as bad_encoding, and so do the lines left to it here)."""
    try:
        decoder = codecs.getincrementaldecoder("utf-8")()  # checked in slices: no str of the whole file
        view = memoryview(data)
        for i in range(0, len(data), 16 << 20):
            decoder.decode(view[i:i + (16 << 20)])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        encoding, clean = landing.detect_encoding([data], [data])
        if encoding in ("utf-8", "utf-8-sig") and not clean:
            bom = encoding == "utf-8-sig" and data.startswith(codecs.BOM_UTF8)
            return (data[len(codecs.BOM_UTF8):] if bom else data), encoding, False
        return _gb18030_as_utf8(data, encoding, clean), "gb18030", True
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):], "utf-8-sig", True
    return data, "utf-8", True


def _broken_lines(data: bytes, starts: np.ndarray, ends: np.ndarray) -> list[int]:
    """The lines that are not valid UTF-8, decoding ~1 MB of whole lines at a time and line by line
    only where that fails (a file has a few)."""
    broken, i = [], 0
    while i < len(ends):
        j = max(i, min(int(np.searchsorted(ends, starts[i] + (1 << 20))), len(ends) - 1))
        try:
            data[starts[i]:ends[j]].decode("utf-8")
        except UnicodeDecodeError:
            for k in range(i, j + 1):
                try:
                    data[starts[k]:ends[k]].decode("utf-8")
                except UnicodeDecodeError:
                    broken.append(k)
        i = j + 1
    return broken


def _gb18030_as_utf8(data: bytes, encoding: str, clean: bool) -> bytes:
    """A file that is not UTF-8, as UTF-8 when the exact reader reads it as clean GB18030."""
    if encoding != "gb18030" or not clean:
        raise Declined("bytes that are not clean GB18030 nor mostly UTF-8")
    # the exact reader measures a line in the file's own bytes: a GB18030 line may halve as UTF-8
    raw_ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == _NL)
    last = len(data) - 1 - (int(raw_ends[-1]) if len(raw_ends) else -1)  # the bytes after the last newline
    if max(last, int(np.diff(raw_ends, prepend=-1).max()) if len(raw_ends) else 0) > landing.MAX_LINE_BYTES:
        raise Declined("a line longer than a line may hold")
    return data.decode("gb18030").encode("utf-8")


def _one_record(text: str) -> tuple[list[str] | None, str | None]:
    """A line parsed alone by Python's csv module: (record, None), or (None, error). Declined when
    its record does not end on the line (a quoted field that opens and runs on)."""
    reader = csv.reader(iter([text + "\n", "x\n"]))
    try:
        record = next(reader)
    except csv.Error as exc:
        if reader.line_num > 1:
            raise Declined("a quoted field runs past its line") from None
        return None, str(exc)
    if reader.line_num > 1:
        raise Declined("a quoted field runs past its line")
    return record, None


def _is_blank(text: str) -> bool:
    """Whether the exact reader skips this line: no record, or one field of whitespace."""
    record, error = _one_record(text)
    return error is None and (not record or (len(record) == 1 and not record[0].strip()))


def load(con: duckdb.DuckDBPyConnection, lf: "LandedFile", f: "OpenedFile", size: int, limits: "Limits",
         columns: tuple[str, ...], info: "FileInfo") -> tuple[int, landing.ParsedFile | None]:
    """Make the view VIEW over the plain lines of a CSV file and the loader's text table `landed`,
    which the caller fills with the rows returned here: the other lines, read by the exact reader
    with their own row numbers. Returns (rows of the file, those rows). Raises Declined before
    writing anything when the file is not one for this reader, and LandingFileError when the exact
    reader would refuse it whole (its header, a cut or oversized gzip stream). The caller drops
    the view (`drop`) once the validation has read it."""
    parts, total = [], 0
    for chunk in landing.decompressed(lf, f.chunks(), size, limits):
        total += len(chunk)
        if total > MAX_FAST_BYTES:
            raise Declined(f"over {MAX_FAST_BYTES >> 20} MB")
        parts.append(chunk)
    data, info.encoding, clean = _text_bytes(b"".join(parts))
    del parts
    if not data.strip():
        raise Declined("no header")  # the exact reader says what an empty file is
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == _NL)
    if not len(ends) or ends[-1] != len(buf) - 1:
        ends = np.append(ends, len(buf))  # a last line without a newline
    starts = np.empty_like(ends)
    starts[0], starts[1:] = 0, ends[:-1] + 1
    lengths = ends - starts
    if int(lengths.max()) > landing.MAX_LINE_BYTES - (3 if info.encoding == "utf-8-sig" else 0):
        raise Declined("a line longer than a line may hold")

    broken = [] if clean else _broken_lines(data, starts, ends)
    if broken and broken[0] == 0:
        raise Declined("broken bytes in its header")
    header_text = data[:ends[0]].decode("utf-8").rstrip("\r")
    record, error = _one_record(header_text)
    if record is None:
        raise Declined(f"its header is not one CSV record ({error})")
    header = [h.strip().lstrip("\ufeff").lower() for h in record]
    landing._check_header(f"{lf.path}: ", header, columns, header_text)
    info.notes += landing._header_notes(header, columns)
    n_fields = len(header)

    def line_of(positions: np.ndarray) -> np.ndarray:
        return np.searchsorted(ends, positions)

    ctrl = np.flatnonzero(buf < 32)
    kind = buf[ctrl]
    after = buf[np.minimum(ctrl + 1, len(buf) - 1)]
    not_plain = ctrl[(kind != _NL) & (kind != _TAB) & ~((kind == _CR) & (after == _NL) & (ctrl + 1 < len(buf)))]
    odd = np.zeros(len(ends), dtype=bool)
    odd[line_of(not_plain)] = True
    odd[line_of(np.flatnonzero(buf == _QUOTE))] = True
    odd |= lengths > csv.field_size_limit()  # Python's csv refuses a longer field (a byte per character at most)
    commas_before = np.searchsorted(np.flatnonzero(buf == _COMMA), ends)  # commas before each line end
    commas = np.diff(commas_before, prepend=0)
    # A value can have whitespace at an edge only where a whitespace byte (ASCII's, or the lead byte
    # of a Unicode space: U+0085, U+00A0: C2; U+1680: E1; U+2000-U+205F: E2; U+3000: E3) follows a
    # comma or line start, or is within 3 bytes before a comma or line end. Other lines skip the
    # trimming, DuckDB's slowest step (a regular expression per value).
    spaced = np.zeros(len(ends), dtype=bool)
    pos = np.flatnonzero(_SPACE_LUT[buf])
    if len(pos):
        last = len(buf) - 1
        before = buf[np.maximum(pos - 1, 0)]
        edge = (pos == 0) | (before == _COMMA) | (before == _NL)
        for k in (1, 2, 3):
            after = buf[np.minimum(pos + k, last)]
            edge |= (pos + k > last) | (after == _COMMA) | (after == _NL) | (after == _CR)
        spaced[line_of(pos[edge])] = True
    odd[broken] = True  # refused as bad_encoding by the exact reader, one by one
    broken_set = set(broken)
    odd[0] = False
    keep = np.ones(len(ends), dtype=bool)
    keep[0] = False  # the header
    for i in np.flatnonzero(commas == 0).tolist():  # the only lines that may be blank
        if i and i not in broken_set and _is_blank(data[starts[i]:ends[i]].decode("utf-8")):
            keep[i] = False
    row = np.zeros(len(ends), dtype=np.int64)
    row[keep] = np.arange(1, int(keep.sum()) + 1)
    n_odd = int(np.count_nonzero(odd & keep))
    if n_odd > 1_000 and n_odd * 2 > int(keep.sum()):
        # an export that quotes every field: each line would be parsed by Python twice here (once to
        # check it ends on its line, once for its row), more than the exact reader's one pass (a small
        # file costs little either way)
        raise Declined("most lines need the exact reader")
    exact = []
    for i in np.flatnonzero(odd & keep).tolist():
        line = data[starts[i]:ends[i]]
        _one_record(line.decode("utf-8", "surrogateescape").rstrip("\r"))  # Declined when its record runs on
        exact.append((int(row[i]), line))
    exact_parsed = _exact_rows(exact, data[:ends[0]], columns, "utf-8" if clean else info.encoding, clean)
    plain = keep & ~odd
    if broken:  # the lines DuckDB is given must be text; the broken ones are the exact reader's
        text = bytearray(data)
        for k in broken:
            text[starts[k]:ends[k]] = b" " * int(ends[k] - starts[k])
        data = bytes(text)

    offsets = np.concatenate(([0], ends + 1)).astype(np.int64)
    offsets[-1] = len(buf)
    lines = pa.LargeStringArray.from_buffers(len(ends), pa.py_buffer(offsets), pa.py_buffer(data))
    con.register(_LINES, pa.table({"_row": pa.array(row), "_plain": pa.array(plain), "_spaced": pa.array(spaced),
                                   "_text": lines}))

    values = []
    for c in columns:
        if c not in header:
            values.append(f"null::varchar as {_ident(c)}")
            continue
        v = f"_f[{header.index(c) + 1}]"
        values.append(f"case when _spaced and regexp_matches({v}, {_edge_space()}) then nullif(trim({v}, {_ws()}), '') "
                      f"else nullif({v}, '') end as {_ident(c)}")
    good = f"len(_f) = {n_fields}"
    con.execute(f"""
        create or replace temp view {VIEW} as
        select {', '.join(f"case when {good} then {_ident(c)} end as {_ident(c)}" for c in columns)},
               _row, _raw_text,
               case when not {good} then 'malformed_row' end as _pre_rule,
               case when not {good} then len(_f) || ' fields where the header has {n_fields}' end as _pre_detail
        from (
            select {', '.join(values)}, _row, _raw_text, _f
            from (select _row, _spaced, rtrim(_text, chr(13) || chr(10)) as _raw_text,
                         string_split(rtrim(_text, chr(13) || chr(10)), ',') as _f
                  from {_LINES} where _plain)
        )
        union all select {', '.join(_ident(c) for c in columns)}, _row, _raw_text, _pre_rule, _pre_detail
        from landed""")
    return int(keep.sum()), exact_parsed


def _exact_rows(exact: list[tuple[int, bytes]], header_line: bytes, columns: tuple[str, ...],
                encoding: str, clean: bool) -> landing.ParsedFile | None:
    """The lines left to the exact reader, parsed by it (as UTF-8, after the file's header), with
    their own row numbers. Each is a whole record on its line, so together they make one row each."""
    if not exact:
        return None
    blocks = landing._LineBlocks([header_line + b"\n" + b"\n".join(line for _, line in exact) + b"\n"])
    scratch = landing.FileInfo()
    parsed = landing._whole(scratch, landing._csv_batches("", blocks, encoding, clean, columns,
                                                          scratch, landing.BATCH_ROWS), columns)
    if parsed.n_rows != len(exact):
        raise Declined(f"the exact reader made {parsed.n_rows} rows of {len(exact)} lines")
    parsed.row_numbers = [r for r, _ in exact]
    return parsed


def drop(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"drop view {VIEW}")
    con.unregister(_LINES)


__all__ = ["load", "drop", "Declined", "MAX_FAST_BYTES"]
