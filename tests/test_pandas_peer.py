"""The pandas peer of `make bench` (benchmarks/peers.py) recomputes repurchase_rate_30d, cohort retention and
the funnel from the raw tables; its results must equal our marts, and its repurchase rate the generator's truth."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import peers  # noqa: E402

RATE_TOL = 1e-9  # as tests/test_marts_purchases.py


@pytest.fixture(scope="module")
def peer_result(truth_warehouse):
    return peers.pandas_peer(truth_warehouse.db, manifest=truth_warehouse.home / "dbt" / "target" / "manifest.json")


def test_pandas_peer_equals_our_marts(peer_result):
    assert peer_result["match"] is True, "pandas peer differs from our marts:\n" + "\n".join(peer_result["mismatches"])
    assert peer_result["mismatches"] == []
    for mart, counts in peer_result["rows"].items():
        assert counts["peer"] > 0, f"{mart}: the peer computed no rows"
        assert counts["peer"] == counts["ours"], f"{mart}: {counts}"
    assert set(peer_result["rows"]) == {"mart_repurchase_cohort", "mart_cohort_retention", "mart_funnel_daily"}
    assert peer_result["read_seconds"] > 0 and peer_result["compute_seconds"] > 0
    assert all(n > 0 for n in peer_result["input_rows"].values()), peer_result["input_rows"]


def test_pandas_peer_repurchase_matches_truth(peer_result, truth_warehouse):
    # as test_repurchase_30d_matches_truth in tests/test_marts_purchases.py, but on the peer's own rows
    truth = {r["cohort_month"]: r for r in truth_warehouse.truth["repurchase_30d"]}
    peer = {r["cohort_month"]: r for r in peer_result["repurchase_30d"]}
    assert peer.keys() == truth.keys(), f"cohorts differ: {sorted(peer.keys() ^ truth.keys())}"
    for month, exp in truth.items():
        got = peer[month]
        for col in ("customers", "repurchased_30d", "is_complete"):
            assert got[col] == exp[col], f"{month} {col}: peer {got[col]} != truth {exp[col]}"
        assert got["repurchase_rate_30d"] == pytest.approx(exp["repurchase_rate_30d"], abs=RATE_TOL), month
    assert not all(r["is_complete"] for r in peer.values()), "the latest cohorts must be incomplete"
