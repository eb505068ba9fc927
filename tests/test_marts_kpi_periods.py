"""mart_kpi_periods (period over period / year over year on the overview KPIs) against truth.json's kpi_periods,
which the generator counts from its own orders by docs/metrics.md's building blocks (truth_behaviour.py)."""

from __future__ import annotations

import duckdb
import pytest


def test_kpi_periods_equal_truth(truth_warehouse):
    con = duckdb.connect(str(truth_warehouse.db), read_only=True)
    try:
        rows = con.execute("select grain, period_start, is_complete, gmv, valid_orders, buyers, gmv_pop_growth, "
                           "gmv_yoy_growth from marts.mart_kpi_periods").fetchall()
    finally:
        con.close()
    mart = {(g, p.isoformat()): (c, float(gmv), o, b, pop, yoy) for g, p, c, gmv, o, b, pop, yoy in rows}
    truth = truth_warehouse.truth["kpi_periods"]
    assert set(mart) == {(r["grain"], r["period_start"]) for r in truth}
    for r in truth:
        complete, gmv, orders, buyers, pop, yoy = mart[(r["grain"], r["period_start"])]
        assert (complete, orders, buyers) == (r["is_complete"], r["valid_orders"], r["buyers"]), r
        assert gmv == pytest.approx(r["gmv"], abs=0.005), r
        if r["gmv_pop_growth"] is None:
            assert pop is None, r
        else:
            assert pop == pytest.approx(r["gmv_pop_growth"], rel=1e-9), r
        assert yoy is None  # the test world is younger than a year: no year-ago period to compare with
    assert any(r["gmv_pop_growth"] is not None for r in truth if r["grain"] == "month")
