"""The shipped alert rules on the 2,500-customer session world (`truth_warehouse`): a small shop's
rates are too small to judge most days, and nothing but the planted incidents may fire.

(Beside the incident world's tests in test_alerts_incidents.py, which build their own 16,000-customer
world: this one shares the session's world, so it runs in that world's unit of work, tests/conftest.py.)
"""

from __future__ import annotations

from datetime import date

import duckdb

from mart_rows import dates_between  # tests/ is on sys.path (pytest rootdir conftest)


def test_a_small_shop_raises_no_spurious_alert(truth_warehouse):
    """The 2,500-customer world (~15 valid orders, ~10 new users and payments per platform a day):
    every firing row is a planted incident's, on its dates (the stopped source from its second
    day); rates and counts too small to judge are not_evaluated (min_volume), not alarms. Before
    min_volume, valid orders 22 -> 12 on a weekday fired orders_down_vs_last_week."""
    truth = truth_warehouse.truth
    with duckdb.connect(str(truth_warehouse.db), read_only=True) as con:
        rows = con.sql("select rule_id, dims, metric_date, state, reason from marts.mart_metric_alerts").fetchall()
    planted = set()
    for inc in truth["incidents"]:
        if not inc["skipped"]:
            first, last = date.fromisoformat(inc["first_date"]), date.fromisoformat(inc["last_date"])
            planted |= {(inc["rule_id"], inc.get("dims") or "", d) for d in dates_between(first, last)}
    fired = {(r, g, d) for r, g, d, s, _ in rows if s == "firing"}
    assert fired - planted == set()
    small = {r for r, _, _, s, why in rows if s == "not_evaluated" and why and "min_volume" in why}
    assert {"growth.d1_retention_floor", "growth.d1_retention_drop"} <= small
