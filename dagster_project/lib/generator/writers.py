"""Write the world's tables as landing files, with planted bad rows.

File layout: ``<landing>/<source>/<source>_<YYYYMMDD>.<ext>``, one file per business date that has rows.

| source | format | encoding | timestamp text |
|---|---|---|---|
| users | csv | day index % 3 == 2: GB18030; else UTF-8, weekend files with BOM | ``2026-05-20T20:13:05+08:00`` |
| products | csv | GB18030 | local ``2026-05-20 10:00:00`` |
| orders | csv | UTF-8, weekend files with BOM | local ``2026-05-20 20:13:05`` |
| order_items | csv | UTF-8 | - |
| events | jsonl | UTF-8 | UTC ``2026-05-20T12:13:05Z`` |
| returns | csv | UTF-8 | local |
| shipments | parquet | typed ``timestamp[us, tz=UTC]`` | - |
| cs_tickets | jsonl | UTF-8 | ``+08:00`` |
| campaigns | csv | GB18030 | local |
| marketing_touches | parquet | typed ``timestamp[us, tz=UTC]`` | - |
| inventory_snapshots | csv.gz | gzip (mtime 0, no name) of UTF-8 CSV | date ``2026-05-20`` |
| experiment_assignments | csv | UTF-8 | UTC ``...Z`` |
| member_events | csv | UTF-8 | ``+08:00`` |
| ad_spend | csv | UTF-8 | date ``2026-05-20`` |
| private_domain_events | csv | UTF-8 | ``+08:00`` |

"Local" means the business time zone (the ``timezone`` argument; the ``+08:00`` suffix is that zone's
offset at ``start``). CSV: header = contract column order, empty field = null, quoting only where
needed, ``\\n`` line ends. Amounts always with two decimals (``12.50``); JSONL: one compact object per
line, null for missing, ``properties`` a JSON string holding an object.

Bad rows are *extra* rows (see ``plant``): every real row stays and is correct.
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from dagster_project.lib.contract import AMOUNT, DATE, INT, SOURCES, TS
from dagster_project.lib.landing import DONE_SUFFIX

FORMAT = {
    "users": "csv", "products": "csv", "orders": "csv", "order_items": "csv", "events": "jsonl",
    "returns": "csv", "shipments": "parquet", "cs_tickets": "jsonl", "campaigns": "csv",
    "marketing_touches": "parquet", "inventory_snapshots": "csv.gz", "experiment_assignments": "csv",
    "member_events": "csv", "ad_spend": "csv", "private_domain_events": "csv",
}
TS_STYLE = {
    "users": "offset", "products": "local", "orders": "local", "events": "utc", "returns": "local",
    "cs_tickets": "offset", "campaigns": "local", "experiment_assignments": "utc", "member_events": "offset",
    "private_domain_events": "offset",
}
# a plain string column (no enum, no pattern) that receives invalid UTF-8 bytes for bad_encoding
ENCODING_COLUMN = {
    "users": "city", "orders": "city", "order_items": "sku_id", "events": "page", "returns": "reason",
    "cs_tickets": "category", "inventory_snapshots": "warehouse_id", "experiment_assignments": "variant",
    "member_events": "order_id", "ad_spend": "campaign_id", "private_domain_events": "staff_id",
}
BAD_ENUM_VALUES = {
    ("users", "channel"): "myspace", ("orders", "channel"): "myspace", ("orders", "status"): "shipping_soon",
    ("events", "event_name"): "page_scroll", ("events", "platform"): "harmonyos",
    ("returns", "status"): "lost_in_space", ("cs_tickets", "channel"): "carrier_pigeon",
    ("campaigns", "type"): "lottery", ("marketing_touches", "channel"): "carrier_pigeon",
    ("member_events", "type"): "vip_party", ("ad_spend", "channel"): "myspace",
    ("private_domain_events", "channel"): "carrier_pigeon", ("private_domain_events", "event_type"): "poke",
}
BAD_TYPE_VALUES = {
    INT: ("abc", "12a", "seven"),
    AMOUNT: ("abc", "12,5", "1O.00", "12.3.4"),
    TS: ("2026-13-45 25:61:00", "not-a-date", "2026/99/99 99:99"),
    DATE: ("2026-13-45", "20xx-01-01"),
}
BAD_BYTES = "\udcff\udcfe"  # encodes (surrogateescape) to b"\xff\xfe": never valid UTF-8


def encoding_of(source: str, day: int, weekday: int) -> str:
    if source in ("products", "campaigns"):
        return "gb18030"
    if source == "users":
        if day % 3 == 2:
            return "gb18030"
        return "utf-8-sig" if weekday >= 5 else "utf-8"
    if source == "orders":
        return "utf-8-sig" if weekday >= 5 else "utf-8"
    return "utf-8"


def _offset_suffix(offset: int) -> str:
    sign = "+" if offset >= 0 else "-"
    o = abs(offset)
    return f"{sign}{o // 3600:02d}:{(o % 3600) // 60:02d}"


def format_table(source: str, df: pl.DataFrame, offset: int) -> pl.DataFrame:
    """Typed table -> text columns (ints stay ints in JSONL)."""
    style = TS_STYLE.get(source)
    exprs = []
    for c in SOURCES[source].columns:
        col = pl.col(c.name)
        if c.kind == TS:
            if style == "local":
                e = pl.from_epoch(col + offset, time_unit="s").dt.strftime("%Y-%m-%d %H:%M:%S")
            elif style == "offset":
                e = pl.from_epoch(col + offset, time_unit="s").dt.strftime("%Y-%m-%dT%H:%M:%S") \
                    + pl.lit(_offset_suffix(offset))
            else:
                e = pl.from_epoch(col, time_unit="s").dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        elif c.kind == AMOUNT:
            e = pl.format("{}.{}", col // 100, (col % 100).cast(pl.Utf8).str.zfill(2))
        elif c.kind == INT and FORMAT[source] != "jsonl":
            e = col.cast(pl.Utf8)
        else:
            e = col
        exprs.append(e.alias(c.name))
    return df.select(exprs + [pl.col("_day")])


def _csv_field(v) -> str:
    if v is None:
        return ""
    v = str(v)
    if any(ch in v for ch in ',"\n\r') or v != v.strip():
        return '"' + v.replace('"', '""') + '"'
    return v


def _fmt_cents(c: int) -> str:
    sign = "-" if c < 0 else ""
    c = abs(c)
    return f"{sign}{c // 100}.{c % 100:02d}"


class BadRowPlanter:
    """Extra rows, each breaking exactly one contract rule (contract.RULES names)."""

    def __init__(self, seed: int, bad_rate: float):
        self.rng = np.random.Generator(np.random.PCG64([seed, 0xBAD]))
        self.bad_rate = bad_rate
        self.counters: dict[str, int] = {}
        self.planted: list[dict] = []

    def _fresh(self, source: str, row: dict) -> None:
        n = self.counters.get(source, 0) + 1
        self.counters[source] = n
        if source in ("users", "experiment_assignments"):
            row["user_id"] = f"U9{n:07d}"
        elif source in ("products", "inventory_snapshots"):
            row["sku_id"] = f"SKU9{n:04d}"
        elif source == "orders":
            row["order_id"] = f"O9999{n:05d}"
        elif source == "order_items":
            row["line_no"] = str(90 + n)
        elif source == "events":
            row["event_id"] = f"E9999{n:06d}"
        elif source == "returns":
            row["return_id"] = f"R9999{n:05d}"
        elif source == "shipments":
            row["shipment_id"] = f"SH9999{n:05d}"
        elif source == "cs_tickets":
            row["ticket_id"] = f"TK9999{n:05d}"
        elif source == "campaigns":
            row["campaign_id"] = f"C9{n:03d}"
        elif source == "marketing_touches":
            row["touch_id"] = f"T9999{n:05d}"
        elif source == "member_events":
            row["event_id"] = f"ME9{n:07d}"
        elif source == "ad_spend":
            row["campaign_id"] = f"C9{n:04d}"
        elif source == "private_domain_events":
            row["event_id"] = f"PD9{n:08d}"

    def kinds(self, source: str, fmt: str, encoding: str) -> list[str]:
        src = SOURCES[source]
        key = set(src.key)
        k = ["missing_required", "duplicate_key"]
        if fmt != "parquet" and any(c.kind in (INT, AMOUNT, TS, DATE) and c.name not in key for c in src.columns):
            k.append("bad_type")
        if any(c.enum for c in src.columns):
            k.append("bad_enum")
        if fmt != "parquet" and any(c.kind == AMOUNT for c in src.columns):
            k.append("negative_amount")
        if source == "order_items":
            k.append("unknown_key")
        if fmt in ("csv", "csv.gz", "jsonl") and encoding.startswith("utf-8") and source in ENCODING_COLUMN:
            k.append("bad_encoding")
        return sorted(k)

    def make(self, source: str, kind: str, base: dict, fmt: str) -> tuple[dict, str | None]:
        """A bad row from a copy of a real row; returns (row, column)."""
        rng = self.rng
        src = SOURCES[source]
        key = set(src.key)
        row = dict(base)
        if kind == "duplicate_key":
            return row, None
        self._fresh(source, row)
        col = None
        if kind == "missing_required":
            cands = [c.name for c in src.columns if c.required and c.name not in key]
            col = cands[int(rng.integers(len(cands)))]
            row[col] = None
        elif kind == "bad_type":
            cands = [c for c in src.columns if c.kind in (INT, AMOUNT, TS, DATE) and c.name not in key]
            c = cands[int(rng.integers(len(cands)))]
            col = c.name
            vals = BAD_TYPE_VALUES[c.kind]
            row[col] = vals[int(rng.integers(len(vals)))]
        elif kind == "bad_enum":
            cands = [c.name for c in src.columns if c.enum]
            col = cands[int(rng.integers(len(cands)))]
            row[col] = BAD_ENUM_VALUES[(source, col)]
        elif kind == "negative_amount":
            if source == "orders":
                col = "discount_amount"
                x = 100 * int(rng.integers(1, 30))
                items = _cents(row["items_amount"])
                ship = _cents(row["shipping_fee"]) if row["shipping_fee"] is not None else 0
                row[col] = _fmt_cents(-x)
                row["pay_amount"] = _fmt_cents(items + x + ship)
            else:
                cands = [c.name for c in src.columns if c.kind == AMOUNT]
                col = cands[int(rng.integers(len(cands)))]
                v = _cents(row[col]) if row[col] is not None else 0
                row[col] = _fmt_cents(-(v if v > 0 else 500))
        elif kind == "unknown_key":
            col = "order_id"
            n = self.counters[source]
            row["order_id"] = f"O9998{n:05d}"  # a namespace no orders row (good or bad) uses
            row["line_no"] = "1"
        elif kind == "bad_encoding":
            col = ENCODING_COLUMN[source]
            v = row[col] if row[col] is not None else ""
            half = len(v) // 2
            row[col] = v[:half] + BAD_BYTES + v[half:]
        return row, col

    def plant(self, source: str, fmt: str, encoding: str, file_name: str, rows: list, to_dict,
              render) -> list:
        """rows: list of real rows (any representation); to_dict(row)->dict; render(dict)->row.
        Returns the new list with bad rows inserted and records them."""
        n = len(rows)
        nbad = int(self.rng.binomial(n, self.bad_rate)) if n and self.bad_rate > 0 else 0
        if nbad == 0:
            return rows
        kinds = self.kinds(source, fmt, encoding)
        inserts = []  # (position: insert before real index, seq, row, kind, col)
        duplicated: set[int] = set()
        for j in range(nbad):
            kind = kinds[int(self.rng.integers(len(kinds)))]
            if kind == "duplicate_key":
                free = n - len(duplicated)
                if free <= 0:
                    kind = "missing_required"
                else:
                    i = int(self.rng.integers(n))
                    while i in duplicated:
                        i = (i + 1) % n
                    duplicated.add(i)
                    pos = int(self.rng.integers(i + 1, n + 1))
                    inserts.append((pos, j, rows[i], kind, None))
                    continue
            i = int(self.rng.integers(n))
            base = to_dict(rows[i])
            bad, col = self.make(source, kind, base, fmt)
            pos = int(self.rng.integers(0, n + 1))
            inserts.append((pos, j, render(bad), kind, col))
        inserts.sort(key=lambda t: (t[0], t[1]))
        out = []
        k = 0
        for i in range(n + 1):
            while k < len(inserts) and inserts[k][0] == i:
                _, _, r, kind, col = inserts[k]
                out.append(r)
                self.planted.append({"source": source, "file_name": file_name, "row_number": len(out),
                                     "rule": kind, "column": col})
                k += 1
            if i < n:
                out.append(rows[i])
        return out


def _cents(s: str) -> int:
    neg = s.startswith("-")
    a, _, b = s.lstrip("-").partition(".")
    v = int(a) * 100 + int((b + "00")[:2])
    return -v if neg else v


PARQUET_SCHEMAS = {
    "shipments": pa.schema([
        ("shipment_id", pa.string()), ("order_id", pa.string()), ("carrier", pa.string()),
        ("warehouse_id", pa.string()), ("shipped_at", pa.timestamp("us", tz="UTC")),
        ("delivered_at", pa.timestamp("us", tz="UTC")), ("province", pa.string()),
    ]),
    "marketing_touches": pa.schema([
        ("touch_id", pa.string()), ("campaign_id", pa.string()), ("user_id", pa.string()),
        ("channel", pa.string()), ("sent_at", pa.timestamp("us", tz="UTC")),
        ("opened_at", pa.timestamp("us", tz="UTC")), ("clicked_at", pa.timestamp("us", tz="UTC")),
    ]),
}


def write_source(source: str, df: pl.DataFrame, landing: Path, clock, planter: BadRowPlanter) -> dict:
    """Write all files of one source; returns {file_name: good_rows}."""
    fmt = FORMAT[source]
    cols = list(SOURCES[source].column_names)
    out_dir = landing / source
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    if fmt == "parquet":
        text = df
    else:
        text = format_table(source, df, clock.offset)
    days = sorted(set(text["_day"].to_list()))
    parts = text.partition_by("_day", as_dict=True, maintain_order=True)
    header = ",".join(cols)
    for d in days:
        part = parts[(d,)].drop("_day")
        fname = f"{source}_{clock.date(d).strftime('%Y%m%d')}.{fmt}"
        enc = encoding_of(source, d, int(clock.weekday[d]))
        n = part.height
        written[fname] = n
        if fmt == "parquet":
            rows = part.rows()
            rows = planter.plant(source, fmt, enc, fname, rows, lambda r: dict(zip(cols, r)),
                                 lambda r: tuple(r[c] for c in cols))
            schema = PARQUET_SCHEMAS[source]
            arrays = []
            for j, field in enumerate(schema):
                vals = [r[j] for r in rows]
                if pa.types.is_timestamp(field.type):
                    vals = [None if v is None else int(v) * 1_000_000 for v in vals]
                arrays.append(pa.array(vals, type=field.type))
            table = pa.Table.from_arrays(arrays, schema=schema)
            pq.write_table(table, out_dir / fname, compression="zstd")
            _mark_done(out_dir / fname)
            continue
        if fmt == "jsonl":
            body = part.write_ndjson()
            lines = body.split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            lines = planter.plant(source, fmt, enc, fname, lines, json.loads,
                                  lambda r: json.dumps(r, ensure_ascii=False, separators=(",", ":")))
            data = ("\n".join(lines) + "\n").encode("utf-8", errors="surrogateescape")
        else:
            body = part.write_csv(include_header=False, null_value="", quote_style="necessary")
            lines = body.split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            lines = planter.plant(source, fmt, enc, fname, lines,
                                  lambda r: _csv_row_to_dict(r, cols),
                                  lambda r: ",".join(_csv_field(r[c]) for c in cols))
            text_all = header + "\n" + "\n".join(lines) + "\n"
            if enc == "gb18030":
                data = text_all.encode("gb18030")
            else:
                data = text_all.encode("utf-8", errors="surrogateescape")
                if enc == "utf-8-sig":
                    data = b"\xef\xbb\xbf" + data
            if fmt == "csv.gz":
                data = gzip.compress(data, compresslevel=6, mtime=0)
        (out_dir / fname).write_bytes(data)
        _mark_done(out_dir / fname)
    return written


def _mark_done(path: Path) -> None:
    """`<file>.done` beside a file the generator has finished writing: the writer knows it is
    done, so `ecomwh run` right after `ecomwh generate` loads it at once instead of waiting
    EW_LANDING_SETTLE_S for it to stop changing (lib/ingest.wait_until_settled)."""
    path.with_name(path.name + DONE_SUFFIX).touch()


def _csv_row_to_dict(line: str, cols: list[str]) -> dict:
    import csv
    vals = next(csv.reader(io.StringIO(line)))
    return {c: (v if v != "" else None) for c, v in zip(cols, vals)}
