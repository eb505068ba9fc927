"""Funnel, activity-retention and segment marts against the generator's truth.

The warehouse comes from the session fixture `truth_warehouse` (generate + the whole pipeline); the
expected values come from truth.json, which the generator computed from its own rows, or, for segments,
from the raw tables with plain Python here. Both are independent of the dbt SQL.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from zoneinfo import ZoneInfo

import duckdb
import pytest
from mart_rows import dict_rows as _rows  # tests/ is on sys.path (pytest rootdir conftest)

STEPS = ["product_view", "add_to_cart", "checkout_start", "payment_submit", "payment_success"]
SEGMENTS = {"core_loyal", "potential_loyal", "periodic", "new", "at_risk", "churned"}


@pytest.fixture(scope="module")
def con(truth_warehouse):
    c = duckdb.connect(str(truth_warehouse.db), read_only=True)
    yield c
    c.close()


# ---------------------------------------------------------------- funnel

def test_funnel_step_counts_equal_truth(con, truth_warehouse):
    truth = truth_warehouse.truth["funnel"]
    assert truth["steps"] == STEPS
    totals = dict(con.execute(
        "select step, sum(sessions) from marts.mart_funnel_daily group by step").fetchall())
    assert {s: int(totals[s]) for s in STEPS} == truth["all"]

    by_platform: dict[str, dict[str, int]] = defaultdict(dict)
    for platform, step, n in con.execute(
            "select platform, step, sum(sessions) from marts.mart_funnel_daily group by platform, step").fetchall():
        by_platform[platform][step] = int(n)
    assert dict(by_platform) == truth["by_platform"]

    sessions = con.execute(
        "select sum(total_sessions) from marts.mart_funnel_daily where step_order = 1").fetchone()[0]
    assert sessions == truth["sessions"]


def test_payment_step_counts_orders_paid_when_tracking_lost_the_event(con, truth_warehouse):
    """B12: a logged-in session whose payment_success event tracking lost still paid, as the order system
    says: it reaches step 5 and is reported apart as tracking loss, not as payment drop-off."""
    truth = truth_warehouse.truth["funnel"]
    assert truth["untracked_payment_sessions"] > 0  # the generator drops ~2% of payment_success events
    untracked, paid = con.execute("""
        select sum(untracked_sessions), sum(sessions) from marts.mart_funnel_daily where step = 'payment_success'
    """).fetchone()
    assert (untracked, paid) == (truth["untracked_payment_sessions"], truth["all"]["payment_success"])
    assert con.execute("select count(*) from marts.mart_funnel_daily where step_order < 5 "
                       "and untracked_sessions <> 0").fetchone()[0] == 0


def test_funnel_rows_are_consistent(con):
    groups = _rows(con, """
        select event_date, platform, customer_type, count(*) as n_steps,
               min(case when step_order = 1 then step end) as first_step
        from marts.mart_funnel_daily
        group by event_date, platform, customer_type
    """)
    assert groups and all(g["n_steps"] == 5 and g["first_step"] == "product_view" for g in groups)
    rows = _rows(con, """
        select event_date, platform, customer_type, step_order, sessions, step_conversion,
               overall_conversion, drop_off
        from marts.mart_funnel_daily
        order by event_date, platform, customer_type, step_order
    """)
    previous = None
    first = None
    for r in rows:
        if r["step_order"] == 1:
            assert r["step_conversion"] is None and r["drop_off"] is None
            first = r["sessions"]
        else:
            assert r["sessions"] <= previous["sessions"]
            if previous["sessions"]:
                assert r["step_conversion"] == pytest.approx(r["sessions"] / previous["sessions"], abs=1e-12)
                assert r["drop_off"] == pytest.approx(1 - r["sessions"] / previous["sessions"], abs=1e-12)
            else:
                assert r["step_conversion"] is None
        if first:
            assert r["overall_conversion"] == pytest.approx(r["sessions"] / first, abs=1e-12)
        else:
            assert r["overall_conversion"] is None
        previous = r


# ---------------------------------------------------------------- activity retention

def test_activity_retention_equals_truth_per_registration_date(con, truth_warehouse):
    truth = {r["registration_date"]: r for r in truth_warehouse.truth["activity_retention"]}
    mart = {r["registration_date"].isoformat(): r for r in _rows(con, "select * from marts.mart_activity_retention")}
    assert set(mart) == set(truth)
    for day, t in truth.items():
        m = mart[day]
        assert (m["new_users"], m["excluded_users"]) == (t["new_users"], t["excluded_users"]), day
        total = t["new_users"] + t["excluded_users"]
        assert math.isclose(m["excluded_share"], t["excluded_users"] / total, rel_tol=0, abs_tol=1e-9), day
        for n in (1, 7, 30):
            if t[f"d{n}_users"] is None:
                assert m[f"d{n}_users"] is None and m[f"d{n}_rate"] is None, (day, n)
            else:
                assert m[f"d{n}_users"] == t[f"d{n}_users"], (day, n)
                if t["new_users"]:
                    assert math.isclose(m[f"d{n}_rate"], t[f"d{n}_users"] / t["new_users"], rel_tol=0,
                                        abs_tol=1e-9), (day, n)
                else:
                    assert m[f"d{n}_rate"] is None, (day, n)


def test_activity_retention_totals_equal_truth(con, truth_warehouse):
    """B1: new users are people first registered on a channel tracking covers, counted once; the
    accounts tracking can never see are counted apart (their share shows beside the rate)."""
    totals = truth_warehouse.truth["activity_retention_totals"]
    for n in (1, 7, 30):
        new_users, active = con.execute(f"""
            select sum(case when d{n}_users is not null then new_users end), sum(d{n}_users)
            from marts.mart_activity_retention
        """).fetchone()
        t = totals[f"d{n}"]
        assert (new_users, active) == (t["new_users"], t["active_users"])
        assert math.isclose(active / new_users, t["rate"], rel_tol=0, abs_tol=1e-9)
    excluded, registered = con.execute(
        "select sum(excluded_users), sum(new_users + excluded_users) from marts.mart_activity_retention").fetchone()
    assert excluded == totals["excluded_users"] > 0
    assert math.isclose(excluded / registered, totals["excluded_share"], rel_tol=0, abs_tol=1e-9)
    # every customer is counted once: first registrations = customers registered by the data end date
    assert registered == truth_warehouse.truth["counts"]["customers"]


# ---------------------------------------------------------------- segments

def _buyers_by_as_of(con, as_of_dates: list[dt.date], tz: str) -> dict[dt.date, set[str]]:
    """Customers with a valid order on or before each date, from the raw tables in plain Python.

    Current order row = the one from the latest file (then latest load, then row); valid = paid and not
    cancelled; business date in the zone; customer = users sharing a phone_hash, keyed by their
    smallest user_id (the warehouse's customer_key), else the user itself.
    """
    zone = ZoneInfo(tz)
    users: dict[str, tuple] = {}
    for user_id, phone_hash, file_date, loaded_at, row in con.execute(
            "select user_id, phone_hash, _file_date, _loaded_at, _row from raw.users").fetchall():
        rank = (file_date, loaded_at, row)
        if user_id not in users or rank > users[user_id][0]:
            users[user_id] = (rank, phone_hash)
    by_phone: dict[str, list[str]] = defaultdict(list)
    for user_id, (_, phone_hash) in users.items():
        if phone_hash is not None:
            by_phone[phone_hash].append(user_id)
    key = {u: (min(by_phone[p]) if p is not None else u) for u, (_, p) in users.items()}

    current: dict[str, tuple] = {}
    for order_id, user_id, order_ts, paid_ts, status, file_date, loaded_at, row in con.execute(
            "select order_id, user_id, order_ts, paid_ts, status, _file_date, _loaded_at, _row from raw.orders"
    ).fetchall():
        rank = (file_date, loaded_at, row)
        if order_id not in current or rank > current[order_id][0]:
            current[order_id] = (rank, user_id, order_ts, paid_ts, status)
    first_day: dict[str, dt.date] = {}
    for _, user_id, order_ts, paid_ts, status in current.values():
        if paid_ts is None or status == "cancelled":
            continue
        day = order_ts.replace(tzinfo=dt.timezone.utc).astimezone(zone).date()
        customer = key.get(user_id, user_id)
        first_day[customer] = min(day, first_day.get(customer, day))
    return {d: {c for c, f in first_day.items() if f <= d} for d in as_of_dates}


def test_segment_as_of_dates_are_month_ends_and_data_end(con, truth_warehouse):
    window = truth_warehouse.truth["window"]
    start, end = dt.date.fromisoformat(window["start_date"]), dt.date.fromisoformat(window["data_end_date"])
    expected = {end}
    day = start
    while day <= end:
        if (day + dt.timedelta(days=1)).day == 1:
            expected.add(day)
        day += dt.timedelta(days=1)
    got = _rows(con, """
        select as_of_date, bool_and(is_data_end_date) as is_end
        from marts.mart_customer_segments group by as_of_date
    """)
    assert {r["as_of_date"] for r in got} == expected
    assert {r["as_of_date"] for r in got if r["is_end"]} == {end}


def test_segments_cover_every_buyer_once_per_as_of_date(con, truth_warehouse):
    assert con.execute("""
        select count(*) from (
            select customer_key, as_of_date from marts.mart_customer_segments
            group by customer_key, as_of_date having count(*) > 1
        ) as duplicated
    """).fetchone()[0] == 0
    mart: dict[dt.date, set[str]] = defaultdict(set)
    for customer_key, as_of_date in con.execute(
            "select customer_key, as_of_date from marts.mart_customer_segments").fetchall():
        mart[as_of_date].add(customer_key)
    expected = _buyers_by_as_of(con, sorted(mart), truth_warehouse.truth["window"]["timezone"])
    assert {d: len(s) for d, s in mart.items()} == {d: len(s) for d, s in expected.items()}
    assert dict(mart) == expected
    end = dt.date.fromisoformat(truth_warehouse.truth["window"]["data_end_date"])
    assert len(mart[end]) == truth_warehouse.truth["counts"]["buyers"]


def test_segments_partition_customers_and_follow_the_rules(con):
    rows = _rows(con, "select * from marts.mart_customer_segments")
    per_date: dict[dt.date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        assert r["segment"] in SEGMENTS
        per_date[r["as_of_date"]][r["segment"]] += 1
        # the documented rules, in order; the first match wins
        if r["purchase_days"] == 1 and r["recency_days"] <= 30:
            expected = "new"
        elif r["r_score"] >= 4 and r["f_score"] >= 4 and r["m_score"] >= 4:
            expected = "core_loyal"
        elif r["r_score"] >= 3:
            expected = "potential_loyal"
        elif r["f_score"] >= 4:
            expected = "periodic"
        elif r["r_score"] == 2:
            expected = "at_risk"
        else:
            expected = "churned"
        assert r["segment"] == expected, r
        lapsed = r["is_tracked"] and (
            r["last_active_date"] is None or (r["as_of_date"] - r["last_active_date"]).days >= 30)
        declining = 2 * r["purchase_days_last_90d"] < r["purchase_days_prev_90d"]
        recent = r["recency_days"] < 30
        assert r["has_purchase_last_30d"] == recent, r
        assert r["churn_warning"] == (not recent and (lapsed or declining)), r
        assert r["churn_reason"] == (
            None if recent else "both" if lapsed and declining else "no_login_30d" if lapsed
            else "purchase_decline_90d" if declining else None), r
    counts = _rows(con, "select as_of_date, count(*) as n from marts.mart_customer_segments group by as_of_date")
    assert {c["as_of_date"]: c["n"] for c in counts} == {d: sum(v.values()) for d, v in per_date.items()}
    # on the data end date every segment is populated
    latest = max(per_date)
    assert set(per_date[latest]) == SEGMENTS


def test_churn_warning_list_equals_truth(con, truth_warehouse):
    """B11: on the data end date the churn-warning list is the truth's, reason by reason; nobody who bought
    in the last 30 days is on it (before the fix the login rule listed such buyers)."""
    truth = truth_warehouse.truth["churn_warning"]
    assert truth["recent_buyers_flagged_by_old_rule"] > 0
    mart = dict(con.execute("""
        select customer_key, churn_reason from marts.mart_customer_segments
        where is_data_end_date and churn_warning""").fetchall())
    assert mart == truth["warned"]
    (as_of,) = con.execute(
        "select distinct as_of_date from marts.mart_customer_segments where is_data_end_date").fetchone()
    assert as_of.isoformat() == truth["as_of_date"]


def test_rfm_scores_are_quintiles_that_keep_ties_together(con):
    for score, value, better_is_higher in [("r_score", "recency_days", False),
                                          ("f_score", "frequency", True),
                                          ("m_score", "monetary", True)]:
        rows = con.execute(f"""
            select as_of_date, {value}, min({score}), max({score}), count(*)
            from marts.mart_customer_segments group by as_of_date, {value}
        """).fetchall()
        assert all(lo == hi for _, _, lo, hi, _ in rows), score  # equal values, equal score
        by_date: dict = defaultdict(list)
        for as_of_date, v, s, _, n in rows:
            by_date[as_of_date].append((v, s, n))
        for as_of_date, values in by_date.items():
            total = sum(n for _, _, n in values)
            values.sort(key=lambda t: t[0], reverse=not better_is_higher)
            position = 0
            for v, s, n in values:
                # ntile(5) of the first customer with this value (0-based position), per the tie rule
                size, rest = divmod(total, 5)
                bucket, edge = 1, 0
                while True:
                    edge += size + (1 if bucket <= rest else 0)
                    if position < edge:
                        break
                    bucket += 1
                assert s == bucket, (score, as_of_date, v)
                position += n
