"""The planted experiment effect is found significant, and the A/A split is not, at the demo's size.

The session dataset (2,500 customers) has ~500 users per arm: too few to detect the planted
effect, and below the 2,000-per-arm minimum the seeds set (so it reads insufficient_sample there).
Here the demo-size world (20,000 customers, 180 days, seed 42) is generated, only the sources the
experiment mart reads are loaded (the others stay empty tables), and dbt builds
mart_experiment_results and what it needs. The verdicts are compared with truth.json's arms and
the planted direction.
"""

from __future__ import annotations

import json
from datetime import date

import duckdb
import pytest

from dagster_project.lib import ingest
from dagster_project.lib.generator import generate

pytestmark = pytest.mark.e2e
SOURCES = ("users", "products", "orders", "order_items", "experiment_assignments")


@pytest.fixture(scope="module")
def demo_experiment(tmp_path_factory, run_dbt):
    home = tmp_path_factory.mktemp("power")
    landing, db = home / "landing", home / "warehouse.duckdb"
    generate(landing, customers=20000, days=180, seed=42, start=date(2026, 5, 20),
             truth_path=home / "truth.json")
    for source in SOURCES:
        ingest.ingest_source(db, landing, source, tz="Asia/Shanghai", lock_path=home / "lock")
    con = duckdb.connect(str(db))
    ingest.ensure_raw_schema(con)  # the sources not loaded exist, empty
    con.close()

    result = run_dbt(db, home, "run", "--quiet", "--select", "+mart_experiment_results")
    assert result.success, result.exception
    truth = json.loads((home / "truth.json").read_text())
    con = duckdb.connect(str(db), read_only=True)
    cur = con.execute("select * from marts.mart_experiment_results")
    names = [d[0] for d in cur.description]
    rows = {(r["experiment_id"], r["variant"]): r for r in (dict(zip(names, t)) for t in cur.fetchall())}
    con.close()
    return rows, truth["operations"]["experiments"]


def test_planted_effect_is_significant_with_enough_users(demo_experiment):
    rows, truth = demo_experiment
    v2 = rows[("exp_checkout_v2", "treatment")]
    for variant, arm in truth["exp_checkout_v2"]["arms"].items():
        assert rows[("exp_checkout_v2", variant)]["users"] == arm["users"] >= 2000
    assert v2["has_min_sample"] and not v2["is_srm"]
    assert v2["is_significant"] and v2["p_value"] < 0.05
    assert v2["relative_lift_ci_low"] > 0
    assert v2["verdict"] == "treatment_wins"
    expected = truth["exp_checkout_v2"]["expected_relative_lift"]
    assert v2["relative_lift_ci_low"] <= expected <= v2["relative_lift_ci_high"]


def test_aa_split_is_not_significant(demo_experiment):
    rows, truth = demo_experiment
    aa = rows[("exp_aa_checkout_copy", "treatment")]
    assert aa["has_min_sample"] and not aa["is_srm"]
    assert not aa["is_significant"] and aa["p_value"] > 0.05
    assert aa["relative_lift_ci_low"] <= 0 <= aa["relative_lift_ci_high"]
    assert aa["verdict"] == "no_significant_difference"
