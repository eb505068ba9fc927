"""Loading landed files into raw.<source>: type, check against the contract, quarantine, atomically.

One file is one transaction: its good rows go to raw.<source>, its bad rows to raw.quarantine (with
file, row number, raw text, rule, column and a readable reason), and a record to raw._files; then
landed = loaded + quarantined is asserted before commit. An exception or a kill at any point
leaves nothing of the file behind. A file already loaded with the same content hash is skipped; a
file with a known name but new content (a corrected redelivery) replaces exactly that file's rows,
unless it cannot be read: then it is refused and the loaded version stays. A file is loaded only
once its writer has finished (a `.done` marker, or no change for EW_LANDING_SETTLE_S seconds).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import duckdb
import pyarrow as pa

from dagster_project.lib import fast_csv, fast_jsonl, landing, procs
from dagster_project.lib.contract import (
    AMOUNT, DATE, FILES_COLUMNS_ADDED, FILES_DDL, INT, MAX_INT, QUARANTINE_DDL, SOURCES, TS, TS_MAX, TS_MIN,
    Column, Source, raw_table_ddl,
)
from dagster_project.lib.transaction import transaction

# A UTC offset is -14:59..+14:59 at most (real ones run from -12:00 to +14:00): DuckDB would take
# "+99:99" or "+24:00" and shift the instant by days.
_OFFSET = r"(Z|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?)"
_ISO_TS = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?"
    rf"{_OFFSET}?$"
)
# An offset only counts after a time of day: the "-20" of a bare date "2026-05-20" is not one.
_HAS_OFFSET = rf"[0-9]{{2}}:[0-9]{{2}}(:[0-9]{{2}}(\.[0-9]+)?)?{_OFFSET}$"
_INT = r"^[+-]?[0-9]+$"
_AMOUNT = r"^[+-]?[0-9]+(\.[0-9]{1,2})?$"
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


class IngestError(RuntimeError):
    """A file could not be loaded; the message names the file and why. Nothing of it was kept."""


# ---------------------------------------------------------------------------------------------
# One writer at a time. Dagster runs writers in one pool of size 1; this lock also covers writers
# started outside Dagster (the CLI, a sensor-launched run next to `ecomwh run`).
_process_lock = threading.RLock()
_depth = 0
_lock_fd: int | None = None


@contextmanager
def writer_lock(lock_path: Path, timeout_s: float = 3600.0) -> Iterator[None]:
    """Exclusive, re-entrant (within a process) lock for writing the pipeline's DuckDB file."""
    global _depth, _lock_fd
    with _process_lock:
        if _depth == 0:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
            deadline = time.monotonic() + timeout_s
            waited = False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not waited:
                        procs.announce_lock_wait(lock_path, "the warehouse writer lock")
                        waited = True
                    if time.monotonic() > deadline:
                        os.close(fd)
                        raise IngestError(
                            f"another process holds the warehouse writer lock {lock_path} "
                            f"for more than {timeout_s:.0f} s"
                        ) from None
                    time.sleep(0.2)
            procs.mark_lock_holder(fd)
            _lock_fd = fd
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
            if _depth == 0 and _lock_fd is not None:
                fcntl.flock(_lock_fd, fcntl.LOCK_UN)
                os.close(_lock_fd)
                _lock_fd = None


def pending_table(source: str) -> str:
    """Typed rows of `source` quarantined as unknown_key, kept so they can be released when the
    parent arrives (late data is normal: an order's lines may land before the order)."""
    return f"raw._pending_{source}"


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists raw")
    for name in SOURCES:
        con.execute(raw_table_ddl(name))
        if SOURCES[name].foreign_keys:
            con.execute(f"create table if not exists {pending_table(name)} as "
                        f"select * from raw.{name} limit 0")
    con.execute(QUARANTINE_DDL)
    con.execute(FILES_DDL)
    for column in FILES_COLUMNS_ADDED:
        con.execute(f"alter table raw._files add column if not exists {column}")


# ---------------------------------------------------------------------------------------------
# Validation SQL, generated from the contract.

def sql_literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"



def _typed_expr(col: Column, tz: str) -> str:
    v = col.name
    if col.kind == INT:
        return f"case when regexp_matches({v}, '{_INT}') then try_cast({v} as bigint) end"
    if col.kind == AMOUNT:
        return f"case when regexp_matches({v}, '{_AMOUNT}') then try_cast({v} as decimal(18,2)) end"
    if col.kind == DATE:
        return f"case when regexp_matches({v}, '{_DATE}') then try_cast({v} as date) end"
    if col.kind == TS:
        # With an offset: an instant. Without: business local time (contract). Stored as UTC.
        return (
            f"case when not regexp_matches({v}, '{_ISO_TS}') then null "
            f"when regexp_matches({v}, '{_HAS_OFFSET}') "
            f"then timezone('UTC', try_cast({v} as timestamptz)) "
            f"else timezone('UTC', timezone({sql_literal(tz)}, try_cast({v} as timestamp))) end"
        )
    return v


def _shown(v: str) -> str:
    """SQL for a value as shown in a reason: quoted and cut to 60 characters."""
    return f"'''' || left({v}, 60) || ''''"


def _checks(src: Source) -> list[tuple[str, str, str, str]]:
    """(condition, rule, column, reason SQL) in the order rules are applied (contract.RULES)."""
    by_rule: dict[str, list[tuple[str, str, str, str]]] = {
        r: [] for r in ("missing_required", "bad_type", "bad_enum", "bad_format",
                        "negative_amount", "out_of_range")
    }
    for c in src.columns:
        v, t = c.name, f"t_{c.name}"
        if c.required:
            by_rule["missing_required"].append(
                (f"{v} is null", "missing_required", v, f"'required column {v} is empty'"))
        if c.kind in (INT, AMOUNT, DATE, TS):
            what = {INT: "an integer", AMOUNT: "an amount in yuan with up to 2 decimals",
                    DATE: "a date YYYY-MM-DD", TS: "an ISO-8601 timestamp"}[c.kind]
            by_rule["bad_type"].append((
                f"{v} is not null and {t} is null", "bad_type", v,
                f"'column {v}: ' || {_shown(v)} || ' is not {what}'"))
        if c.enum:
            allowed = ", ".join(sql_literal(e) for e in c.enum)
            by_rule["bad_enum"].append((
                f"{v} is not null and {v} not in ({allowed})", "bad_enum", v,
                f"'column {v}: ' || {_shown(v)} || ' is not one of {', '.join(c.enum)}'"))
        if c.pattern:
            by_rule["bad_format"].append((
                f"{v} is not null and not regexp_matches({v}, {sql_literal(c.pattern)})", "bad_format", v,
                f"'column {v}: ' || {_shown(v)} || ' does not match {c.pattern}'"))
        if c.kind == AMOUNT:
            by_rule["negative_amount"].append((
                f"{t} < 0", "negative_amount", v,
                f"'column {v}: amount ' || {v} || ' is negative'"))
            if c.max_value is not None:
                by_rule["out_of_range"].append((
                    f"{t} > {_num(c.max_value)}", "out_of_range", v,
                    f"'column {v}: amount ' || {_shown(v)} || ' is above {_num(c.max_value)}'"))
        elif c.kind in (TS, DATE):
            by_rule["out_of_range"].append((
                f"{t} < timestamp '{TS_MIN}' or {t} > timestamp '{TS_MAX}'", "out_of_range", v,
                f"'column {v}: ' || {_shown(v)} || ' is outside the years 1..9999 (UTC)'"))
        elif c.kind == INT:
            lo = c.min_value if c.min_value is not None else -MAX_INT
            hi = c.max_value if c.max_value is not None else MAX_INT
            by_rule["out_of_range"].append((
                f"{t} < {_num(lo)} or {t} > {_num(hi)}", "out_of_range", v,
                f"'column {v}: ' || {_shown(v)} || ' is outside {_num(lo)}..{_num(hi)}'"))
    return [chk for rule in by_rule.values() for chk in rule]


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def validation_sql(src: Source, tz: str, landed: str = "landed") -> str:
    """SQL over the text table `landed` (or the relation so named) producing _row, _raw_text, the
    typed columns (t_<column>) and rule/column_name/reason (only what the loader inserts: a file's
    rows are held in DuckDB while it loads, and every column carried costs memory).

    Row-level rules first; then duplicate keys among rows that passed them (first occurrence
    kept); then foreign keys against the parent raw table.
    """
    typed = ",\n        ".join(f"{_typed_expr(c, tz)} as t_{c.name}" for c in src.columns)
    typed_names = ", ".join(f"t_{c.name}" for c in src.columns)
    checks = _checks(src)
    # Each condition is evaluated once a row, for the number of the first that holds; the rule,
    # column and reason are looked up by that number. Three CASE chains over the conditions (one for
    # each) evaluated every condition three times for every valid row, the regular expressions too.
    numbered = list(enumerate(checks, 1))
    first_failed = "\n            ".join(f"when {cond} then {i}" for i, (cond, _, _, _) in numbered)
    case_rule = "\n            ".join(f"when {i} then {sql_literal(rule)}" for i, (_, rule, _, _) in numbered)
    case_col = "\n            ".join(f"when {i} then {sql_literal(col)}" for i, (_, _, col, _) in numbered)
    case_reason = "\n            ".join(f"when {i} then {reason}" for i, (_, _, _, reason) in numbered)
    key_t = ", ".join(f"t_{k}" for k in src.key)
    key_desc = ", ".join(src.key)
    key_join = " and ".join(f"row_checked.t_{k} is not distinct from repeated_keys.t_{k}" for k in src.key)
    if len(src.foreign_keys) > 1:
        raise NotImplementedError("one foreign key per source is checked at ingest")
    fk_missing, fk_col, fk_reason, fk_join = "false", "null", "null", ""
    for col, parent, pcol in src.foreign_keys:
        # The parent's keys this file names, found by scanning the parent against the file's keys:
        # `not in (select ... from raw.<parent>)` hashed every parent key once per file (5.6M order
        # ids by the end of a large first load, ~0.5 s a file).
        fk_join = f"""
    left join (
        select distinct {pcol} as _fk_known from raw.{parent}
        where {pcol} in (select t_{col} from dup_checked where rule1 is null and rule2 is null)
    ) on _fk_known = t_{col}"""
        fk_missing = f"t_{col} is not null and _fk_known is null"
        fk_col = sql_literal(col)
        fk_reason = f"'column {col}: ' || {_shown(col)} || ' has no row in {parent}.{pcol}'"
    return f"""
with typed as (
    select
        *,
        {typed}
    from {landed}
),
first_failed as (
    select
        *,
        case
            {first_failed}
        end as _failed
    from typed
),
row_checked as materialized (
    select
        * exclude (_failed),
        coalesce(_pre_rule, case _failed
            {case_rule}
        end) as rule1,
        case when _pre_rule is not null then null else case _failed
            {case_col}
        end end as col1,
        coalesce(_pre_detail, case _failed
            {case_reason}
        end) as reason1
    from first_failed
),
repeated_keys as (
    -- a key held by more than one row that passed the row rules, and its first row: the rows after
    -- it are duplicates. A window numbering every row by key sorted whole rows (their text too),
    -- most of the validation's time (0.96 s of a 454k-row WeCom events file's ~1.3 s).
    select {key_t}, min(_row) as _first_row
    from row_checked
    where rule1 is null
    group by {key_t}
    having count(*) > 1
),
dup_checked as (
    select
        row_checked.*,
        case when rule1 is null and _row > _first_row then 'duplicate_key' end as rule2
    from row_checked
    left join repeated_keys on {key_join}
),
fk_checked as (
    select
        *,
        case when rule1 is null and rule2 is null and {fk_missing} then 'unknown_key' end as rule3
    from dup_checked{fk_join}
)
select
    _row,
    _raw_text,
    {typed_names},
    coalesce(rule1, rule2, rule3) as rule,
    case
        when rule1 is not null then col1
        when rule2 is not null then {sql_literal(key_desc)}
        when rule3 is not null then {fk_col}
    end as column_name,
    case
        when rule1 is not null then reason1
        when rule2 is not null then 'key ({key_desc}) already appears earlier in this file'
        when rule3 is not null then {fk_reason}
    end as reason
from fk_checked
"""


# ---------------------------------------------------------------------------------------------

@dataclass
class FileResult:
    source: str
    file_name: str
    # loaded, replaced; rejected (unreadable: quarantined as one row), refused (an unreadable
    # redelivery: the loaded version is kept), still_refused (refused by an earlier run);
    # skipped_same_content; not_ready (still being written, or changed while read: loaded by a
    # later run); not_loaded (could not be opened)
    status: str
    rows_landed: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    encoding: str = ""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    reader: str = ""  # "fast" (DuckDB reads it: fast_jsonl, fast_csv), or "exact" and why the fast reader did not


def _landed_table(parsed: landing.ParsedFile) -> pa.Table:
    arrays = {c: pa.array(parsed.values[c], type=pa.string()) for c in parsed.columns}
    arrays["_row"] = pa.array(parsed.row_numbers, type=pa.int64())
    arrays["_raw_text"] = pa.array(parsed.raw_text, type=pa.string())
    arrays["_pre_rule"] = pa.array(parsed.pre_rule, type=pa.string())
    arrays["_pre_detail"] = pa.array(parsed.pre_detail, type=pa.string())
    return pa.table(arrays)


def _landed_ddl(src: Source) -> str:
    cols = ", ".join(f"{c} varchar" for c in src.column_names)
    return (f"create or replace temp table landed ({cols}, _row bigint, _raw_text varchar, "
            f"_pre_rule varchar, _pre_detail varchar)")


CHECKPOINT_BYTES = "1GB"  # write-ahead log merged into the warehouse file at this size (and after each source)
CTIME_MARGIN_S = 2.0  # file-system timestamps come from a coarse clock; be generous
RAW_TEXT_KEPT = 65_536  # characters of a refused row's raw text kept in raw.quarantine
_FILES_COLUMNS = ("source, file_name, file_date, content_hash, load_id, loaded_at, rows_landed, rows_loaded, "
                  "rows_quarantined, encoding, status, file_size, file_mtime_ns, notes")


def _unchanged_since_loaded(con: duckdb.DuckDBPyConnection, lf: landing.LandedFile,
                            stat: os.stat_result) -> str | None:
    """The status ('loaded', 'refused', 'duplicate') of the version of this file the ledger holds when the
    file has not been touched since: same size and mtime, and its inode change time (which
    `cp -p`, `touch -r` or any write moves to the present, unlike mtime) is older than the load.
    Only then is the file not read and hashed again: every run used to re-read every landing
    file (5 GB at the M benchmark, 14 s of a one-day refresh)."""
    ctime = datetime.fromtimestamp(stat.st_ctime_ns / 1e9, timezone.utc).replace(tzinfo=None)
    for status, loaded_at in con.execute(
            "select status, loaded_at from raw._files where source = ? and file_name = ? "
            "and status in ('loaded', 'refused', 'duplicate') and file_size = ? and file_mtime_ns = ? "
            "and loaded_at is not null order by loaded_at desc",
            [lf.source, lf.name, stat.st_size, stat.st_mtime_ns]).fetchall():
        if (loaded_at - ctime).total_seconds() > CTIME_MARGIN_S:
            return status
    return None


def _still_refused(con, lf: landing.LandedFile, started: float) -> FileResult:
    row = con.execute(
        "select q.reason from raw._files f join raw.quarantine q on q.load_id = f.load_id "
        "where f.source = ? and f.file_name = ? and f.status = 'refused'", [lf.source, lf.name]).fetchone()
    reason = row[0] if row else "an unreadable redelivery"
    return FileResult(lf.source, lf.name, "still_refused", notes=[f"{reason} (unchanged since it was refused)"],
                      seconds=time.perf_counter() - started)


def load_file(
    con: duckdb.DuckDBPyConnection,
    lf: landing.LandedFile,
    *,
    tz: str,
    limits: landing.Limits = landing.Limits(),
    quarantine_dir: Path | None = None,
    before_commit: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
    fast: bool = True,
    opened: Future[Opened] | None = None,
) -> FileResult:
    """Load one landed file in one transaction (see module docstring); its refused rows are also
    exported to <quarantine_dir>/<source>/ (written before the commit, put in place after it).

    `before_commit` runs inside the transaction after all writes: tests use it to inject a failure.
    `fast=False` keeps a JSON-lines or CSV file from DuckDB's readers (tests compare the readers).
    `opened`: the file already opened and hashed by `open_and_hash` (ingest_source does that for the
    next file on a thread while this one loads); the load owns it from here and closes it.
    """
    started = time.perf_counter()
    try:
        ready = opened.result() if opened is not None else Opened(landing.OpenedFile(lf))
    except landing.LandingFileError as exc:
        return FileResult(lf.source, lf.name, "not_loaded", notes=[str(exc)])
    with ready.f:
        return _load_opened(con, lf, ready, tz, limits, quarantine_dir, before_commit, started, fast)


@dataclass
class Opened:
    """A landed file opened for its load and, once read, its content hash and (for a JSON-lines
    file the fast reader will read) its line scan, both found in the one pass over its bytes."""
    f: landing.OpenedFile
    digest: str | None = None
    scan: fast_jsonl.LineScan | None = None

    def hash(self, fast: bool, limits: landing.Limits) -> None:
        if self.digest is not None:
            return
        lf, f = self.f.lf, self.f
        self.scan = (fast_jsonl.LineScan() if fast and lf.ext == "jsonl" and f.stat.st_size <= limits.max_bytes
                     else None)
        self.digest = landing.content_hash(self.scan.feed(f.chunks()) if self.scan is not None else f.chunks())


def open_and_hash(lf: landing.LandedFile, fast: bool = True, limits: landing.Limits = landing.Limits()) -> Opened:
    """Open a landed file and hash it ahead of its load. No database: ingest_source runs this for the
    next new file on a thread while the current one loads (hashlib and numpy let go of the GIL, as
    DuckDB does), so the two cores share what ran one after the other (~0.25 s of an L events
    file's ~1.6 s). Raises LandingFileError when the file cannot be opened."""
    ready = Opened(landing.OpenedFile(lf))
    try:
        ready.hash(fast, limits)
    except BaseException:
        ready.f.__exit__(None, None, None)
        raise
    return ready


def _load_opened(con, lf: landing.LandedFile, ready: Opened, tz: str, limits: landing.Limits,
                 quarantine_dir: Path | None, before_commit, started: float, fast: bool) -> FileResult:
    src = SOURCES[lf.source]
    f = ready.f
    stat = f.stat
    seen = _unchanged_since_loaded(con, lf, stat)
    if seen == "loaded":
        return FileResult(lf.source, lf.name, "skipped_same_content",
                          notes=["unchanged since it was loaded (size, mtime and ctime)"])
    if seen == "refused":
        return _still_refused(con, lf, started)
    if seen == "duplicate":
        return FileResult(lf.source, lf.name, "skipped_same_content",
                          notes=["unchanged since it was found to be a copy of a loaded file"])
    # Otherwise hash: a corrected file copied with `cp -p` keeps size and mtime, and only its
    # content tells it apart. A JSON-lines file's lines are found in the same pass, for the fast reader.
    ready.hash(fast, limits)
    # a scan made ahead (ingest_source reads ahead for the fast readers) is no use to an exact load
    digest, scan = ready.digest, ready.scan if fast else None
    prior = con.execute(
        "select file_name, content_hash, status from raw._files where source = ? "
        "and status in ('loaded', 'refused') and (file_name = ? or content_hash = ?)",
        [lf.source, lf.name, digest],
    ).fetchall()
    same = [n for n, h, s in prior if h == digest and s == "loaded"]
    if same and lf.name in same:
        # touched, not changed: the ledger follows the file, so it is not listed as new (not_loaded)
        con.execute("update raw._files set file_size = ?, file_mtime_ns = ? where source = ? and file_name = ? "
                    "and status = 'loaded'", [stat.st_size, stat.st_mtime_ns, lf.source, lf.name])
        return FileResult(lf.source, lf.name, "skipped_same_content", notes=["already loaded"])
    if same:  # a copy under another name: recorded, so it is not read again nor reported as new
        note = f"same content as {same[0]}, which is loaded: not loaded again"
        con.execute(
            f"insert into raw._files ({_FILES_COLUMNS}) values (?, ?, ?, ?, null, ?, 0, 0, 0, null, "
            f"'duplicate', ?, ?, ?)",
            [lf.source, lf.name, lf.file_date, digest, datetime.now(timezone.utc).replace(tzinfo=None),
             stat.st_size, stat.st_mtime_ns, note])
        return FileResult(lf.source, lf.name, "skipped_same_content", notes=[note])
    if any(n == lf.name and h == digest and s == "refused" for n, h, s in prior):
        return _still_refused(con, lf, started)
    replacing = any(n == lf.name and s == "loaded" for n, _, s in prior)

    load_id = f"{lf.source}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    loaded_at = datetime.now(timezone.utc).replace(tzinfo=None)
    cols = ", ".join(f"t_{c}" for c in src.column_names)
    export = _Export(quarantine_dir, lf.source, lf.name) if quarantine_dir is not None else None
    unreadable: str | None = None
    n_rows = 0
    con.execute("begin transaction")
    try:
        # Every batch of the file goes to a temp table first: the file is read as a stream, and
        # only once it has been read to its end without a fault does it replace anything.
        try:
            con.execute(_landed_ddl(src))
            if scan is not None:
                info, n_rows, reader = _read_fast(con, f, scan, src)
            elif fast and lf.ext in ("csv", "csv.gz"):
                info, n_rows, reader = _read_fast_csv(con, lf, f, src, limits)
            elif fast and lf.ext == "parquet":
                info = landing.FileInfo()
                n_rows, reader = landing.parquet_into_landed(con, lf, f, src.column_names, limits, info), "fast"
            else:
                info, n_rows, reader = None, 0, "exact"
            if info is None:
                info, batches = landing.read_batches(lf, f, stat.st_size, limits)
                for batch in batches:
                    _insert_landed(con, batch)
                    n_rows += batch.n_rows
            f.check_unchanged()
        except landing.LandingFileError as exc:
            unreadable = str(exc)
        if unreadable is None:
            if replacing:
                _replace_prior(con, lf)
            # the fast JSON-lines and CSV readers leave a view of their own; Parquet's fills `landed`
            fast_view = reader == "fast" and lf.ext != "parquet"
            con.execute("create or replace temp table checked as "
                        + validation_sql(src, tz, fast_jsonl.VIEW if fast_view else "landed"))
            if fast_view:
                (fast_jsonl if scan is not None else fast_csv).drop(con)
            con.execute("drop table landed")
            if fast_view and scan is not None:
                _read_refused_raw_text(con, f)
            elif reader == "fast" and lf.ext == "parquet":
                _read_refused_parquet_text(con, f)
            # The counts come from the inserts themselves: counting raw.<source> by _load_id scanned
            # the whole table once per file (88M event rows by the end of a large first load).
            n_loaded = con.execute(
                f"insert into raw.{lf.source} select {cols}, ?, ?, _row, ?, ? "
                f"from checked where rule is null order by _row",
                [lf.name, lf.file_date, load_id, loaded_at],
            ).fetchone()[0]
            n_quar = con.execute(
                f"insert into raw.quarantine select ?, ?, _row, {_kept_raw_text('_raw_text')}, rule, "
                f"column_name, reason, ?, ? from checked where rule is not null order by _row",
                [lf.source, lf.name, load_id, loaded_at],
            ).fetchone()[0]
            if src.foreign_keys:
                con.execute(
                    f"insert into {pending_table(lf.source)} select {cols}, ?, ?, _row, ?, ? "
                    f"from checked where rule = 'unknown_key' order by _row",
                    [lf.name, lf.file_date, load_id, loaded_at],
                )
            if n_loaded + n_quar != n_rows:
                raise IngestError(
                    f"{lf.path}: {n_rows} rows landed but {n_loaded} loaded + {n_quar} "
                    f"quarantined; nothing of this file was kept"
                )
            con.execute(
                f"insert into raw._files ({_FILES_COLUMNS}) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'loaded', ?, ?, ?)",
                [lf.source, lf.name, lf.file_date, digest, load_id, loaded_at, n_rows,
                 n_loaded, n_quar, info.encoding, stat.st_size, stat.st_mtime_ns,
                 "; ".join(info.notes) or None],
            )
            if export is not None:
                export.write(con)
            if before_commit is not None:
                before_commit(con)
            con.execute("drop table checked")
            con.execute("commit")
    except landing.FileChanged as exc:
        con.execute("rollback")
        return FileResult(lf.source, lf.name, "not_ready", notes=[str(exc)])
    except BaseException as exc:
        con.execute("rollback")
        if export is not None:
            export.discard()
        if isinstance(exc, (IngestError, KeyboardInterrupt, SystemExit)):
            raise
        raise IngestError(f"{lf.path}: load failed, nothing of this file was kept: {exc}") from exc
    if unreadable is not None:
        con.execute("rollback")
        return _reject_file(con, lf, digest, stat, unreadable, f.head(200), replacing, started, export)
    if export is not None:
        export.publish()
    return FileResult(
        lf.source, lf.name, "replaced" if replacing else "loaded", n_rows, n_loaded,
        n_quar, info.encoding, info.notes, time.perf_counter() - started, reader,
    )


def _insert_landed(con, batch: landing.ParsedFile) -> None:
    con.register("batch", _landed_table(batch))
    con.execute("insert into landed select * from batch")
    con.unregister("batch")


def _read_fast(con, f: landing.OpenedFile, scan: fast_jsonl.LineScan,
               src: Source) -> tuple[landing.FileInfo | None, int, str]:
    """A JSON-lines file into `landed` by DuckDB's reader, the lines it cannot judge as the contract
    does by the exact one (fast_jsonl.py). (None, 0, why) when the exact reader must read it whole."""
    try:
        n_rows, keys, exact_rows = fast_jsonl.load(con, f, scan, src.column_names, "landed",
                                                   landing.MAX_LINE_BYTES)
    except fast_jsonl.Declined as exc:
        return None, 0, f"exact: {exc}"
    info = landing.FileInfo()
    lines = fast_jsonl.exact_lines(f, con, exact_rows)
    for batch in landing.jsonl_lines(lines, src.column_names, info, set(keys)):
        batch.row_numbers = [exact_rows[i - 1] for i in batch.row_numbers]
        _insert_landed(con, batch)
    return info, n_rows, "fast"


def _read_fast_csv(con, lf: landing.LandedFile, f: landing.OpenedFile, src: Source,
                   limits: landing.Limits) -> tuple[landing.FileInfo | None, int, str]:
    """A CSV file's plain lines split by DuckDB, the others into `landed` by the exact reader
    (fast_csv.py). (None, 0, why) when the exact reader must read it whole."""
    info = landing.FileInfo()
    try:
        n_rows, exact = fast_csv.load(con, lf, f, f.stat.st_size, limits, src.column_names, info)
    except fast_csv.Declined as exc:
        return None, 0, f"exact: {exc}"
    if exact is not None:
        _insert_landed(con, exact)
    return info, n_rows, "fast"


def _read_refused_raw_text(con, f: landing.OpenedFile) -> None:
    """The raw text of the refused rows DuckDB read (it keeps no line's text), read back by offset."""
    spans = con.execute("select c._row, m._start, m._len from checked c join _fast_linemap m using (_row) "
                        "where c.rule is not null and c._raw_text is null order by 1").fetchall()
    con.execute("drop table _fast_linemap")
    if not spans:
        return
    texts = [landing.printable(os.pread(f.fd, n, start).decode("utf-8", "surrogateescape").rstrip("\r"))
             for _, start, n in spans]
    _set_raw_texts(con, [r for r, _, _ in spans], texts)


def _set_raw_texts(con, rows: list[int], texts: list[str]) -> None:
    """Give the rows of `checked` a raw text a fast reader did not keep."""
    con.register("_raw", pa.table({"_row": pa.array(rows, pa.int64()), "_text": pa.array(texts, pa.string())}))
    con.execute("update checked set _raw_text = r._text from _raw r where checked._row = r._row")
    con.unregister("_raw")


def _read_refused_parquet_text(con, f: landing.OpenedFile) -> None:
    """The raw text of the refused rows of a Parquet file the fast reader read (it keeps none)."""
    rows = [r for (r,) in con.execute("select _row from checked where rule is not null and _raw_text is null "
                                      "order by 1").fetchall()]
    if rows:
        _set_raw_texts(con, rows, landing.parquet_raw_texts(f, rows))


def _kept_raw_text(column: str) -> str:
    """SQL for a refused row's raw text, cut to RAW_TEXT_KEPT characters (a line may be megabytes)."""
    return (f"case when length({column}) > {RAW_TEXT_KEPT} then left({column}, {RAW_TEXT_KEPT}) || "
            f"' … [cut: ' || length({column}) || ' characters in all]' else {column} end")


def _replace_prior(con, lf: landing.LandedFile) -> None:
    con.execute(f"delete from raw.{lf.source} where _file = ?", [lf.name])
    if SOURCES[lf.source].foreign_keys:
        con.execute(f"delete from {pending_table(lf.source)} where _file = ?", [lf.name])
    con.execute("delete from raw.quarantine where source = ? and file_name = ?", [lf.source, lf.name])
    con.execute("update raw._files set status = 'superseded' where source = ? "
                "and file_name = ? and status in ('loaded', 'refused')", [lf.source, lf.name])


def _reject_file(con, lf, digest, stat, message, head: bytes, replacing, started, export) -> FileResult:
    """A file that cannot be read at all: one quarantine row (row 0) says why; no data rows.

    It is recorded with its hash, so the same bytes are not retried. A new file is recorded as
    loaded (its one quarantine row), and a corrected redelivery under the same name replaces the
    rejection. A redelivery of a file that loaded is refused instead: an interrupted transfer
    must not delete a good day of data, so the loaded version stays current until a readable
    one replaces it.
    """
    load_id = f"{lf.source}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    status = "loaded"
    keeps = replacing and not con.execute(  # a loaded version that was itself unreadable keeps nothing
        "select count(*) from raw._files f join raw.quarantine q on q.load_id = f.load_id where f.source = ? "
        "and f.file_name = ? and f.status = 'loaded' and q.rule = 'unreadable_file'",
        [lf.source, lf.name]).fetchall()[0][0]
    con.execute("begin transaction")
    try:
        if replacing and not keeps:
            _replace_prior(con, lf)
        elif replacing:
            status = "refused"
            loaded_at, rows = con.execute(
                "select loaded_at, rows_loaded from raw._files where source = ? and file_name = ? "
                "and status = 'loaded'", [lf.source, lf.name]).fetchone()
            message += (f"; the version loaded {loaded_at:%Y-%m-%d %H:%M} UTC ({rows:,} rows) is kept "
                        f"until a readable one replaces it")
            earlier = [r[0] for r in con.execute(
                "select load_id from raw._files where source = ? and file_name = ? and status = 'refused'",
                [lf.source, lf.name]).fetchall()]
            for old in earlier:  # an earlier unreadable redelivery: this one takes its place
                con.execute("delete from raw.quarantine where load_id = ?", [old])
                con.execute("update raw._files set status = 'superseded' where load_id = ?", [old])
        con.execute(
            "insert into raw.quarantine values (?, ?, 0, ?, 'unreadable_file', null, ?, ?, ?)",
            [lf.source, lf.name, landing.printable(head.decode("utf-8", "surrogateescape")),
             message, load_id, now],
        )
        con.execute(
            f"insert into raw._files ({_FILES_COLUMNS}) values (?, ?, ?, ?, ?, ?, 0, 0, 0, null, ?, ?, ?, null)",
            [lf.source, lf.name, lf.file_date, digest, load_id, now, status, stat.st_size, stat.st_mtime_ns],
        )
        if export is not None:
            export.write(con)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        if export is not None:
            export.discard()
        raise
    if export is not None:
        export.publish()
    return FileResult(lf.source, lf.name, status.replace("loaded", "rejected"), notes=[message],
                      seconds=time.perf_counter() - started)


def release_resolved_keys(con: duckdb.DuckDBPyConnection, source: str) -> dict[str, int]:
    """Move rows quarantined as unknown_key whose parent now exists into raw.<source>, keeping
    their file and row lineage, in one transaction. Returns released rows per file."""
    src = SOURCES[source]
    if not src.foreign_keys:
        return {}
    ((col, parent, pcol),) = src.foreign_keys
    pending = pending_table(source)
    with transaction(con):
        con.execute(f"create or replace temp table released as select * from {pending} "
                    f"where {col} in (select {pcol} from raw.{parent})")
        per_file = dict(con.execute("select _file, count(*) from released group by 1").fetchall())
        if per_file:
            con.execute(f"insert into raw.{source} select * from released")
            con.execute("delete from raw.quarantine q where q.source = ? and q.rule = 'unknown_key' "
                        "and exists (select 1 from released r where r._file = q.file_name "
                        "and r._row = q.row_number)", [source])
            con.execute(f"delete from {pending} p where exists (select 1 from released r "
                        f"where r._file = p._file and r._row = p._row)")
            for file_name, n in per_file.items():
                con.execute("update raw._files set rows_loaded = rows_loaded + ?, "
                            "rows_quarantined = rows_quarantined - ? where source = ? "
                            "and file_name = ? and status = 'loaded'", [n, n, source, file_name])
        con.execute("drop table released")
    return per_file


@dataclass
class SourceResult:
    source: str
    files: list[FileResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # files of the folder no source loads, and why
    released: dict[str, int] = field(default_factory=dict)  # unknown_key rows whose parent arrived

    def total(self, attr: str) -> int:
        return sum(getattr(f, attr) for f in self.files)

    def attention(self) -> list[str]:
        """What the people running the pipeline must read: files not loaded, refused, unreadable,
        loaded with columns absent or unknown. The terminal prints it under the raw asset."""
        label = {"refused": "REFUSED", "still_refused": "REFUSED", "rejected": "UNREADABLE",
                 "not_ready": "NOT LOADED YET", "not_loaded": "NOT LOADED"}
        lines = []
        for f in self.files:
            if f.status in label:
                lines.append(f"{label[f.status]} {self.source}/{f.file_name}: {'; '.join(f.notes)}")
            elif f.status in ("loaded", "replaced") and f.notes:
                lines.append(f"NOTE {self.source}/{f.file_name}: {'; '.join(f.notes)}")
        return lines + [f"NOT LOADED {p}" for p in self.problems]


def wait_until_settled(files: list[landing.LandedFile], settle_s: float, require_done: bool,
                       ) -> tuple[list[landing.LandedFile], dict[str, str]]:
    """The files whose writers have finished, and why each other one is not loaded now.

    A file is finished when `<file>.done` exists and is no older than the file, or when it has not
    changed for `settle_s` seconds: its mtime and ctime are that old, or its size, mtime and ctime
    stay the same that long while this waits (at most 2 x `settle_s`: a fresh file costs one wait,
    and a file written by a machine whose clock runs ahead is not kept out). With `require_done`
    only a marker will do. A file read while it is being written loads a cut-off last value
    (150.00 -> 15.00); the loader also checks that a file did not change while it was read.
    """
    ready: list[landing.LandedFile] = []
    waiting: dict[str, str] = {}
    first_seen: dict[str, tuple[tuple, float]] = {}
    deadline = time.monotonic() + 2 * settle_s  # a file that stops changing within settle_s is ready
    pending = list(files)
    while pending:
        still = []
        for lf in pending:
            try:
                st = os.stat(lf.real or lf.path)
            except OSError as exc:
                waiting[lf.name] = f"cannot be examined ({exc.strerror})"
                continue
            marker_ns = landing.done_marker_ns(lf.path)
            fingerprint = (st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            age_s = time.time() - max(st.st_mtime_ns, st.st_ctime_ns) / 1e9
            seen = first_seen.get(lf.name)
            if marker_ns is not None and marker_ns >= st.st_mtime_ns:
                ready.append(lf)
            elif require_done:
                waiting[lf.name] = (f"waiting for {lf.name}{landing.DONE_SUFFIX} (EW_LANDING_REQUIRE_DONE): "
                                    f"the marker says its writer has finished")
            elif age_s >= settle_s or (seen is not None and seen[0] == fingerprint
                                       and time.monotonic() - seen[1] >= settle_s):
                ready.append(lf)
            else:
                if seen is None or seen[0] != fingerprint:
                    first_seen[lf.name] = (fingerprint, time.monotonic())
                still.append(lf)
        pending = still
        if not pending or time.monotonic() >= deadline + 0.1:
            break
        time.sleep(min(0.2, max(0.0, deadline + 0.1 - time.monotonic())))
    for lf in pending:
        waiting[lf.name] = (f"still being written: changed within the last {settle_s:g} s "
                            f"(EW_LANDING_SETTLE_S); it loads once it stops changing, or at once "
                            f"beside a {lf.name}{landing.DONE_SUFFIX} marker")
    order = {lf.name: i for i, lf in enumerate(files)}
    return sorted(ready, key=lambda lf: order[lf.name]), waiting


def ingest_source(db_path: Path, landing_dir: Path, source: str, *, tz: str,
                  lock_path: Path, quarantine_dir: Path | None = None,
                  limits: landing.Limits = landing.Limits(), settle_s: float = 0.0,
                  require_done: bool = False, memory_limit: str | None = None) -> SourceResult:
    """Load every new or changed landed file of one source, oldest file date first, once its
    writer has finished (`wait_until_settled`; the pipeline waits EW_LANDING_SETTLE_S).

    Quarantined rows of each file are also exported to <quarantine_dir>/<source>/<file>.csv so
    the team that sent the file can be handed exactly what was refused and why.

    A file is read in batches (landing.BATCH_ROWS) into a DuckDB temp table, so what a file holds
    in memory is one batch in Python plus DuckDB's share, which `memory_limit` caps (DuckDB spills
    to <db>.tmp/ above it; the pipeline passes EW_DUCKDB_MEMORY_LIMIT, as dbt does).
    """
    files, problems = landing.discover(landing_dir, source)
    result = SourceResult(source, problems=problems)
    with writer_lock(lock_path):
        con = duckdb.connect(str(db_path))
        try:
            con.execute("set TimeZone = 'UTC'")  # nothing may depend on the machine's zone
            if memory_limit:
                con.execute(f"set memory_limit = {sql_literal(memory_limit)}")
            # Each file commits on its own (its transaction is durable in the write-ahead log), but the
            # log is merged into the file once per CHECKPOINT_BYTES and once at the end, not after every
            # file: at DuckDB's 16 MB default a file of a large source checkpointed on its commit, and
            # that cost grew with the table (5.3 s a file of WeCom events next to 45M rows; once for
            # five such files, 11.2 s).
            con.execute(f"set checkpoint_threshold = {sql_literal(CHECKPOINT_BYTES)}")
            ensure_raw_schema(con)
            known = {(n, size, mtime) for n, size, mtime in con.execute(
                "select file_name, file_size, file_mtime_ns from raw._files where source = ? "
                "and status in ('loaded', 'refused', 'duplicate')", [source]).fetchall()}
            new = [lf for lf in files if not _matches(lf, known)]
            _, waiting = wait_until_settled(new, settle_s, require_done)
            _load_in_order(con, files, {lf.name for lf in new if lf.name not in waiting}, waiting, result,
                           tz, limits, quarantine_dir)
            result.released = release_resolved_keys(con, source)
            for file_name in result.released if quarantine_dir is not None else ():
                export = _Export(quarantine_dir, source, file_name)
                export.write(con)
                export.publish()
            con.execute("checkpoint")
            write_loaded_index(con, db_path)
        finally:
            con.close()
    return result


def _load_in_order(con, files: list[landing.LandedFile], new: set[str], waiting: dict[str, str],
                   result: SourceResult, tz: str, limits: landing.Limits, quarantine_dir: Path | None) -> None:
    """Load `files` one after another, each in its own transaction, except those `waiting` for their
    writer, while a thread opens and hashes the next `new` one (open_and_hash). A file the ledger
    already holds is not read ahead: its load stops at its fingerprint without reading it."""
    upcoming = [lf for lf in files if lf.name in new]
    ahead: dict[str, Future[Opened]] = {}
    with ThreadPoolExecutor(1, thread_name_prefix="ew-hash-ahead") as pool:
        try:
            for lf in files:
                if lf.name in waiting:
                    result.files.append(FileResult(lf.source, lf.name, "not_ready", notes=[waiting[lf.name]]))
                    continue
                while upcoming and (upcoming[0].name == lf.name or upcoming[0].name in ahead):
                    upcoming.pop(0)
                if upcoming:  # the next new file after this one, read while this one loads
                    ahead[upcoming[0].name] = pool.submit(open_and_hash, upcoming[0], True, limits)
                result.files.append(load_file(con, lf, tz=tz, limits=limits, quarantine_dir=quarantine_dir,
                                              opened=ahead.pop(lf.name, None)))
        finally:
            for fut in ahead.values():  # read ahead, never loaded (a load before it failed): let go of it
                try:
                    fut.result().f.__exit__(None, None, None)
                except landing.LandingFileError:
                    pass


def _matches(lf: landing.LandedFile, known: set[tuple]) -> bool:
    try:
        st = os.stat(lf.real or lf.path)
    except OSError:
        return False
    return (lf.name, st.st_size, st.st_mtime_ns) in known


def loaded_index_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".loaded.json")


def write_loaded_index(con: duckdb.DuckDBPyConnection, db_path: Path) -> None:
    """Fingerprints (size, mtime) of every file the ledger holds (loaded, refused or a duplicate:
    the newest version of each name), next to the DuckDB file.

    The landing sensor reads this instead of the DuckDB file, whose lock a running pipeline holds.
    """
    rows = con.execute(
        "select source || '/' || file_name, file_size, file_mtime_ns from raw._files "
        "where status in ('loaded', 'refused', 'duplicate') "
        "qualify row_number() over (partition by source, file_name order by loaded_at desc) = 1").fetchall()
    path = loaded_index_path(db_path)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({k: [size, mtime] for k, size, mtime in sorted(rows)}))
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# Quarantine exports

NAME_MAX = 255  # bytes in one file name (Linux, macOS)


def export_name(file_name: str) -> str:
    """`<file>.quarantine.csv`, or for a name too long to take the suffix (and `.tmp` while it is
    written) the name cut short plus a hash of the whole name: a 240-byte file name broke the
    export after its load had committed."""
    name = f"{file_name}.quarantine.csv"
    if len((name + ".tmp").encode()) <= NAME_MAX:
        return name
    tag = f"~{hashlib.sha256(file_name.encode()).hexdigest()[:12]}.quarantine.csv"
    keep = NAME_MAX - len(".tmp") - len(tag.encode())
    return file_name.encode()[:keep].decode("utf-8", "ignore") + tag


def _cell(column: str) -> str:
    """A CSV cell a spreadsheet will not run: text starting with = + - @ tab or CR (a formula,
    e.g. =HYPERLINK(...) in a refused row's raw text) gets a leading apostrophe (OWASP)."""
    return (f"case when left({column}, 1) in ('=', '+', '-', '@', chr(9), chr(13)) "
            f"then '''' || {column} else {column} end")


class _Export:
    """The refused rows of one file as CSV, written (inside the load's transaction) to a temporary
    file and put in place once the load has committed."""

    def __init__(self, quarantine_dir: Path, source: str, file_name: str):
        self.source, self.file_name = source, file_name
        self.target = quarantine_dir / source / export_name(file_name)
        self.tmp = self.target.with_name(self.target.name + ".tmp")
        self.empty = True

    def write(self, con: duckdb.DuckDBPyConnection) -> None:
        (n,) = con.execute("select count(*) from raw.quarantine where source = ? and file_name = ?",
                           [self.source, self.file_name]).fetchone()
        self.empty = n == 0
        if self.empty:
            return
        self.target.parent.mkdir(parents=True, exist_ok=True)
        cells = ", ".join(f"{_cell(c)} as {c}" if c != "row_number" else c
                          for c in ("file_name", "row_number", "rule", "column_name", "reason", "raw_text"))
        con.execute(
            f"copy (select {cells} from raw.quarantine where source = ? and file_name = ? "
            f"order by row_number) to {sql_literal(str(self.tmp))} (header, delimiter ',')",
            [self.source, self.file_name],
        )

    def publish(self) -> None:
        if self.empty:
            self.target.unlink(missing_ok=True)
        else:
            os.replace(self.tmp, self.target)

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# What was not loaded, for `ecomwh run` and `ecomwh status`

def not_loaded(con: duckdb.DuckDBPyConnection, landing_dir: Path) -> list[tuple[str, str]]:
    """Every file under the landing folder whose rows are not in the warehouse, and why, as
    (path under landing, reason): files no source loads (names, places, links, special files),
    unreadable files and refused redeliveries (from the ledger), and well-named files that no
    load has seen as they are now (new, changed, or still being written)."""
    out = list(landing.survey(landing_dir))
    ledger = con.execute("""
        select f.source, f.file_name, f.status, f.file_size, f.file_mtime_ns, q.reason, f.notes
        from raw._files f
        left join raw.quarantine q on q.load_id = f.load_id and q.rule = 'unreadable_file'
        where f.status in ('loaded', 'refused', 'duplicate')""").fetchall()
    seen = {(s, n, size, mtime) for s, n, _, size, mtime, _, _ in ledger}
    for source, name, status, _, _, unreadable, notes in ledger:
        if not (landing_dir / source / name).exists():
            continue
        if status == "refused":
            out.append((f"{source}/{name}", f"refused: {unreadable}"))
        elif status == "duplicate":
            out.append((f"{source}/{name}", notes))
        elif unreadable is not None:
            out.append((f"{source}/{name}", f"unreadable: {unreadable}"))
    for source in SOURCES:
        for lf in landing.discover(landing_dir, source)[0]:
            try:
                st = os.stat(lf.real or lf.path)
            except OSError:
                continue
            if (source, lf.name, st.st_size, st.st_mtime_ns) not in seen:
                out.append((f"{source}/{lf.name}", "not loaded yet: new or changed since the last load "
                                                   "(or still being written)"))
    return sorted(set(out))


def file_notes(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(source/file, notes) of the current version of every file loaded with notes: columns absent
    from it (read as empty, e.g. a renamed optional column) or not in the contract (ignored)."""
    return [(f"{s}/{n}", notes) for s, n, notes in con.execute(
        "select source, file_name, notes from raw._files where status = 'loaded' and notes is not null "
        "order by 1, 2").fetchall()]
