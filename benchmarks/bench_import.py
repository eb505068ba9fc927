"""Time to import one 100k-order export: `python benchmarks/bench_import.py [--orders 100000]`;
rows imported and quarantined per platform on the demo's fixture exports: `--fixtures`.

Writes a synthetic Taobao download (订单报表 GBK CSV, one row per order, plus its 宝贝报表, one row
per item) and a JD download (GBK CSV, one row per SKU with the order amounts repeated) of N orders
each, in the shipped layouts, then times `ecomwh import`'s work (read, convert, keep, write landing
files) for each, and a second import of the same files (a no-op). Prints one line per step; no
pipeline run. `--fixtures` generates the demo world (the `ecomwh generate` defaults) with
`--platform-exports` and imports every platform's exports, printing rows exported, converted and
quarantined per platform.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dagster_project.lib.generator.exports import JD_HEADER, TAOBAO_ITEM_HEADER, TAOBAO_ORDER_HEADER  # noqa: E402
from dagster_project.lib.platforms import shipped_mapping  # noqa: E402
from dagster_project.lib.platforms.store import import_exports  # noqa: E402


def _csv(path: Path, header: list[str], rows) -> int:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    n = 0
    for r in rows:
        w.writerow(r)
        n += 1
    path.write_bytes(buf.getvalue().encode("gb18030"))
    return n


def _orders(n: int, rng: random.Random):
    for i in range(n):
        lines = [(f"SKU{10001 + rng.randrange(300)}", rng.choice((1, 1, 2, 3)), rng.randrange(19, 599) * 100 + 90)
                 for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4)))]
        items = sum(q * p for _, q, p in lines)
        ship = 0 if items >= 9900 else 800
        disc = rng.choice((0, 0, 500, 1500))
        day = 1 + i * 180 // n
        ts = f"2026-{5 + day // 31:02d}-{1 + day % 28:02d} {rng.randrange(24):02d}:{rng.randrange(60):02d}:00"
        yield i, lines, items, ship, disc, ts, f"t_{rng.randrange(10**8):08d}", f"13{rng.randrange(10**9):09d}"


def _m(c: int) -> str:
    return f"{c // 100}.{c % 100:02d}"


def write_taobao(folder: Path, n: int) -> tuple[list[Path], int]:
    orders, items = [], []
    for i, lines, tot, ship, disc, ts, buyer, phone in _orders(n, random.Random(1)):
        oid = f'="{1930000000000000000 + i}"'
        orders.append([oid, buyer, _m(tot), _m(ship), _m(tot + ship), _m(tot + ship - disc), "交易成功", "*某",
                       "浙江省 杭州市 西湖区 某路(310000)", "'" + phone, ts, ts, ts, f"YT{i}", "圆通", "0.00元", ts,
                       sum(q for _, q, _ in lines)])
        for sku, q, p in lines:
            items.append([oid, "维生素C咀嚼片 60粒", _m(p), q, sku, "", "交易成功"])
    o = folder / "ExportOrderList.csv"
    d = folder / "ExportOrderDetailList.csv"
    rows = _csv(o, TAOBAO_ORDER_HEADER, orders) + _csv(d, TAOBAO_ITEM_HEADER, items)
    return [o, d], rows


def write_jd(folder: Path, n: int) -> tuple[list[Path], int]:
    rows = []
    for i, lines, tot, ship, disc, ts, buyer, phone in _orders(n, random.Random(2)):
        for sku, q, p in lines:
            rows.append([300000000000 + i, "1", "维生素C咀嚼片", q, ts, _m(p), f"{tot // 100:,}.{tot % 100:02d}",
                         _m(tot + ship - disc), "完成", buyer.replace("t_", "jd_"), phone, "上海 上海市 浦东新区",
                         _m(ship), ts, ts, "京东物流", f"JD{i}", sku, ts, ""])
    path = folder / "jd_orders.csv"
    return [path], _csv(path, JD_HEADER, rows)


def fixtures() -> None:
    from datetime import date

    from dagster_project.lib.generator import generate
    from dagster_project.lib.generator.exports import PLATFORM_CHANNELS

    with tempfile.TemporaryDirectory(prefix="bench_import_fixtures_") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        generate(tmp / "landing", customers=20000, days=180, seed=42, bad_rate=0.002, start=date(2026, 5, 20),
                 truth_path=tmp / "truth.json", platform_exports=tmp / "exports")
        print(f"demo world + exports generated in {time.perf_counter() - t0:.1f} s")
        print(f"{'platform':<10}{'files':>6}{'exported':>10}{'converted':>10}{'quarantined':>12}{'orders':>8}"
              f"{'seconds':>9}")
        for platform in PLATFORM_CHANNELS:
            files = sorted((tmp / "exports" / platform).iterdir())
            t0 = time.perf_counter()
            recs, _ = import_exports(tmp / "home", tmp / "home" / "landing", shipped_mapping(platform), files)
            took = time.perf_counter() - t0
            new = [r for r in recs if r.status == "imported"]
            orders = sum(len(f.read_text().splitlines()) - 1
                         for f in (tmp / "home" / "landing" / "orders").glob(f"*_import_{platform}.csv"))
            print(f"{platform:<10}{len(files):>6}{sum(r.rows_exported for r in new):>10,}"
                  f"{sum(r.rows_converted for r in new):>10,}{sum(r.rows_quarantined for r in new):>12,}"
                  f"{orders:>8,}{took:>9.1f}", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=100_000)
    ap.add_argument("--fixtures", action="store_true", help="per-platform counts on the demo's fixture exports")
    args = ap.parse_args(argv)
    if args.fixtures:
        fixtures()
        return 0
    with tempfile.TemporaryDirectory(prefix="bench_import_") as tmp:
        tmp = Path(tmp)
        for platform, writer in (("taobao", write_taobao), ("jd", write_jd)):
            folder = tmp / platform
            folder.mkdir()
            files, rows = writer(folder, args.orders)
            size = sum(f.stat().st_size for f in files) / 1e6
            home = tmp / f"home_{platform}"
            t0 = time.perf_counter()
            recs, written = import_exports(home, home / "landing", shipped_mapping(platform), files)
            t1 = time.perf_counter()
            assert sum(r.rows_converted for r in recs) == rows, "every row of the synthetic export converts"
            import_exports(home, home / "landing", shipped_mapping(platform), files)
            t2 = time.perf_counter()
            print(f"{platform}: {args.orders:,} orders, {rows:,} export rows ({size:.1f} MB GBK CSV) -> "
                  f"{len(written)} landing files in {t1 - t0:.1f} s ({rows / (t1 - t0):,.0f} rows/s); "
                  f"the same files again: {t2 - t1:.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
