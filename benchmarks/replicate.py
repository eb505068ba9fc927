"""Scale a generated landing folder by replication, file by file (bounded memory), for `make bench`.

    .venv/bin/python benchmarks/replicate.py SOURCE_LANDING TARGET_LANDING --replicas K

The generator holds its whole world in memory (about 1 GB per 20,000 customers x 180 days), so the
benchmark presets M and L are built from one generated world replicated K times. Each landing file
keeps its name and holds the rows of all K replicas (one daily export per source, K times bigger,
as a bigger shop sends), with every person- and transaction-level id made unique to the replica
(user, order, event, session, device, return, shipment, ticket, touch and WeCom contact ids get
the suffix `r<NN>`; phone hashes get their first two hex digits replaced by the replica number, so
they stay 64 hex digits and unify only within a replica).
Replica 0 is the original rows, unchanged, bad rows included. The SKU catalogue, campaigns, ad
spend and inventory snapshots are shared and written once. Every written file gets its `.done`
marker. Each replica behaves exactly like the original customers (same rates, same seasonality),
which is what a speed benchmark needs; it is not a new statistical sample.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dagster_project.lib.landing import DONE_SUFFIX, detect_encoding  # noqa: E402

SHARED = {"products", "campaigns", "inventory_snapshots", "ad_spend"}  # shop-level, not per customer
ID_COLUMNS = ("user_id", "order_id", "event_id", "session_id", "anonymous_id", "return_id", "shipment_id",
              "ticket_id", "touch_id", "external_user_id")
_JSON_IDS = re.compile(rb'("(?:' + "|".join(ID_COLUMNS).encode() + rb')": ?")([^"]*)"')
_JSON_PHONE = re.compile(rb'("phone_hash": ?")[0-9a-f]{2}')


def _jsonl(data: bytes, r: int) -> bytes:
    data = _JSON_IDS.sub(rb'\1\2r%02d"' % r, data)
    return _JSON_PHONE.sub(rb"\g<1>%02x" % r, data)


def _csv(data: bytes, r: int) -> bytes:
    encoding, _ = detect_encoding([data], [data])  # as ingest reads it: UTF-8 (BOM or not) or GB18030
    text = data.decode(encoding, "surrogateescape")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        return data
    header = [h.strip().lstrip("\ufeff").lower() for h in rows[0]]
    ids = [i for i, h in enumerate(header) if h in ID_COLUMNS]
    phone = header.index("phone_hash") if "phone_hash" in header else None
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(rows[0])
    for row in rows[1:]:
        for i in ids:
            if i < len(row) and row[i].strip():
                row[i] = row[i] + f"r{r:02d}"
        if phone is not None and phone < len(row) and len(row[phone]) == 64:
            row[phone] = f"{r:02x}" + row[phone][2:]
        writer.writerow(row)
    codec = "utf-8" if encoding == "utf-8-sig" else encoding
    prefix = b"\xef\xbb\xbf" if encoding == "utf-8-sig" else b""
    return prefix + out.getvalue().encode(codec, "surrogateescape")


def _suffixed_table(table: pa.Table, r: int) -> pa.Table:
    for i, name in enumerate(table.column_names):
        if name in ID_COLUMNS and pa.types.is_string(table.schema.field(i).type):
            table = table.set_column(i, name, pc.binary_join_element_wise(
                table.column(i), pa.scalar(f"r{r:02d}"), ""))
    return table


def _replicate_file(task: tuple[Path, Path, int]) -> int:
    """All replicas of one landing file into one file of the same name."""
    src, dst_dir, replicas = task
    dst = dst_dir / src.name
    if src.name.endswith(".jsonl"):
        data = src.read_bytes()
        if data and not data.endswith(b"\n"):
            data += b"\n"
        dst.write_bytes(data + b"".join(_jsonl(data, r) for r in range(1, replicas)))
    elif src.name.endswith(".csv"):
        data = src.read_bytes()
        parts = [data if data.endswith(b"\n") else data + b"\n"]
        for r in range(1, replicas):
            body = _csv(data, r)
            parts.append(body[body.index(b"\n") + 1:])  # header once
        dst.write_bytes(b"".join(parts))
    elif src.name.endswith(".parquet"):
        tables = [pq.read_table(src)]
        for r in range(1, replicas):
            tables.append(_suffixed_table(tables[0], r))
        pq.write_table(pa.concat_tables(tables), dst)
    else:
        raise ValueError(f"{src}: no replication rule for this format")
    (dst_dir / (src.name + DONE_SUFFIX)).touch()  # after the file: ingest loads it without waiting
    return dst.stat().st_size


def replicate(source: Path, target: Path, replicas: int, workers: int = 2) -> dict:
    started = time.perf_counter()
    tasks = []
    for folder in sorted(p for p in source.iterdir() if p.is_dir()):
        out = target / folder.name
        out.mkdir(parents=True, exist_ok=True)
        for f in sorted(folder.iterdir()):
            if folder.name not in SHARED and f.name.endswith(DONE_SUFFIX):
                continue  # written again after its replicated file
            if folder.name in SHARED:
                shutil.copy2(f, out / f.name)
            else:
                tasks.append((f, out, replicas))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        written = sum(pool.map(_replicate_file, tasks, chunksize=8))
    return {"replicas": replicas, "files": len(tasks), "bytes_written": written,
            "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("source", type=Path)
    ap.add_argument("target", type=Path)
    ap.add_argument("--replicas", type=int, required=True)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    print(replicate(a.source, a.target, a.replicas, a.workers))


if __name__ == "__main__":
    main()
