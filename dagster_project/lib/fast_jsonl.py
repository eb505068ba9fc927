"""JSON-lines files read by DuckDB's vectorised `read_json`, exactly as the exact reader (landing.py) reads them.

The exact reader decodes every line in Python (~8 us of an events row's ~16 us at L's sizes); DuckDB
parses the whole file once, on every core. What DuckDB would judge differently from the contract is
found cheaply and sent, line by line, to the exact reader:

- while the file's bytes are hashed (they are read for that anyway), numpy finds the line ends and the
  few byte patterns DuckDB reads more leniently than Python's json: a comma or whitespace before a
  closing bracket (a trailing comma), a comment, a control character, a `\\u` escape (half a
  character); and the lines that may be blank, which both readers skip but which keep their numbers;
- DuckDB reads each line as JSON (`ignore_errors`: a line it cannot parse, e.g. broken bytes or a cut
  object, becomes a NULL in its place, so the n-th row is the n-th non-blank line), and a line whose
  keys are not exactly the file's usual ones (a key twice, a key in another case, a key missing or
  added) or whose values are not all strings or nulls (numbers, objects: their text is the exact
  reader's) goes to the exact reader with its own line number.

A file where that cannot hold (a byte-order mark, no line with the contract's keys, a line longer
than landing.MAX_LINE_BYTES, a line DuckDB counts differently) is read by the exact reader whole.
The raw text of a refused row is read back from the file by its byte offset.
"""

from __future__ import annotations

import codecs
import functools
import os
from typing import Iterable, Iterator

import duckdb
import numpy as np
import pyarrow as pa

from dagster_project.lib import landing

_NL, _CR, _BACKSLASH = 10, 13, 92


# Python's str.strip() removes Unicode whitespace (landing._py_whitespace), DuckDB's trim() only
# spaces; trimming a set of characters is slow in DuckDB (~17 us/row), so only values with one at an
# edge are trimmed. Both SQL texts are made on first use, not at import (the set is found by testing
# all 1.1M code points: ~50 ms for every process that imports the loader).
@functools.cache
def _ws() -> str:
    """The characters str.strip() removes, as a SQL string literal for trim()."""
    return "'" + landing._py_whitespace() + "'"


@functools.cache
def _edge_space() -> str:
    """A regular expression (SQL literal) for a value that starts or ends with one of them."""
    cls = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in landing._py_whitespace()) + "]"
    return f"'^{cls}|{cls}$'"


class LineScan:
    """Line ends and odd lines of a JSON-lines file, found while its bytes stream past (`feed`)."""

    def __init__(self) -> None:
        self._ends: list[np.ndarray] = []
        self._odd: list[np.ndarray] = []      # byte positions that make their line go to the exact reader
        self._maybe_blank: list[np.ndarray] = []
        self.size = 0
        self.bom = False
        self._last = _NL                      # the byte before the current chunk (a file starts a line)
        self._last2 = _NL                     # ... and the one before that

    def feed(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            if self.size == 0:
                self.bom = chunk.startswith(codecs.BOM_UTF8)
            self._scan(chunk)
            yield chunk

    def _scan(self, chunk: bytes) -> None:
        cur = np.frombuffer(chunk, dtype=np.uint8)
        n = len(cur)
        if not n:
            return
        ext = np.empty(n + 2, dtype=np.uint8)  # two bytes of the previous chunk, then this one
        ext[0], ext[1], ext[2:] = self._last2, self._last, cur
        self._scan_odd(cur, ext)
        self._last2, self._last = int(ext[-2]), int(ext[-1])
        self.size += n

    def _blank_candidates(self, cur: np.ndarray, ends: np.ndarray) -> None:
        starts = np.concatenate(([0] if self._last == _NL else [], ends + 1)).astype(np.int64)
        starts = starts[starts < len(cur)]
        first = cur[starts]
        self._maybe_blank.append(starts[(first <= 32) & ((first == 32) | (first >= 9) & (first <= 13))] + self.size)

    def _scan_odd(self, cur: np.ndarray, ext: np.ndarray) -> None:
        """Line ends, lines that may be blank and odd bytes of one chunk. Each test looks only at
        the positions of one byte and at its neighbours: boolean arrays over every byte for each
        test cost ~3 us per events row, more than DuckDB's parse."""
        n = len(cur)

        def prev(pos, k=1):
            return ext[pos + 2 - k]

        def nxt(pos):  # the byte after pos, or 0 (unknown: odd) at the chunk's end
            return np.where(pos + 1 < n, cur[np.minimum(pos + 1, n - 1)], 0)

        base = self.size
        ctrl = np.flatnonzero(cur < 32)
        kind = cur[ctrl]
        ends = ctrl[kind == _NL]
        self._ends.append(ends + base)
        cr = ctrl[kind == _CR]
        odd = [ctrl[(kind != _NL) & (kind != _CR)],  # a control character (inside a string: json refuses it)
               cr[nxt(cr) != _NL]]                   # a carriage return counts only as CRLF, where both drop it
        self._blank_candidates(cur, ends)
        closers = np.flatnonzero((cur == ord("}")) | (cur == ord("]")))
        before = prev(closers)
        odd.append(closers[(before == ord(",")) | (before == 32) | (before == 9) | (before == _CR)])  # a trailing comma
        slash = np.flatnonzero(cur == ord("/"))
        after = nxt(slash)
        odd.append(slash[(after == ord("*")) | (after == ord("/")) | (after == 0)])  # a comment
        backslash = np.flatnonzero(cur == _BACKSLASH)
        after = nxt(backslash)
        odd.append(backslash[(after == ord("u")) | (after == 0)])  # a \\u escape
        # A value that is not a string or null (a number, true, an object): its text is the exact
        # reader's. It follows a key's closing quote and colon, `":`, that is not an escaped quote
        # inside a string (`\\":`); whitespace after the colon also lands here.
        colon = np.flatnonzero(cur == ord(":"))
        colon = colon[prev(colon) == ord('"')]
        after = nxt(colon)
        odd.append(colon[(prev(colon, 2) != _BACKSLASH) & (after != ord('"')) & (after != ord("n"))])
        self._odd.append(np.concatenate(odd) + base)

    def lines(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(start, end) byte offsets of every line (numbered from 1 by position), whether each has
        an odd byte, and the numbers of the lines that may be blank."""
        ends = np.concatenate(self._ends) if self._ends else np.zeros(0, dtype=np.int64)
        last_end = ends[-1] + 1 if len(ends) else 0
        if last_end < self.size:  # a last line without a newline
            ends = np.append(ends, self.size)
        starts = np.empty_like(ends)
        if len(ends):
            starts[0] = 0
            starts[1:] = ends[:-1] + 1
        odd_pos = np.concatenate(self._odd) if self._odd else np.zeros(0, dtype=np.int64)
        odd = np.zeros(len(ends), dtype=bool)
        odd[np.searchsorted(ends, odd_pos)] = True
        maybe = np.concatenate(self._maybe_blank) if self._maybe_blank else np.zeros(0, dtype=np.int64)
        return starts, ends, odd, np.searchsorted(ends, maybe)


def _canonical_keys(head: bytes, columns: tuple[str, ...]) -> tuple[str, ...] | None:
    """The keys of the file's first line that names each contract column plainly (exact spelling,
    once), in order: the lines DuckDB reads fast are the ones with exactly these keys."""
    import json

    for line in head.split(b"\n")[:-1][:100]:
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if not isinstance(obj, dict) or not obj:
            continue
        pairs = json.loads(line, object_pairs_hook=list)
        keys = tuple(k for k, _ in pairs)
        if len(set(keys)) != len(keys) or any(k != k.strip().lower() for k in keys):
            continue
        if any(k in columns for k in keys):
            return keys
    return None


VIEW = "_fast_landed"


class Declined(Exception):
    """The file cannot be read fast (the reason says why); the exact reader reads it whole."""


def load(con: duckdb.DuckDBPyConnection, f: landing.OpenedFile, scan: LineScan, columns: tuple[str, ...],
         landed_table: str, max_line_bytes: int) -> tuple[int, tuple[str, ...], list[int]]:
    """Make the view VIEW: the rows of `landed_table` (the loader's text table, which the caller fills
    with the lines left to the exact reader) and those DuckDB reads as the exact reader would. A
    view, not an insert: the validation reads the rows once, and a copy cost ~2 us/row. Returns
    (non-blank lines, the keys of a plain line, numbers of the lines left to the exact reader).
    Raises Declined before writing anything when the file is not one for the fast path; the
    caller drops the view and `_fast_rows` once it has read them (`drop`)."""
    if scan.bom:
        raise Declined("a byte-order mark")
    starts, ends, odd, maybe_blank = scan.lines()
    if len(ends) and int((ends - starts).max()) > max_line_bytes:
        raise Declined("a line longer than a line may hold")
    keep = np.ones(len(ends), dtype=bool)
    for i in maybe_blank.tolist():
        line = os.pread(f.fd, int(ends[i] - starts[i]), int(starts[i]))
        if not line.strip():
            if line.strip(b" \t\r"):
                raise Declined("a blank line DuckDB does not take as blank")
            keep[i] = False
    canonical = _canonical_keys(f.head(1 << 20), columns)
    if canonical is None:
        raise Declined("no line in the file's first MB names the contract's columns plainly")
    row = np.flatnonzero(keep) + 1
    if len(row) and np.count_nonzero(odd[keep]) * 2 > len(row):
        # e.g. `"key": "value"` with a space after each colon: DuckDB's scans would be paid on top
        raise Declined("most lines need the exact reader")
    linemap = pa.table({"_row": pa.array(row, pa.int64()), "_start": pa.array(starts[keep], pa.int64()),
                        "_len": pa.array(ends[keep] - starts[keep], pa.int64()),
                        "_odd": pa.array(odd[keep], pa.bool_())})
    path = f"/dev/fd/{f.fd}"  # the file already opened (O_NOFOLLOW, checked regular), not its name again
    opts = f"format = 'newline_delimited', ignore_errors = true, maximum_object_size = {max(max_line_bytes, 1 << 20)}"
    as_text = "{" + ", ".join(f"{landing_sql_literal(k)}: 'VARCHAR'" for k in canonical if k in columns) + "}"
    con.register("_fast_map", linemap)
    con.execute("create or replace temp table _fast_linemap as select * from _fast_map")
    con.unregister("_fast_map")
    keys = "[" + ", ".join(landing_sql_literal(k) for k in canonical) + "]"
    try:
        # one scan for the values (DuckDB unescapes the strings), one for each line's keys; both
        # give one row per non-blank line, in order (a line DuckDB cannot parse gives NULLs)
        con.execute(f"""
            create or replace temp table _fast_rows as
            select m._row, m._odd or k.k is null or k.k <> {keys} as _odd, k._kseen, v.*
            from _fast_linemap m
            positional join (select true as _kseen, json_keys(j) as k from read_json(?, {opts}, records = false,
                                                                                      columns = {{'j': 'JSON'}})) k
            positional join (select true as _vseen, * from read_json(?, {opts}, columns = {as_text})) v""",
                    [path, path])
    except duckdb.Error as exc:
        con.execute("drop table _fast_linemap")
        raise Declined(f"DuckDB's reader refused it ({str(exc).splitlines()[0][:200]})") from exc
    ((total, mapped, keyed, valued),) = con.execute(
        "select count(*), count(_row), count(_kseen), count(_vseen) from _fast_rows").fetchall()
    if not total == mapped == keyed == valued == len(row):
        con.execute("drop table _fast_rows")
        con.execute("drop table _fast_linemap")
        raise Declined(f"DuckDB read {max(keyed, valued):,} lines where there are {len(row):,}")
    texts = []
    for c in columns:
        if c not in canonical:
            texts.append(f"null::varchar as {c}")
            continue
        q = _ident(c)
        texts.append(f"case when regexp_matches({q}, {_edge_space()}) then nullif(trim({q}, {_ws()}), '') "
                     f"else nullif({q}, '') end as {c}")
    con.execute(f"create or replace temp view {VIEW} as select {', '.join(texts)}, _row, null::varchar as _raw_text, "
                f"null::varchar as _pre_rule, null::varchar as _pre_detail from _fast_rows where not _odd "
                f"union all select {', '.join(columns)}, _row, _raw_text, _pre_rule, _pre_detail from {landed_table}")
    exact_rows = [r for (r,) in con.execute("select _row from _fast_rows where _odd order by _row").fetchall()]
    return len(row), canonical, exact_rows


def drop(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"drop view {VIEW}")
    con.execute("drop table _fast_rows")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def exact_lines(f: landing.OpenedFile, con: duckdb.DuckDBPyConnection, rows: list[int]) -> list[bytes]:
    """The bytes of the given lines (without their newline), read back by offset."""
    if not rows:
        return []
    con.register("_want", pa.table({"_row": pa.array(rows, pa.int64())}))
    spans = con.execute("select _start, _len from _fast_linemap semi join _want using (_row) "
                        "order by _row").fetchall()
    con.unregister("_want")
    return [os.pread(f.fd, n, start) for start, n in spans]


def landing_sql_literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"
