"""Loading landed files into raw.<source>: type, check against the contract, quarantine, atomically.

One file is one transaction: its good rows go to raw.<source>, its bad rows to raw.quarantine (with
file, row number, raw text, rule, column and a readable reason), and a record to raw._files; then
landed = loaded + quarantined is asserted before commit. An exception or a kill at any point
leaves nothing of the file behind. A file already loaded with the same content hash is skipped; a
file with a known name but new content (a corrected redelivery) replaces exactly that file's rows.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import duckdb
import pyarrow as pa

from dagster_project.lib import landing, procs
from dagster_project.lib.contract import (
    AMOUNT, DATE, FILES_DDL, INT, QUARANTINE_DDL, SOURCES, TS, Column, Source, raw_table_ddl,
)

_ISO_TS = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?)?"
    r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$"
)
# An offset only counts after a time of day: the "-20" of a bare date "2026-05-20" is not one.
_HAS_OFFSET = r"[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)$"
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
        elif c.min_value is not None or c.max_value is not None:
            conds = []
            if c.min_value is not None:
                conds.append(f"{t} < {c.min_value:g}")
            if c.max_value is not None:
                conds.append(f"{t} > {c.max_value:g}")
            lo = f"{c.min_value:g}" if c.min_value is not None else "-inf"
            hi = f"{c.max_value:g}" if c.max_value is not None else "inf"
            by_rule["out_of_range"].append((
                " or ".join(conds), "out_of_range", v,
                f"'column {v}: ' || {v} || ' is outside {lo}..{hi}'"))
    return [chk for rule in by_rule.values() for chk in rule]


def validation_sql(src: Source, tz: str) -> str:
    """SQL over the text table `landed` producing typed columns plus rule/column_name/reason.

    Row-level rules first; then duplicate keys among rows that passed them (first occurrence
    kept); then foreign keys against the parent raw table.
    """
    typed = ",\n        ".join(f"{_typed_expr(c, tz)} as t_{c.name}" for c in src.columns)
    checks = _checks(src)
    case_rule = "\n            ".join(f"when {cond} then {sql_literal(rule)}" for cond, rule, _, _ in checks)
    case_col = "\n            ".join(f"when {cond} then {sql_literal(col)}" for cond, _, col, _ in checks)
    case_reason = "\n            ".join(f"when {cond} then {reason}" for cond, _, _, reason in checks)
    key_t = ", ".join(f"t_{k}" for k in src.key)
    key_desc = ", ".join(src.key)
    if len(src.foreign_keys) > 1:
        raise NotImplementedError("one foreign key per source is checked at ingest")
    fk_missing, fk_col, fk_reason = "false", "null", "null"
    for col, parent, pcol in src.foreign_keys:
        fk_missing = f"t_{col} not in (select {pcol} from raw.{parent} where {pcol} is not null)"
        fk_col = sql_literal(col)
        fk_reason = f"'column {col}: ' || {_shown(col)} || ' has no row in {parent}.{pcol}'"
    return f"""
with typed as (
    select
        *,
        {typed}
    from landed
),
row_checked as (
    select
        *,
        coalesce(_pre_rule, case
            {case_rule}
        end) as rule1,
        case when _pre_rule is not null then null else case
            {case_col}
        end end as col1,
        coalesce(_pre_detail, case
            {case_reason}
        end) as reason1
    from typed
),
dup_checked as (
    select
        *,
        case when rule1 is null
             and row_number() over (partition by rule1 is null, {key_t} order by _row) > 1
             then 'duplicate_key' end as rule2
    from row_checked
),
fk_checked as (
    select
        *,
        case when rule1 is null and rule2 is null and {fk_missing} then 'unknown_key' end as rule3
    from dup_checked
)
select
    *,
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
    status: str  # loaded, replaced, rejected (unreadable), skipped_same_content
    rows_landed: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    encoding: str = ""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _landed_table(parsed: landing.ParsedFile) -> pa.Table:
    arrays = {c: pa.array(parsed.values[c], type=pa.string()) for c in parsed.columns}
    arrays["_row"] = pa.array(parsed.row_numbers, type=pa.int64())
    arrays["_raw_text"] = pa.array(parsed.raw_text, type=pa.string())
    arrays["_pre_rule"] = pa.array(parsed.pre_rule, type=pa.string())
    arrays["_pre_detail"] = pa.array(parsed.pre_detail, type=pa.string())
    return pa.table(arrays)


CTIME_MARGIN_S = 2.0  # file-system timestamps come from a coarse clock; be generous


def _unchanged_since_loaded(con: duckdb.DuckDBPyConnection, lf: landing.LandedFile, stat: os.stat_result) -> bool:
    """True when the file loaded under this name has not been touched since: same size and mtime,
    and its inode change time (which `cp -p`, `touch -r` or any write moves to the present, unlike
    mtime) is older than the load. Only then is the file not read and hashed again: every run used
    to re-read every landing file (5 GB at the M benchmark, 14 s of a one-day refresh)."""
    rec = con.execute(
        "select file_size, file_mtime_ns, loaded_at from raw._files "
        "where source = ? and file_name = ? and status = 'loaded'", [lf.source, lf.name]).fetchall()
    if len(rec) != 1 or rec[0][0] != stat.st_size or rec[0][1] != stat.st_mtime_ns or rec[0][2] is None:
        return False
    ctime = datetime.fromtimestamp(stat.st_ctime_ns / 1e9, timezone.utc).replace(tzinfo=None)
    return (rec[0][2] - ctime).total_seconds() > CTIME_MARGIN_S


def load_file(
    con: duckdb.DuckDBPyConnection,
    lf: landing.LandedFile,
    *,
    tz: str,
    before_commit: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> FileResult:
    """Load one landed file in one transaction (see module docstring).

    `before_commit` runs inside the transaction after all writes: tests use it to inject a failure.
    """
    started = time.perf_counter()
    src = SOURCES[lf.source]
    stat = lf.path.stat()
    if _unchanged_since_loaded(con, lf, stat):
        return FileResult(lf.source, lf.name, "skipped_same_content",
                          notes=["unchanged since it was loaded (size, mtime and ctime)"])
    # Otherwise hash: a corrected file copied with `cp -p` keeps size and mtime, and only its
    # content tells it apart.
    raw_bytes = lf.path.read_bytes()
    digest = landing.content_hash(raw_bytes)
    prior = con.execute(
        "select file_name, content_hash from raw._files where source = ? and status = 'loaded' "
        "and (file_name = ? or content_hash = ?)",
        [lf.source, lf.name, digest],
    ).fetchall()
    if any(h == digest for _, h in prior):
        same = next(n for n, h in prior if h == digest)
        note = "" if same == lf.name else f" (same content as {same})"
        return FileResult(lf.source, lf.name, "skipped_same_content", notes=[f"already loaded{note}"])
    replacing = any(n == lf.name for n, _ in prior)

    try:
        parsed = landing.parse(lf, landing.decompress(lf, raw_bytes))
    except landing.LandingFileError as exc:
        return _reject_file(con, lf, digest, stat, str(exc), raw_bytes, replacing, started)
    load_id = f"{lf.source}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    loaded_at = datetime.now(timezone.utc).replace(tzinfo=None)
    cols = ", ".join(f"t_{c}" for c in src.column_names)

    con.execute("begin transaction")
    try:
        if replacing:
            _replace_prior(con, lf)
        con.register("landed", _landed_table(parsed))
        con.execute(f"create or replace temp table checked as {validation_sql(src, tz)}")
        con.unregister("landed")
        con.execute(
            f"insert into raw.{lf.source} select {cols}, ?, ?, _row, ?, ? "
            f"from checked where rule is null order by _row",
            [lf.name, lf.file_date, load_id, loaded_at],
        )
        con.execute(
            "insert into raw.quarantine select ?, ?, _row, _raw_text, rule, column_name, reason, ?, ? "
            "from checked where rule is not null order by _row",
            [lf.source, lf.name, load_id, loaded_at],
        )
        if src.foreign_keys:
            con.execute(
                f"insert into {pending_table(lf.source)} select {cols}, ?, ?, _row, ?, ? "
                f"from checked where rule = 'unknown_key' order by _row",
                [lf.name, lf.file_date, load_id, loaded_at],
            )
        n_loaded = con.execute(
            f"select count(*) from raw.{lf.source} where _load_id = ?", [load_id]).fetchone()[0]
        n_quar = con.execute(
            "select count(*) from raw.quarantine where load_id = ?", [load_id]).fetchone()[0]
        if n_loaded + n_quar != parsed.n_rows:
            raise IngestError(
                f"{lf.path}: {parsed.n_rows} rows landed but {n_loaded} loaded + {n_quar} "
                f"quarantined; nothing of this file was kept"
            )
        con.execute(
            "insert into raw._files values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'loaded', ?, ?)",
            [lf.source, lf.name, lf.file_date, digest, load_id, loaded_at, parsed.n_rows,
             n_loaded, n_quar, parsed.encoding, stat.st_size, stat.st_mtime_ns],
        )
        if before_commit is not None:
            before_commit(con)
        con.execute("drop table checked")
        con.execute("commit")
    except BaseException as exc:
        con.execute("rollback")
        if isinstance(exc, (IngestError, KeyboardInterrupt, SystemExit)):
            raise
        raise IngestError(f"{lf.path}: load failed, nothing of this file was kept: {exc}") from exc
    return FileResult(
        lf.source, lf.name, "replaced" if replacing else "loaded", parsed.n_rows, n_loaded,
        n_quar, parsed.encoding, parsed.notes, time.perf_counter() - started,
    )


def _replace_prior(con, lf: landing.LandedFile) -> None:
    con.execute(f"delete from raw.{lf.source} where _file = ?", [lf.name])
    if SOURCES[lf.source].foreign_keys:
        con.execute(f"delete from {pending_table(lf.source)} where _file = ?", [lf.name])
    con.execute("delete from raw.quarantine where source = ? and file_name = ?", [lf.source, lf.name])
    con.execute("update raw._files set status = 'superseded' where source = ? "
                "and file_name = ? and status = 'loaded'", [lf.source, lf.name])


def _reject_file(con, lf, digest, stat, message, data, replacing, started) -> FileResult:
    """A file that cannot be read at all: one quarantine row (row 0) says why; no data rows.

    It is recorded with its hash, so the same bytes are not retried, and a corrected redelivery
    under the same name replaces the rejection.
    """
    load_id = f"{lf.source}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    con.execute("begin transaction")
    try:
        if replacing:
            _replace_prior(con, lf)
        con.execute(
            "insert into raw.quarantine values (?, ?, 0, ?, 'unreadable_file', null, ?, ?, ?)",
            [lf.source, lf.name, landing.printable(data[:200].decode("utf-8", "surrogateescape")),
             message, load_id, now],
        )
        con.execute(
            "insert into raw._files values (?, ?, ?, ?, ?, ?, 0, 0, 0, null, 'loaded', ?, ?)",
            [lf.source, lf.name, lf.file_date, digest, load_id, now, stat.st_size, stat.st_mtime_ns],
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return FileResult(lf.source, lf.name, "rejected", notes=[message],
                      seconds=time.perf_counter() - started)


def release_resolved_keys(con: duckdb.DuckDBPyConnection, source: str) -> dict[str, int]:
    """Move rows quarantined as unknown_key whose parent now exists into raw.<source>, keeping
    their file and row lineage, in one transaction. Returns released rows per file."""
    src = SOURCES[source]
    if not src.foreign_keys:
        return {}
    ((col, parent, pcol),) = src.foreign_keys
    pending = pending_table(source)
    con.execute("begin transaction")
    try:
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
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return per_file


@dataclass
class SourceResult:
    source: str
    files: list[FileResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    released: dict[str, int] = field(default_factory=dict)  # unknown_key rows whose parent arrived

    def total(self, attr: str) -> int:
        return sum(getattr(f, attr) for f in self.files)


def ingest_source(db_path: Path, landing_dir: Path, source: str, *, tz: str,
                  lock_path: Path, quarantine_dir: Path | None = None) -> SourceResult:
    """Load every new or changed landed file of one source, oldest file date first.

    Quarantined rows of each file are also exported to <quarantine_dir>/<source>/<file>.csv so
    the team that sent the file can be handed exactly what was refused and why.
    """
    files, problems = landing.discover(landing_dir, source)
    result = SourceResult(source, problems=problems)
    with writer_lock(lock_path):
        con = duckdb.connect(str(db_path))
        try:
            con.execute("set TimeZone = 'UTC'")  # nothing may depend on the machine's zone
            ensure_raw_schema(con)
            for lf in files:
                fr = load_file(con, lf, tz=tz)
                result.files.append(fr)
                if quarantine_dir is not None and fr.status != "skipped_same_content":
                    n = fr.rows_quarantined + (fr.status == "rejected")
                    _export_quarantine(con, quarantine_dir, source, lf.name, n)
            result.released = release_resolved_keys(con, source)
            for file_name in result.released if quarantine_dir is not None else ():
                left = con.execute("select count(*) from raw.quarantine where source = ? and file_name = ?",
                                   [source, file_name]).fetchall()[0][0]
                _export_quarantine(con, quarantine_dir, source, file_name, left)
            write_loaded_index(con, db_path)
        finally:
            con.close()
    return result


def loaded_index_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".loaded.json")


def write_loaded_index(con: duckdb.DuckDBPyConnection, db_path: Path) -> None:
    """Fingerprints (size, mtime) of every loaded file, next to the DuckDB file.

    The landing sensor reads this instead of the DuckDB file, whose lock a running pipeline holds.
    """
    rows = con.execute(
        "select source || '/' || file_name, file_size, file_mtime_ns from raw._files "
        "where status = 'loaded'").fetchall()
    path = loaded_index_path(db_path)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({k: [size, mtime] for k, size, mtime in sorted(rows)}))
    os.replace(tmp, path)


def _export_quarantine(con, quarantine_dir: Path, source: str, file_name: str, n: int) -> None:
    target = quarantine_dir / source / f"{file_name}.quarantine.csv"
    if n == 0:
        target.unlink(missing_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    con.execute(
        "copy (select file_name, row_number, rule, column_name, reason, raw_text "
        "from raw.quarantine where source = ? and file_name = ? order by row_number) "
        f"to {sql_literal(str(tmp))} (header, delimiter ',')",
        [source, file_name],
    )
    os.replace(tmp, target)
