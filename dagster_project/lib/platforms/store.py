"""What the importer keeps, and the contract files it lands.

Each imported export is kept converted (Parquet, no names or phone numbers in clear) under
`$EW_HOME/imports/.store/<platform>/<export id>/`, the id being the hash of the export's bytes. After
every import the platform's landing files are rebuilt from all its exports:

- per order, the row of the export that knows most wins: the latest `as_of` (the newest time in the
  export), then the later import; its lines come from that same export, so line sets never mix;
- returns and shipments per key likewise; users per buyer: first seen (registered_at) is the
  earliest order over all exports, phone and region the newest known;
- files are one per month: `<source>/<source>_<YYYYMM01>_import_<platform>.csv` (users per user
  namespace, shared by taobao and tmall); a file is rewritten only when its content changes, and
  ingest replaces a rewritten file's rows. So importing an export twice changes nothing, and an
  overlapping re-export updates orders in place, whatever order the exports are imported in.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from dagster_project.lib import landing
from dagster_project.lib.contract import SOURCES
from dagster_project.lib.platforms import values
from dagster_project.lib.platforms.convert import Conversion, convert_export
from dagster_project.lib.platforms.mapping import Mapping

TABLES = ("orders", "order_items", "returns", "shipments", "buyers")
LANDED_SOURCES = ("orders", "order_items", "returns", "shipments", "users")
_FILE_RE = re.compile(r"^(?P<source>[a-z_]+?)_(?P<date>\d{8})_import_(?P<platform>[A-Za-z0-9_-]+)\.csv$")


def imports_dir(home: Path) -> Path:
    return Path(home) / "imports"


def store_dir(home: Path) -> Path:
    return imports_dir(home) / ".store"


@dataclass
class ExportRecord:
    """One imported export, as `ecomwh import` reports it and raw._imports keeps it."""

    platform: str
    export_name: str
    export_id: str
    status: str                  # imported, already_imported
    rows_exported: int = 0
    rows_converted: int = 0
    rows_quarantined: int = 0
    as_of: str | None = None
    seq: int = 0
    namespace: str = ""
    imported_at: str = ""
    sheets: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def export_id_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:20]


def _frame(rows: list[dict], columns: list[str]) -> pl.DataFrame:
    return pl.DataFrame({c: [r.get(c) for r in rows] for c in columns},
                        schema={c: (pl.Int64 if c == "_origin_row" else pl.Boolean if c == "identified"
                                    else pl.Utf8) for c in columns})


TABLE_COLUMNS = {
    "orders": list(SOURCES["orders"].column_names) + ["_origin_row"],
    "order_items": list(SOURCES["order_items"].column_names) + ["_origin_row"],
    "returns": list(SOURCES["returns"].column_names) + ["_origin_row"],
    "shipments": list(SOURCES["shipments"].column_names) + ["_origin_row"],
    "buyers": ["user_id", "first_order_ts", "channel", "phone_hash", "province", "city", "identified",
               "_origin_row"],
}


def known_exports(home: Path, platform: str) -> list[ExportRecord]:
    root = store_dir(home) / platform
    out = []
    for meta in sorted(root.glob("*/meta.json")) if root.is_dir() else ():
        out.append(ExportRecord(**json.loads(meta.read_text(encoding="utf-8"))))
    return sorted(out, key=lambda r: r.seq)


def all_platforms(home: Path) -> list[str]:
    root = store_dir(home)
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def save_conversion(home: Path, mapping: Mapping, conv: Conversion, export_id: str) -> ExportRecord:
    """Keep one converted export in the store (atomically: a folder renamed into place)."""
    root = store_dir(home) / mapping.platform
    root.mkdir(parents=True, exist_ok=True)
    seq = max((r.seq for r in known_exports(home, mapping.platform)), default=0) + 1
    rec = ExportRecord(
        platform=mapping.platform, export_name=conv.export_name, export_id=export_id, status="imported",
        rows_exported=conv.rows_exported, rows_converted=conv.rows_converted,
        rows_quarantined=conv.rows_quarantined, as_of=conv.as_of, seq=seq,
        namespace=mapping.user_namespace,
        imported_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        sheets=[asdict(s) for s in conv.sheets], notes=list(conv.notes),
    )
    tmp = root / f".{export_id}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for t in TABLES:
        _frame(getattr(conv, t), TABLE_COLUMNS[t]).write_parquet(tmp / f"{t}.parquet")
    refusals = pl.DataFrame(
        {"source": [r.source for r in conv.refusals], "row": [r.row for r in conv.refusals],
         "raw_text": [r.raw_text for r in conv.refusals], "rule": [r.rule for r in conv.refusals],
         "column": [r.column for r in conv.refusals], "reason": [r.reason for r in conv.refusals],
         "file_name": _sheet_files(conv)},
        schema={"source": pl.Utf8, "row": pl.Int64, "raw_text": pl.Utf8, "rule": pl.Utf8,
                "column": pl.Utf8, "reason": pl.Utf8, "file_name": pl.Utf8})
    refusals.write_parquet(tmp / "refusals.parquet")
    (tmp / "meta.json").write_text(json.dumps(asdict(rec), ensure_ascii=False, indent=1), encoding="utf-8")
    final = root / export_id
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return rec


def _sheet_files(conv: Conversion) -> list[str]:
    """The file (and sheet) of each refused row; refusals are appended sheet by sheet."""
    names = [s.file_name for s in conv.sheets for _ in range(s.rows_quarantined)]
    return names + [conv.export_name] * (len(conv.refusals) - len(names))


# ---------------------------------------------------------------------------------------------
def _load(home: Path, platforms: list[str], table: str) -> pl.DataFrame:
    frames = []
    for platform in platforms:
        for rec in known_exports(home, platform):
            df = pl.read_parquet(store_dir(home) / platform / rec.export_id / f"{table}.parquet")
            frames.append(df.with_columns(
                pl.lit(rec.as_of or "").alias("_as_of"), pl.lit(rec.seq).alias("_seq"),
                pl.lit(platform).alias("_platform"), pl.lit(rec.export_name).alias("_origin_file")))
    if not frames:
        schema = {c: (pl.Int64 if c == "_origin_row" else pl.Boolean if c == "identified" else pl.Utf8)
                  for c in TABLE_COLUMNS[table]}
        return pl.DataFrame(schema=schema | {"_as_of": pl.Utf8, "_seq": pl.Int32, "_platform": pl.Utf8,
                                             "_origin_file": pl.Utf8})
    return pl.concat(frames, how="vertical_relaxed")


def _newest_first(df: pl.DataFrame) -> pl.DataFrame:
    return df.sort(["_as_of", "_seq", "_origin_row"], descending=[True, True, False])


def _month(col: str) -> pl.Expr:
    return pl.col(col).str.slice(0, 7).str.replace("-", "") + "01"


def rebuild(home: Path, landing_dir: Path, platform: str, identity: dict[str, str] | None = None) -> dict:
    """Rewrite the platform's landing files from every export it has; returns {file: rows}."""
    recs = known_exports(home, platform)
    namespace = recs[0].namespace if recs else platform
    orders = _newest_first(_load(home, [platform], "orders")).unique("order_id", keep="first", maintain_order=True)
    items = _load(home, [platform], "order_items")
    if items.height:
        best = (_newest_first(items).group_by("order_id", maintain_order=True)
                .agg(pl.col("_seq").first().alias("_best")))
        items = items.join(best, on="order_id").filter(pl.col("_seq") == pl.col("_best")).drop("_best")
    returns = _newest_first(_load(home, [platform], "returns")).unique("return_id", keep="first", maintain_order=True)
    shipments = _newest_first(_load(home, [platform], "shipments")).unique(
        "shipment_id", keep="first", maintain_order=True)
    month_of_order = orders.select("order_id", _month("order_ts").alias("_m"))
    out_tables = {
        "orders": orders.with_columns(_month("order_ts").alias("_m")),
        "order_items": _with_month(items, month_of_order, None),
        "returns": _with_month(returns, month_of_order, "requested_at"),
        "shipments": _with_month(shipments, month_of_order, "shipped_at"),
    }
    written = {}
    for source, df in out_tables.items():
        written.update(_write_months(landing_dir, source, platform, df))
    # users: one namespace may span several stores (taobao and tmall share buyer accounts)
    sharing = [p for p in all_platforms(home)
               if (k := known_exports(home, p)) and k[0].namespace == namespace]
    users = _users(_load(home, sharing, "buyers"), identity or {})
    written.update(_write_months(landing_dir, "users", namespace, users))
    _write_lineage(home, platform, out_tables, namespace, users)
    return written


def _with_month(df: pl.DataFrame, month_of_order: pl.DataFrame, own_ts: str | None) -> pl.DataFrame:
    if df.height == 0:
        return df.with_columns(pl.lit(None, pl.Utf8).alias("_m"))
    df = df.join(month_of_order, on="order_id", how="left")
    fallback = _month(own_ts) if own_ts else _month("_as_of")
    return df.with_columns(pl.coalesce(pl.col("_m"), fallback, pl.lit("19700101")).alias("_m"))


def _users(buyers: pl.DataFrame, identity: dict[str, str]) -> pl.DataFrame:
    cols = list(SOURCES["users"].column_names)
    if buyers.height == 0:
        return pl.DataFrame(schema={c: pl.Utf8 for c in cols + ["_origin_file"]} | {"_origin_row": pl.Int64,
                                                                                   "_m": pl.Utf8})
    buyers = buyers.filter(pl.col("identified") & pl.col("first_order_ts").is_not_null())
    first = (buyers.with_columns(pl.col("first_order_ts").map_elements(
        lambda t: values.timestamp_key(t).isoformat(), return_dtype=pl.Utf8).alias("_k"))
        .sort(["_k", "_seq", "_origin_row"]).unique("user_id", keep="first", maintain_order=True)
        .select("user_id", pl.col("first_order_ts").alias("registered_at"), "channel", "_origin_file",
                "_origin_row"))
    latest = _newest_first(buyers).group_by("user_id", maintain_order=True).agg(
        pl.col("phone_hash").drop_nulls().first(), pl.col("province").drop_nulls().first(),
        pl.col("city").drop_nulls().first())
    users = first.join(latest, on="user_id", how="left")
    if identity:
        mapped = pl.DataFrame({"user_id": list(identity), "_mapped": list(identity.values())})
        users = users.join(mapped, on="user_id", how="left").with_columns(
            pl.coalesce("phone_hash", "_mapped").alias("phone_hash")).drop("_mapped")
    return users.with_columns(pl.lit(None, pl.Utf8).alias("member_level"), pl.lit(None, pl.Utf8).alias("birth_year"),
                              _month("registered_at").alias("_m"))


def _csv_bytes(df: pl.DataFrame, source: str) -> bytes:
    cols = list(SOURCES[source].column_names)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for row in df.select(cols).iter_rows():
        w.writerow(["" if v is None else v for v in row])
    return buf.getvalue().encode("utf-8")


def _key_sort(df: pl.DataFrame, source: str) -> pl.DataFrame:
    key = list(SOURCES[source].key)
    if "line_no" in key:
        return df.with_columns(pl.col("line_no").cast(pl.Int64).alias("_ln")).sort(["order_id", "_ln"]).drop("_ln")
    return df.sort(key)


def landed_files(landing_dir: Path, source: str, owner: str) -> list[Path]:
    folder = Path(landing_dir) / source
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if (m := _FILE_RE.match(p.name)) and m.group("platform") == owner and m.group("source") == source)


def _write_months(landing_dir: Path, source: str, owner: str, df: pl.DataFrame) -> dict:
    folder = Path(landing_dir) / source
    folder.mkdir(parents=True, exist_ok=True)
    wanted: dict[str, pl.DataFrame] = {}
    if df.height:
        for (m,), part in df.partition_by("_m", as_dict=True, maintain_order=True).items():
            wanted[f"{source}_{m}_import_{owner}.csv"] = _key_sort(part, source)
    # a month that no longer has rows keeps an empty file, so ingest replaces its old rows with none
    for stale in landed_files(landing_dir, source, owner):
        wanted.setdefault(stale.name, df.clear())
    written = {}
    for name, part in sorted(wanted.items()):
        data = _csv_bytes(part, source)
        target = folder / name
        # the file is complete once renamed into place: say so with a `.done` marker, or ingest
        # would wait EW_LANDING_SETTLE_S before trusting a file this run has just written
        done = target.with_name(name + landing.DONE_SUFFIX)
        if target.exists() and target.read_bytes() == data:
            done.touch()
            continue
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, target)
        done.touch()
        written[f"{source}/{name}"] = part.height
    return written


def _write_lineage(home: Path, platform: str, tables: dict[str, pl.DataFrame], namespace: str,
                   users: pl.DataFrame) -> None:
    """landing file + row -> export file + row, for raw._import_lineage."""
    frames = []
    for source, df in list(tables.items()) + [("users", users)]:
        if df.height == 0:
            continue
        owner = namespace if source == "users" else platform
        sorted_df = pl.concat([_key_sort(p, source) for p in df.partition_by("_m", maintain_order=True)])
        frames.append(sorted_df.select(
            pl.lit(source).alias("source"),
            (pl.lit(f"{source}_") + pl.col("_m") + pl.lit(f"_import_{owner}.csv")).alias("landing_file"),
            (pl.int_range(pl.len()).over("_m") + 1).alias("landing_row"),
            pl.col("_origin_file").alias("export_file"), pl.col("_origin_row").alias("export_row")))
    lineage = pl.concat(frames) if frames else pl.DataFrame(
        schema={"source": pl.Utf8, "landing_file": pl.Utf8, "landing_row": pl.Int64,
                "export_file": pl.Utf8, "export_row": pl.Int64})
    lineage.write_parquet(store_dir(home) / platform / "lineage.parquet")


# ---------------------------------------------------------------------------------------------
def import_exports(home: Path, landing_dir: Path, mapping: Mapping, paths: list[Path], *,
                   rates=None) -> tuple[list[ExportRecord], dict]:
    """Convert and keep each export (skipping one whose bytes were imported before), then rebuild
    the platform's landing files once. Returns the records and the landing files written."""
    records = []
    changed = False
    for path in paths:
        path = Path(path)
        export_id = export_id_of(path)
        known = {r.export_id: r for r in known_exports(home, mapping.platform)}
        if export_id in known:
            prior = known[export_id]
            records.append(ExportRecord(**{**asdict(prior), "export_name": path.name, "status": "already_imported",
                                           "notes": [f"same bytes as {prior.export_name}, imported before"]}))
            continue
        conv = convert_export(path, mapping, rates=rates)
        records.append(save_conversion(home, mapping, conv, export_id))
        changed = True
    written = rebuild(home, landing_dir, mapping.platform, load_identity(home)) if changed else {}
    return records, written


# ---------------------------------------------------------------------------------------------
def identity_path(home: Path) -> Path:
    return store_dir(home) / "identity.json"


def load_identity(home: Path) -> dict[str, str]:
    p = identity_path(home)
    return json.loads(p.read_text()) if p.exists() else {}


def import_identity_map(home: Path, path: Path, namespaces: dict[str, str]) -> int:
    """A table the user provides linking a platform buyer to a phone (e.g. a membership binding):
    CSV columns platform, buyer_key, phone (or phone_hash). Kept hashed only: user id -> phone_hash."""
    mapping = load_identity(home)
    n = 0
    with open(path, newline="", encoding="utf-8-sig") as fh:
        for i, rec in enumerate(csv.DictReader(fh), start=2):
            platform = (rec.get("platform") or "").strip()
            key = (rec.get("buyer_key") or "").strip()
            ph = (rec.get("phone_hash") or "").strip().lower() or values.phone_hash(rec.get("phone"))
            if not platform or not key or not ph or not re.fullmatch(r"[0-9a-f]{64}", ph):
                raise ValueError(f"{path}:{i}: needs platform, buyer_key and an unmasked phone "
                                 f"(11 digits) or a phone_hash (64 hex)")
            ns = namespaces.get(platform, platform)
            mapping[values.buyer_user_id(ns, key)] = ph
            n += 1
    identity_path(home).parent.mkdir(parents=True, exist_ok=True)
    identity_path(home).write_text(json.dumps(mapping, sort_keys=True))
    return n
