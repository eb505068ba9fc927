"""The pandas peer of `make bench`: repurchase_rate_30d, cohort retention and the funnel in plain pandas.

    .venv/bin/python benchmarks/peers.py path/to/warehouse.duckdb [--timezone Asia/Shanghai]

A straightforward pandas implementation of three metric marts, computed from the same raw tables our dbt
path starts from (`dbt run --full-refresh --select +mart_repurchase_cohort +mart_cohort_retention
+mart_funnel_daily`), then compared with what our marts hold:

- reads (timed as read_seconds; DuckDB only reads, read_only=True, needed columns only):
  raw.users, raw.orders, raw.events with their lineage columns (_file_date, _loaded_at, _row);
- computes in pandas (compute_seconds), following shared/spec/metrics.md and the rules of our dbt models:
  * a key loaded more than once keeps the row from the latest file (by _file_date, then _loaded_at, then
    _row, each descending, nulls last): users by user_id, orders by order_id, events by event_id (the
    staging models). Superseded loads need nothing: ingest already removed their rows from raw;
  * business dates: the UTC timestamps' calendar date in the business time zone (EW_TIMEZONE, default
    Asia/Shanghai, the dbt var business_timezone);
  * customers: users sharing a phone_hash are one customer keyed by the smallest of their user_ids, a user
    without phone_hash is its own customer, an order or event user_id without a users row keeps its
    user_id as key (int_users_unified, int_orders_enriched);
  * login stitching: an anonymous_id belongs to the user of its most recent event carrying both ids (ties:
    larger event_id); an event's user is its own user_id, else its device's (int_anonymous_ids_stitched,
    int_events_attributed);
  * valid order: paid_ts not null and status not cancelled; purchase day = business date of order_ts of a
    valid order; first purchase = earliest purchase day; data end date = latest business date of any order
    or event (int_data_end_dates_resolved);
  * mart_repurchase_cohort: per first-purchase month, customers, those with a second purchase day within 30
    days (day 30 counts), the rate, complete when the month's last day + 30 <= data end date;
  * mart_cohort_retention: week (ISO, Monday) and month cohorts of the first purchase day, period_index
    0..12 whose period starts on or before the data end date, customers with a purchase day in the period;
  * mart_funnel_daily: per session (date = business date of its first event, platform = smallest platform,
    customer = largest customer key of its events), the five steps each reached at its earliest event at
    or after the previous step's time, payment success also when tracking lost the event but the order
    carried by the session's first payment_submit at step 4 is paid and that submit was logged in as the
    order's customer (counted in untracked_sessions); new vs returning by the customer's first purchase
    day being before the session date; sessions per step, step and overall conversion, drop-off;
- compares (not timed) every row, key and metric column of marts.mart_repurchase_cohort,
  marts.mart_cohort_retention and marts.mart_funnel_daily: integers exactly, rates to 1e-9 relative.

pandas_peer(db) returns read_seconds, compute_seconds, match, mismatches (the first few differences),
rows (per mart: peer, ours), input_rows, peak_rss_gb (of the calling process) and the peer's own
repurchase_30d rows; it never raises (a failure is match False with "error"). The CLI prints that as
JSON and exits 1 unless match.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import time
import traceback
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dagster_project.lib import dbt_outputs

DEFAULT_TIMEZONE = "Asia/Shanghai"
FUNNEL_STEPS = ["product_view", "add_to_cart", "checkout_start", "payment_submit", "payment_success"]
RETENTION_PERIODS = 13  # k = 0..12
REPURCHASE_WINDOW_DAYS = 30
RATE_REL_TOL = 1e-9
LINEAGE = ["_file_date", "_loaded_at", "_row"]

# The mart columns compared: keys, then metric columns (integers exact, rates to RATE_REL_TOL, the rest equal).
MARTS = {
    "mart_repurchase_cohort": {
        "keys": ["cohort_month"],
        "ints": ["customers", "repurchased_30d"],
        "rates": ["repurchase_rate_30d", "final_repurchase_rate_30d"],
        "exact": ["is_complete", "repurchase_status", "cohort_end_date", "min_observed_days", "data_end_date"],
    },
    "mart_cohort_retention": {
        "keys": ["cohort_grain", "cohort_start", "period_index"],
        "ints": ["cohort_size", "active_customers"],
        "rates": ["retention_rate"],
        "exact": ["period_start", "period_end", "is_complete", "data_end_date"],
    },
    "mart_funnel_daily": {
        "keys": ["event_date", "platform", "customer_type", "step_order"],
        "ints": ["sessions", "previous_step_sessions", "total_sessions", "untracked_sessions"],
        "rates": ["step_conversion", "overall_conversion", "drop_off"],
        "exact": ["step"],
    },
}
# The dbt exposure listing the marts above (dbt/models/_python__exposures.yml): our tables are found
# through it in the manifest, so a mart renamed in dbt fails here, naming it, not as a missing table.
METRIC_MARTS_EXPOSURE = "benchmark_metric_marts"
DATE_COLUMNS = {"cohort_month", "cohort_start", "event_date", "cohort_end_date", "data_end_date",
                "period_start", "period_end"}


# ---------------------------------------------------------------------------------------------- read

def _arrow_to_pandas(table: pa.Table, categorical: tuple[str, ...] = ()) -> pd.DataFrame:
    """Low-cardinality text columns as categoricals, the other text as Arrow-backed strings (pandas' str
    dtype, taken over without a copy), dates as datetime64 (not Python objects)."""
    for name in categorical:
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, pc.dictionary_encode(table.column(name)))
    return table.to_pandas(date_as_object=False, split_blocks=True, self_destruct=True)


def read_raw(db: Path) -> dict[str, pd.DataFrame]:
    """The raw tables the three marts depend on (through staging), needed columns only."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        # large_string, the storage of pandas' str dtype: the text columns need no conversion
        con.execute("set arrow_large_buffer_size = true")

        def read(sql: str, categorical: tuple[str, ...] = ()) -> pd.DataFrame:
            return _arrow_to_pandas(con.sql(sql).to_arrow_table(), categorical)

        lineage = ", ".join(LINEAGE)
        return {
            "users": read(f"select user_id, phone_hash, {lineage} from raw.users"),
            "orders": read(f"select order_id, user_id, status, order_ts, paid_ts, {lineage} from raw.orders",
                           ("status",)),
            "events": read(f"select event_id, event_ts, anonymous_id, user_id, session_id, event_name, platform, "
                           f"order_id, {lineage} from raw.events", ("event_name", "platform")),
        }
    finally:
        con.close()


# ------------------------------------------------------------------------------------------- compute

def latest_version(df: pd.DataFrame, key: str) -> pd.DataFrame:
    """The contract's rule for a key loaded more than once: the row from the latest file wins (by the date
    in the file name, then load time, then row number; descending, nulls last). Repeated keys are found by
    sorting the keys and comparing neighbours (hashing 20M distinct strings costs 3x the memory); only
    their rows are sorted by lineage. The lineage columns are dropped from the result."""
    keys = df[key]
    order = keys.argsort().to_numpy()
    sorted_keys = keys.iloc[order].reset_index(drop=True)
    same_as_next = (sorted_keys.iloc[:-1].reset_index(drop=True)
                    == sorted_keys.iloc[1:].reset_index(drop=True)).to_numpy(dtype=bool, na_value=False)
    del sorted_keys
    repeated_sorted = np.zeros(len(df), dtype=bool)
    repeated_sorted[:-1] |= same_as_next
    repeated_sorted[1:] |= same_as_next
    repeated = np.zeros(len(df), dtype=bool)
    repeated[order] = repeated_sorted
    if not repeated.any():
        return df.drop(columns=LINEAGE)
    versions = df[repeated].sort_values([key, *LINEAGE], na_position="first", kind="stable")
    winners = versions.index[~versions[key].duplicated(keep="last").to_numpy()]
    keep = ~repeated
    keep[df.index.get_indexer(winners)] = True
    return df.drop(columns=LINEAGE)[keep].reset_index(drop=True)


def business_date(ts: pd.Series, tz: str) -> pd.Series:
    """Calendar date (datetime64 at midnight) of naive UTC timestamps in the business time zone."""
    return ts.dt.tz_localize("UTC").dt.tz_convert(tz).dt.tz_localize(None).dt.floor("D")


def month_start(d: pd.Series) -> pd.Series:
    return d.dt.to_period("M").dt.start_time.astype(d.dtype)


def week_start(d: pd.Series) -> pd.Series:
    """Monday of the ISO week."""
    return d - pd.to_timedelta(d.dt.day_of_week, unit="D")


def month_end(d: pd.Series) -> pd.Series:
    return d.dt.to_period("M").dt.end_time.dt.floor("D").astype(d.dtype)


def share(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """numerator / denominator as double, NaN (null) when the denominator is 0 or null."""
    num = numerator.astype("float64")
    den = denominator.astype("float64")
    return num / den.where(den != 0)


def unify_customers(users: pd.DataFrame) -> pd.Series:
    """user_id -> customer_key: users sharing a phone_hash are one customer keyed by their smallest
    user_id; a user without phone_hash is a customer of their own."""
    group = users["phone_hash"].fillna("user:" + users["user_id"])
    keys = users["user_id"].groupby(group).transform("min")
    return pd.Series(keys.to_numpy(), index=users["user_id"].to_numpy())


def data_end_date(orders: pd.DataFrame, events: pd.DataFrame, tz: str) -> pd.Timestamp:
    """The latest business date of any order (valid or not) or event."""
    latest = pd.Series([orders["order_ts"].max(), events["event_ts"].max()]).dropna()
    return business_date(latest, tz).max()


def purchase_days(orders: pd.DataFrame, customer_of: pd.Series, tz: str, data_end: pd.Timestamp) -> pd.DataFrame:
    """One row per customer and purchase day up to data_end, with the customer's first purchase day."""
    orders = orders.assign(order_date=business_date(orders["order_ts"], tz))
    valid = orders["paid_ts"].notna() & orders["status"].notna() & (orders["status"] != "cancelled")
    valid_orders = orders.loc[valid, ["user_id", "order_date"]]
    user = valid_orders["user_id"].astype(object)
    customer = user.map(customer_of).fillna(user)
    days = (pd.DataFrame({"customer_key": customer.to_numpy(), "purchase_date": valid_orders["order_date"].to_numpy()})
            .drop_duplicates())
    days = days[days["purchase_date"] <= data_end]
    days = days.sort_values(["customer_key", "purchase_date"], kind="stable")
    days["purchase_day_seq"] = days.groupby("customer_key").cumcount() + 1
    days["first_purchase_date"] = days.groupby("customer_key")["purchase_date"].transform("min")
    return days


def repurchase_cohort(days: pd.DataFrame, data_end: pd.Timestamp) -> pd.DataFrame:
    firsts = days[days["purchase_day_seq"] == 1].set_index("customer_key")["purchase_date"]
    seconds = days[days["purchase_day_seq"] == 2].set_index("customer_key")["purchase_date"]
    buyers = pd.DataFrame({"first_purchase_date": firsts})
    buyers["second_purchase_date"] = seconds.reindex(buyers.index)
    buyers["is_repurchased_30d"] = (buyers["second_purchase_date"]
                                    <= buyers["first_purchase_date"] + pd.Timedelta(days=REPURCHASE_WINDOW_DAYS))
    buyers["cohort_month"] = month_start(buyers["first_purchase_date"])
    out = (buyers.groupby("cohort_month")
           .agg(customers=("is_repurchased_30d", "size"), repurchased_30d=("is_repurchased_30d", "sum"))
           .reset_index())
    out["repurchase_rate_30d"] = share(out["repurchased_30d"], out["customers"])
    out["cohort_end_date"] = month_end(out["cohort_month"])
    out["is_complete"] = out["cohort_end_date"] + pd.Timedelta(days=REPURCHASE_WINDOW_DAYS) <= data_end
    out["repurchase_status"] = np.where(out["is_complete"], "final", "provisional")
    out["final_repurchase_rate_30d"] = out["repurchase_rate_30d"].where(out["is_complete"])
    observed = (data_end - out["cohort_end_date"]).dt.days
    out["min_observed_days"] = np.where(out["cohort_end_date"] >= data_end, 0,
                                        np.where(out["is_complete"], REPURCHASE_WINDOW_DAYS, observed))
    out["data_end_date"] = data_end
    return out


def cohort_retention(days: pd.DataFrame, data_end: pd.Timestamp) -> pd.DataFrame:
    parts = []
    for grain, start_of in (("week", week_start), ("month", month_start)):
        cohort_start = start_of(days["first_purchase_date"])
        period = start_of(days["purchase_date"])
        if grain == "week":
            index = (period - cohort_start).dt.days // 7
        else:
            index = ((period.dt.year - cohort_start.dt.year) * 12 + period.dt.month - cohort_start.dt.month)
        activity = (pd.DataFrame({"cohort_start": cohort_start, "period_index": index,
                                  "customer_key": days["customer_key"]})
                    .groupby(["cohort_start", "period_index"])["customer_key"].nunique()
                    .rename("active_customers"))
        sizes = cohort_start[days["purchase_day_seq"] == 1].value_counts().rename("cohort_size")
        grid = pd.MultiIndex.from_product([sizes.index, range(RETENTION_PERIODS)],
                                          names=["cohort_start", "period_index"]).to_frame(index=False)
        grid["cohort_size"] = grid["cohort_start"].map(sizes)
        grid["active_customers"] = (activity.reindex(pd.MultiIndex.from_frame(grid[["cohort_start", "period_index"]]))
                                    .fillna(0).astype("int64").to_numpy())
        if grain == "week":
            grid["period_start"] = grid["cohort_start"] + pd.to_timedelta(7 * grid["period_index"], unit="D")
            grid["period_end"] = grid["period_start"] + pd.Timedelta(days=6)
        else:
            months = grid["cohort_start"].dt.to_period("M") + grid["period_index"].to_numpy()
            grid["period_start"] = months.dt.start_time.astype(grid["cohort_start"].dtype)
            grid["period_end"] = month_end(grid["period_start"])
        grid = grid[grid["period_start"] <= data_end].copy()
        grid.insert(0, "cohort_grain", grain)
        parts.append(grid)
    out = pd.concat(parts, ignore_index=True)
    out["retention_rate"] = share(out["active_customers"], out["cohort_size"])
    out["is_complete"] = out["period_end"] <= data_end
    out["data_end_date"] = data_end
    return out


def sessions_funnel(events: pd.DataFrame, customer_of: pd.Series, first_purchase: pd.Series, tz: str,
                    paid_orders: pd.Series) -> pd.DataFrame:
    """One row per session: date, platform, customer, customer_type and funnel steps reached.

    paid_orders: order_id -> customer_key of the orders the order system has seen paid."""
    session, _ = pd.factorize(events["session_id"])
    device, _ = pd.factorize(events["anonymous_id"])
    user, user_ids = pd.factorize(events["user_id"])
    ts = events["event_ts"].to_numpy()

    # login stitching: each device's user is the one on its most recent event carrying both ids
    identified = pd.DataFrame({"device": device, "user": user, "ts": ts})
    identified = identified[(identified["user"] >= 0) & (identified["device"] >= 0)]
    latest = identified[identified["ts"] == identified.groupby("device")["ts"].transform("max")]
    if latest["device"].duplicated().any():  # several events at the same latest time: larger event_id wins
        latest = latest.assign(event_id=events["event_id"].iloc[latest.index].to_numpy())
        latest = latest.sort_values(["device", "event_id"]).drop_duplicates("device", keep="last")
    device_user = np.full(device.max() + 1 if len(device) else 0, -1, dtype=np.int64)
    device_user[latest["device"].to_numpy()] = latest["user"].to_numpy()
    resolved = np.where(user >= 0, user, np.where(device >= 0, device_user[np.maximum(device, 0)], -1))

    # each session's customer: the largest customer key among its events' users. Customer keys are
    # numbered in sort order, so the largest number is the largest key.
    users = pd.Series(user_ids.astype(object))
    customer_keys, customers = pd.factorize(users.map(customer_of).fillna(users), sort=True)
    event_customer = np.where(resolved >= 0, customer_keys[np.maximum(resolved, 0)], -1)
    session_customer = pd.Series(event_customer).groupby(session).max()  # -1: no customer

    # each session's start, date and platform (the smallest)
    platform = events["platform"].astype("category")
    platform = platform.cat.reorder_categories(sorted(platform.cat.categories), ordered=True)
    sessions = pd.DataFrame({"session": session, "ts": ts, "platform": platform.array}) \
        .groupby("session").agg(start=("ts", "min"), platform=("platform", "min"))
    sessions["session_date"] = business_date(sessions["start"], tz)
    first_of_customer = pd.Series(customers).map(first_purchase).to_numpy()
    first = pd.Series(np.where(session_customer.to_numpy() >= 0,
                               first_of_customer[np.maximum(session_customer.to_numpy(), 0)], np.datetime64("NaT")),
                      index=session_customer.index).reindex(sessions.index)
    keys_of_sessions = np.asarray(customers, dtype=object)[np.maximum(session_customer.to_numpy(), 0)]
    sessions["customer_key"] = pd.Series(keys_of_sessions, index=session_customer.index).where(session_customer >= 0)
    sessions["customer_type"] = np.where(first < sessions["session_date"], "returning", "new")

    # funnel steps: each reached at its earliest event at or after the previous step's time
    name = events["event_name"]
    reached_at = None
    steps_reached = pd.Series(0, index=sessions.index)
    for step in FUNNEL_STEPS:
        mask = (name == step).to_numpy()
        candidates = pd.DataFrame({"session": session[mask], "ts": ts[mask]})
        if reached_at is not None:
            previous = reached_at.reindex(candidates["session"]).to_numpy()
            candidates = candidates[candidates["ts"].to_numpy() >= previous]
        if step == "payment_success":
            submitted_at = reached_at
        reached_at = candidates.groupby("session")["ts"].min()
        steps_reached.loc[reached_at.index] += 1

    # payment success the order system vouches for: the order of the session's first payment_submit at
    # or after step 4, paid, and submitted while logged in as its customer
    mask = ((name == "payment_submit") & events["order_id"].notna()).to_numpy()
    submits = pd.DataFrame({"session": session[mask], "ts": ts[mask],
                            "order_id": events["order_id"].to_numpy()[mask],
                            "customer": np.asarray(customers, dtype=object)[np.maximum(event_customer[mask], 0)],
                            "has_customer": event_customer[mask] >= 0})
    submits = submits[submits["ts"].to_numpy() >= submitted_at.reindex(submits["session"]).to_numpy()]
    first_submit = submits.sort_values(["session", "ts", "order_id"]).drop_duplicates("session")
    paid_by = first_submit["order_id"].map(paid_orders)
    confirmed = first_submit.loc[first_submit["has_customer"] & (paid_by == first_submit["customer"]), "session"]
    untracked = pd.Index(confirmed).difference(reached_at.index)
    steps_reached.loc[untracked] += 1
    sessions["steps_reached"] = steps_reached
    sessions["is_payment_untracked"] = sessions.index.isin(untracked)
    return sessions


def funnel_daily(sessions: pd.DataFrame) -> pd.DataFrame:
    """Sessions reaching each step per date, platform and customer type; step and overall conversion."""
    steps_reached = sessions["steps_reached"]
    aggregations = {"total_sessions": ("steps_reached", "size")}
    for k in range(1, len(FUNNEL_STEPS) + 1):
        sessions[f"step_{k}"] = (steps_reached >= k).astype("int64")
        aggregations[f"step_{k}"] = (f"step_{k}", "sum")
    sessions["untracked"] = sessions["is_payment_untracked"].astype("int64")
    aggregations["untracked"] = ("untracked", "sum")
    keys = ["session_date", "platform", "customer_type"]
    counted = sessions.groupby(keys, observed=True, dropna=False).agg(**aggregations)
    counted = counted.reset_index().rename(columns={"session_date": "event_date"})

    rows = []
    for k, step in enumerate(FUNNEL_STEPS, start=1):
        part = counted[["event_date", "platform", "customer_type", "total_sessions"]].copy()
        part["step_order"] = k
        part["step"] = step
        part["sessions"] = counted[f"step_{k}"]
        part["previous_step_sessions"] = counted[f"step_{k - 1}"] if k > 1 else np.nan
        part["step_conversion"] = share(part["sessions"], part["previous_step_sessions"])
        part["overall_conversion"] = share(part["sessions"], counted["step_1"])
        part["drop_off"] = 1 - part["step_conversion"]
        part["untracked_sessions"] = counted["untracked"] if k == len(FUNNEL_STEPS) else 0
        rows.append(part)
    out = pd.concat(rows, ignore_index=True)
    out["platform"] = out["platform"].astype(object)
    return out


def compute(raw: dict[str, pd.DataFrame], tz: str) -> dict[str, pd.DataFrame]:
    """The three marts from the raw tables (popped from `raw`, so each is freed once deduplicated)."""
    users = latest_version(raw.pop("users"), "user_id")
    customer_of = unify_customers(users)
    orders = latest_version(raw.pop("orders"), "order_id")
    events = latest_version(raw.pop("events"), "event_id")
    data_end = data_end_date(orders, events, tz)
    days = purchase_days(orders, customer_of, tz, data_end)
    first_purchase = days[days["purchase_day_seq"] == 1].set_index("customer_key")["purchase_date"]
    paid = orders[orders["paid_ts"].notna()]
    paid_user = paid["user_id"].astype(object)
    paid_orders = pd.Series(paid_user.map(customer_of).fillna(paid_user).to_numpy(),
                            index=paid["order_id"].to_numpy())
    return {
        "mart_repurchase_cohort": repurchase_cohort(days, data_end),
        "mart_cohort_retention": cohort_retention(days, data_end),
        "mart_funnel_daily": funnel_daily(sessions_funnel(events, customer_of, first_purchase, tz, paid_orders)),
    }


# ------------------------------------------------------------------------------------------- compare

def _normalized(df: pd.DataFrame, spec: dict) -> pd.DataFrame:
    cols = spec["keys"] + spec["ints"] + spec["rates"] + spec["exact"]
    df = df[cols].copy()
    for c in cols:
        if c in DATE_COLUMNS:
            df[c] = pd.to_datetime(df[c]).dt.strftime("%Y-%m-%d")
        elif c in spec["rates"]:
            df[c] = df[c].astype("float64")
        elif c in spec["ints"] or c == "period_index" or c == "step_order":
            df[c] = df[c].astype("Int64")
        else:
            df[c] = df[c].astype(object).where(df[c].notna(), None)
    return df


def _is_null(x) -> bool:
    return x is None or x is pd.NA or x is pd.NaT or (isinstance(x, float) and math.isnan(x))


def _same(a, b, rate: bool) -> bool:
    """Both null, or equal (rates: to RATE_REL_TOL relative)."""
    if _is_null(a) or _is_null(b):
        return _is_null(a) and _is_null(b)
    if rate:
        return math.isclose(a, b, rel_tol=RATE_REL_TOL, abs_tol=1e-15)
    return a == b


def compare(ours: pd.DataFrame, peer: pd.DataFrame, spec: dict, label: str, limit: int = 10) -> list[str]:
    ours, peer = _normalized(ours, spec), _normalized(peer, spec)
    keys = spec["keys"]
    diffs: list[str] = []
    for name, df in (("ours", ours), ("peer", peer)):
        dup = df[df.duplicated(keys, keep=False)]
        if len(dup):
            diffs.append(f"{label}: {len(dup)} rows with a repeated key in {name}, e.g. {dup.iloc[0][keys].to_dict()}")
    both = ours.merge(peer, on=keys, how="outer", suffixes=("_ours", "_peer"), indicator=True)
    both = both.sort_values(keys, kind="stable")
    for side, other in (("left_only", "peer"), ("right_only", "ours")):
        missing = both[both["_merge"] == side]
        if len(missing):
            diffs.append(f"{label}: {len(missing)} keys missing in {other}, e.g. "
                         + "; ".join(str(r) for r in missing[keys].head(3).to_dict("records")))
    matched = both[both["_merge"] == "both"]
    for col in spec["ints"] + spec["rates"] + spec["exact"]:
        rate = col in spec["rates"]
        bad = np.array([not _same(x, y, rate) for x, y in
                        zip(matched[f"{col}_ours"].tolist(), matched[f"{col}_peer"].tolist())], dtype=bool)
        if bad.any():
            examples = matched.loc[bad, keys + [f"{col}_ours", f"{col}_peer"]].head(3).to_dict("records")
            diffs.append(f"{label}.{col}: {int(bad.sum())} of {len(matched)} rows differ, e.g. "
                         + "; ".join(str(r) for r in examples))
    return diffs[:limit]


def our_tables(manifest: dict) -> dict[str, str]:
    """Each compared mart's relation, from the dbt manifest's exposure benchmark_metric_marts."""
    tables = dbt_outputs.exposure_tables(METRIC_MARTS_EXPOSURE, manifest)
    if set(tables.nodes) != set(MARTS):
        raise LookupError(f"the dbt exposure {METRIC_MARTS_EXPOSURE} lists {sorted(tables.nodes)}, but the "
                          f"pandas peer computes {sorted(MARTS)} (benchmarks/peers.py MARTS)")
    return {name: tables.table(name) for name in MARTS}


def read_ours(db: Path, manifest: dict) -> dict[str, pd.DataFrame]:
    tables = our_tables(manifest)
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {name: con.sql(f"select * from {relation}").df() for name, relation in tables.items()}
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------- peer

def pandas_peer(db: Path, timezone: str | None = None, return_frames: bool = False,
                manifest: Path | None = None) -> dict:
    """Read the raw tables (read_seconds), compute the three marts in pandas (compute_seconds), compare
    them with our marts in the same DuckDB file (not timed), found through the dbt manifest at
    `manifest` (default: the one of EW_HOME).

    Never raises: `make bench` calls this after an hour of building, so a failure comes back as
    match False with the traceback under "error" (and as the first mismatch)."""
    tz = timezone or os.environ.get("EW_TIMEZONE") or DEFAULT_TIMEZONE
    result: dict = {"timezone": tz, "read_seconds": math.nan, "compute_seconds": math.nan, "match": False,
                    "mismatches": [], "rows": {}, "input_rows": {}}
    try:
        db = Path(db)
        started = time.perf_counter()
        raw = read_raw(db)
        result["read_seconds"] = time.perf_counter() - started
        result["input_rows"] = {name: len(df) for name, df in raw.items()}

        started = time.perf_counter()
        peer = compute(raw, tz)
        result["compute_seconds"] = time.perf_counter() - started
        del raw
        # the largest resident size of this process so far (in `make bench`, of the whole bench process)
        result["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024

        ours = read_ours(db, dbt_outputs.load_manifest(manifest))
        mismatches: list[str] = []
        for name, spec in MARTS.items():
            mismatches += compare(ours[name], peer[name], spec, name)
        result["match"] = not mismatches
        result["mismatches"] = mismatches[:20]
        result["rows"] = {name: {"peer": len(peer[name]), "ours": len(ours[name])} for name in MARTS}
        result["repurchase_30d"] = [
            {"cohort_month": r.cohort_month.strftime("%Y-%m"), "customers": int(r.customers),
             "repurchased_30d": int(r.repurchased_30d), "repurchase_rate_30d": float(r.repurchase_rate_30d),
             "is_complete": bool(r.is_complete)}
            for r in peer["mart_repurchase_cohort"].itertuples()
        ]
        if return_frames:
            result["frames"] = peer
    except Exception as exc:  # noqa: BLE001 - reported, see the docstring
        result["match"] = False
        result["error"] = traceback.format_exc()
        result["mismatches"] = [f"pandas peer failed: {exc!r}", *result["mismatches"]]
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("db", type=Path, help="the pipeline's DuckDB file (raw and marts schemas)")
    ap.add_argument("--timezone", help=f"business time zone (default: EW_TIMEZONE, else {DEFAULT_TIMEZONE})")
    ap.add_argument("--manifest", type=Path, help="the dbt manifest.json that built db (default: EW_HOME's)")
    a = ap.parse_args()
    if not a.db.exists():
        sys.exit(f"no such file: {a.db}")
    result = pandas_peer(a.db, a.timezone, manifest=a.manifest)
    print(json.dumps(result, indent=1, default=str))
    sys.exit(0 if result["match"] else 1)


if __name__ == "__main__":
    main()
