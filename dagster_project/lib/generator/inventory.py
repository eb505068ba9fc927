"""Daily inventory snapshots per SKU and warehouse, drawn down by the orders' lines."""

from __future__ import annotations

import numpy as np
import polars as pl

from .model import DEEP_STOCK_DAYS, WAREHOUSES


def _make_inventory(rng, clock, sku_ids, sku_launch, l_sku, l_qty, l_day, l_wh, l_cancel):
    n_sku = len(sku_ids)
    days = clock.days
    NW = len(WAREHOUSES)
    sales = np.zeros((days, n_sku, NW), np.int64)
    ok = ~l_cancel & (l_day < days)
    np.add.at(sales, (l_day[ok], l_sku[ok], l_wh[ok]), l_qty[ok])
    demand = sales.sum(axis=0) / max(days, 1) + 0.2  # per sku x wh per day
    on_hand = np.rint(demand * rng.uniform(20, 45, demand.shape) + 30).astype(np.int64)
    # planted overstock: the best seller starts with years of stock (a bulk buy). It sells every day, so
    # it is no slow mover, but its 售罄率 (units / (units + stock)) stays far under 5% every month
    deep = int(np.argmax(sales.sum(axis=(0, 2))))
    on_hand[deep] = np.rint(demand[deep] * DEEP_STOCK_DAYS + 30).astype(np.int64)
    safety = np.rint(demand * 7 + 10).astype(np.int64)
    has_safety = rng.random(n_sku) >= 0.1
    transit = np.zeros_like(on_hand)
    arrive = np.full(on_hand.shape, -1)
    rows_d, rows_s, rows_w, rows_oh, rows_it = [], [], [], [], []
    sku_grid, wh_grid = np.meshgrid(np.arange(n_sku), np.arange(NW), indexing="ij")
    for d in range(days):
        arrived = arrive == d
        on_hand = on_hand + np.where(arrived, transit, 0)
        transit = np.where(arrived, 0, transit)
        arrive = np.where(arrived, -1, arrive)
        on_hand = np.maximum(on_hand - sales[d], 0)
        need = (on_hand < safety + demand * 5) & (transit == 0)
        qty = np.rint(demand * 30 + 20).astype(np.int64)
        transit = np.where(need, qty, transit)
        arrive = np.where(need, d + rng.integers(3, 8, on_hand.shape), arrive)
        live = (sku_launch <= d)[:, None] & np.ones((1, NW), bool)
        rows_d.append(np.full(int(live.sum()), d)); rows_s.append(sku_grid[live]); rows_w.append(wh_grid[live])
        rows_oh.append(on_hand[live]); rows_it.append(transit[live])
    d = np.concatenate(rows_d); s = np.concatenate(rows_s); w = np.concatenate(rows_w)
    dates = np.array([clock.date(i).isoformat() for i in range(days)], dtype=object)
    return pl.DataFrame({
        "snapshot_date": dates[d].tolist(),
        "sku_id": sku_ids[s].tolist(),
        "warehouse_id": np.array(WAREHOUSES, dtype=object)[w].tolist(),
        "on_hand": np.concatenate(rows_oh).astype(np.int64),
        "in_transit": np.concatenate(rows_it).astype(np.int64),
        "safety_stock": pl.Series(np.where(has_safety[s], safety[s, w], -1).astype(np.int64)),
        "_day": d.astype(np.int64),
    }).with_columns(pl.when(pl.col("safety_stock") < 0).then(None).otherwise(pl.col("safety_stock"))
                    .alias("safety_stock")), str(sku_ids[deep])
