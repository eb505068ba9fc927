"""The figures issue 17 ("definitions", docs/metrics.md) changed, read off a built warehouse the way its
dashboards show them, so a before/after can be rerun.

    .venv/bin/python benchmarks/definition_figures.py .ew                  # one state folder (EW_HOME)
    .venv/bin/python benchmarks/definition_figures.py BEFORE_HOME AFTER_HOME  # a markdown before/after table

Works on a warehouse built before the change too (columns that did not exist read "n/a"): build the
demo once with the old code and once with the new (`ecomwh generate && ecomwh run`) and pass both folders.
Read-only on <EW_HOME>/warehouse.duckdb.
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb

NA = "n/a"


def _pct(x) -> str:
    return NA if x is None else f"{100 * x:.1f}%"


def _one(con, sql: str):
    try:
        row = con.execute(sql).fetchone()
    except duckdb.Error:
        return None
    return row if row is None or len(row) > 1 else row[0]


def figures(home: Path) -> dict[str, str]:
    con = duckdb.connect(str(Path(home) / "warehouse.duckdb"), read_only=True)
    try:
        return _figures(con)
    finally:
        con.close()


def _str(x) -> str:
    return NA if x is None else str(x)


def _figures(con) -> dict[str, str]:
    out: dict[str, str] = {}
    q = lambda sql: _one(con, sql)  # noqa: E731
    # built by the code of issue 17 (its charts filter what the old ones did not)
    new_code = q("select count(*) from marts.mart_source_lag") is not None

    # B1 new-user retention, as the dashboard tiles compute it
    for n in (1, 7, 30):
        out[f"B1 D{n} new-user retention"] = _pct(q(
            f"select sum(d{n}_users) / sum(case when d{n}_users is not null then new_users end) "
            "from marts.mart_activity_retention"))
    new_users = q("select sum(new_users) from marts.mart_activity_retention")
    out["B1 new users counted"] = f"{new_users:,}"
    out["B1 first registrations left out (share)"] = _pct(q(
        "select sum(excluded_users) / sum(new_users + excluded_users) from marts.mart_activity_retention"))

    # B2 period repurchase: the completeness flags, and the month cut by the data start
    charted = con.execute(
        "select strftime(period_start, '%Y-%m'), period_repurchase_rate from marts.mart_repurchase_period "
        "where period_grain = 'month' order by 1").fetchall()
    out["B2 monthly chart draws"] = _str(q(
        "select count(*) || ' months, ' || min(strftime(period_start, '%Y-%m')) || ' .. ' "
        "|| max(strftime(period_start, '%Y-%m')) from marts.mart_repurchase_period where period_grain = 'month'"
        + (" and is_complete" if new_code else "")))
    out["B2 months flagged complete"] = _str(q(
        "select count(*) filter (where is_complete) || ' of ' || count(*) from marts.mart_repurchase_period "
        "where period_grain = 'month'"))
    first_month, first_rate = charted[0]
    first_complete = q("select is_complete from marts.mart_repurchase_period where period_grain = 'month' "
                       f"and strftime(period_start, '%Y-%m') = '{first_month}'")
    out[f"B2 first month {first_month} (cut by the data start): rate, complete?"] = (
        f"{_pct(first_rate)}, {first_complete}")
    out["B2 quarters flagged complete"] = _str(q(
        "select string_agg(strftime(period_start, '%Y-%m'), ', ' order by period_start) "
        "from marts.mart_repurchase_period where period_grain = 'quarter' and is_complete"))

    # B3 the 90-day cycle trend: the earliest point charted (before: every as-of date; after: full windows)
    has_full = q("select count(*) from marts.mart_repurchase_cycle where is_full_window") is not None
    # the charts of the new code draw full windows only, those of the old one every as-of date
    charted = "where is_full_window" if new_code and has_full else ""
    out["B3 cycle chart's first point: as of, mean gap (days)"] = _str(q(
        "select strftime(as_of_date, '%Y-%m-%d') || ', ' || round(mean_gap_days, 1) from marts.mart_repurchase_cycle "
        f"{charted} order by as_of_date limit 1"))

    # B4 first-to-repeat funnel: reached a 2nd purchase day, per cohort
    has_horizon = q("select count(horizon_days) from marts.mart_repurchase_funnel") is not None
    for month in ("2026-06", "2026-09"):
        where = f"first_channel = 'all' and strftime(cohort_month, '%Y-%m') = '{month}'"
        if has_horizon:
            for n in (30, 90):
                out[f"B4 cohort {month} reached 2nd within {n} days"] = _pct(q(
                    f"select reached_2nd_share from marts.mart_repurchase_funnel where {where} and horizon_days = {n}"))
            out[f"B4 cohort {month} reached 2nd, cumulative to the data end"] = NA
        else:
            for n in (30, 90):
                out[f"B4 cohort {month} reached 2nd within {n} days"] = NA
            out[f"B4 cohort {month} reached 2nd, cumulative to the data end"] = _pct(q(
                f"select reached_2nd_share from marts.mart_repurchase_funnel where {where}"))

    # B5 slow movers in the latest complete month, and how many of them sold on 10+ days of it
    latest = "(select max(month_start) from marts.mart_product_slow_movers)"
    out["B5 slow movers, latest complete month"] = str(q(
        f"select count(*) from marts.mart_product_slow_movers where is_slow_mover and month_start = {latest}"))
    out["B5 of them selling on 10+ days of that month"] = str(q(f"""
        select count(*) from marts.mart_product_slow_movers s
        where s.is_slow_mover and s.month_start = {latest}
          and (select count(distinct order_date) from marts.fct_order_items i
               where i.sku_id = s.sku_id and i.is_valid
                 and date_trunc('month', i.order_date) = s.month_start) >= 10"""))
    out["B5 overstocked SKUs (售罄率 < 5%), latest complete month"] = str(q(
        f"select count(*) from marts.mart_product_slow_movers where is_overstock and month_start = {latest}")) \
        if q("select count(is_overstock) from marts.mart_product_slow_movers") is not None else NA

    # B6 product revenue ranked by ABC (90 days)
    revenue = q("select sum(revenue_amount) from marts.mart_product_abc")
    out["B6 product revenue in the ABC window (CNY)"] = f"{revenue:,.0f}"
    out["B6 A-class SKUs"] = str(q("select count(*) from marts.mart_product_abc where abc_class = 'A'"))
    top = q("select revenue_amount from marts.mart_product_top10_daily "
            "where ranking_metric = 'revenue' and rank_no = 1 order by order_date desc limit 1")
    out["B6 top SKU's revenue on the data end date (CNY)"] = f"{top:,.2f}"

    # B7 campaign ROI by tier (tagged GMV / cost)
    for tier in ("big_promotion", "daily"):
        row = q(f"""select count(*), sum(tagged_gmv) / sum(cost_amount) from marts.mart_campaign_roi
                    where campaign_tier = '{tier}'""")
        out[f"B7 {tier}: campaigns, tagged GMV ROI 1:x"] = f"{row[0]}, {row[1]:.2f}"
    out["B7 中秋/国庆/双12 campaigns tiered big"] = str(q(
        "select count(*) from marts.mart_campaign_roi where campaign_tier = 'big_promotion' "
        "and (campaign_name like '%中秋%' or campaign_name like '%国庆%' or campaign_name like '%双12%')"))

    # B8 the checkout experiment
    for variant in ("control", "treatment"):
        row = q(f"""select users_assigned, users, conversions from marts.mart_experiment_results
                    where experiment_id = 'exp_checkout_v2' and variant = '{variant}'""")
        out[f"B8 exp_checkout_v2 {variant}: assigned, full window, converted"] = ", ".join(f"{v:,}" for v in row)
    row = q("""select relative_lift, p_value, verdict from marts.mart_experiment_results
               where experiment_id = 'exp_checkout_v2' and variant = 'treatment'""")
    out["B8 exp_checkout_v2 relative lift, p, verdict"] = f"{_pct(row[0])}, {row[1]:.4f}, {row[2]}"
    out["B8 customers in both arms (left out)"] = _str(q(
        "select max(conflicting_customers) from marts.mart_experiment_results where experiment_id = 'exp_checkout_v2'"))

    # B9 LTV-30 over all cohorts with the horizon
    ltv = q("select sum(net_revenue) / sum(customers) from marts.mart_ltv_cohort "
            "where first_channel = 'all' and horizon_days = 30")
    out["B9 LTV-30, all cohorts (CNY per customer)"] = f"{ltv:.2f}"
    out["B9 cohorts with an LTV-30 row"] = str(q(
        "select count(*) from marts.mart_ltv_cohort where first_channel = 'all' and horizon_days = 30"))

    # B10 the data end date each mart uses
    out["B10 data end: repurchase marts"] = str(q("select max(data_end_date) from marts.mart_repurchase_cohort"))
    out["B10 data end: activity retention"] = str(
        q("select max(data_end_date) from marts.mart_activity_retention")
        or q("select max(event_date) from staging.stg_tracking__events"))
    out["B10 data end: segments"] = str(q(
        "select max(as_of_date) from marts.mart_customer_segments where is_data_end_date"))
    out["B10 data end: predicted LTV"] = str(q("select max(as_of_date) from marts.mart_ltv_predicted"))
    out["B10 sources behind the data end date (lag days)"] = _str(q(
        "select coalesce(string_agg(source || ' ' || lag_days, ', ' order by source) filter (where lag_days > 0), "
        "'none') from marts.mart_source_lag"))

    # B11 the churn-warning list on the data end date
    row = q("""select count(*) filter (where churn_warning),
                      count(*) filter (where churn_warning and recency_days < 30)
               from marts.mart_customer_segments where is_data_end_date""")
    out["B11 churn-warning customers"] = f"{row[0]:,}"
    out["B11 of them bought in the last 30 days"] = f"{row[1]:,}"

    # B12 repeat revenue share, coupon redemption, the payment step
    out["B12 repeat revenue share, all months"] = _pct(q(
        "select sum(repeat_net_revenue) / sum(net_revenue) from marts.mart_repurchase_period "
        "where period_grain = 'month'"))
    out["B12 coupon redemption rate"] = _pct(q(
        "select sum(claimers_redeemed) / sum(coupon_claimers) from marts.mart_coupon_redemption"))
    row = q("""select sum(sessions) filter (where step_order = 4), sum(sessions) filter (where step_order = 5)
               from marts.mart_funnel_daily""")
    out["B12 payment step drop-off (submit -> success)"] = _pct(1 - row[1] / row[0])
    out["B12 payments counted from the order system (tracking lost)"] = _str(q(
        "select sum(untracked_sessions) from marts.mart_funnel_daily"))
    return out


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print(__doc__, file=sys.stderr)
        return 2
    results = [figures(Path(a)) for a in argv]
    if len(results) == 1:
        for k, v in results[0].items():
            print(f"{k}: {v}")
        return 0
    before, after = results
    print("| figure | before | after |\n|---|---|---|")
    for k in after:
        print(f"| {k} | {before.get(k, NA)} | {after[k]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
