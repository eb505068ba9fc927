"""The data-quality mart's limits are typed once, in the GE suite files, and rendered into the dbt seed
quality_thresholds (dagster_project/lib/quality_thresholds.py): these tests fail when the seed is
stale and show that a limit edited in a suite reaches the seed and nothing else."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest

from dagster_project.lib import quality_thresholds

REPO = Path(__file__).resolve().parent.parent


def _seed(root: Path) -> dict[str, dict[str, str]]:
    text = (root / quality_thresholds.SEED).read_text()
    return {r["check_name"]: r for r in csv.DictReader(io.StringIO(text))}


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    for rel in ("expectations", "dbt/seeds"):
        shutil.copytree(REPO / rel, tmp_path / rel)
    return tmp_path


def test_the_seed_is_up_to_date():
    stale = [str(p.relative_to(REPO)) for p in quality_thresholds.stale()]
    assert stale == [], f"stale generated file {stale}: run `{quality_thresholds.GENERATOR}`"


def test_the_seed_holds_the_suites_limits_read_here_from_the_json():
    def kwargs(suite: str, column: str) -> tuple[dict, str]:
        doc = json.loads((REPO / "expectations" / f"{suite}.json").read_text())
        (e,) = [e for e in doc["expectations"] if e["kwargs"].get("column") == column
                and e["type"] != "expect_column_values_to_be_null"]
        return e["kwargs"], e.get("severity", "critical")

    seed = _seed(REPO)
    cov, cov_sev = kwargs("cross_tracking_coverage", "has_payment_event")
    assert (float(seed["tracking_coverage"]["threshold"]), seed["tracking_coverage"]["severity"]) == (
        cov["mostly"], cov_sev)
    for check, column in (("payment_event_lag_p50", "lag_p50_min"), ("payment_event_lag_p95", "lag_p95_min")):
        lag, _ = kwargs("cross_tracking_coverage", column)
        assert float(seed[check]["threshold"]) == float(seed[check]["row_max"]) == lag["max_value"]
    pay, pay_sev = kwargs("cross_orders_pay_amount", "pay_amount_diff")
    row = seed["pay_amount_mismatch"]
    assert (float(row["row_min"]), float(row["row_max"]), row["threshold"], row["severity"]) == (
        pay["min_value"], pay["max_value"], "0", pay_sev)
    _, oi_sev = kwargs("cross_order_items_orders", "order_exists")
    assert (seed["order_items_unknown_order"]["severity"], oi_sev) == ("critical", "critical")
    ic, _ = kwargs("cross_identity_coverage", "is_attributed")
    assert float(seed["identity_coverage"]["threshold"]) == ic["min_value"]
    # per-source checks: freshness's threshold is each source's SLA (from the contract, not the seed)
    assert seed["freshness"]["source"] == seed["freshness"]["threshold"] == ""
    assert (seed["quarantined_rows"]["threshold"], seed["quarantined_rows"]["severity"]) == ("0", "warning")


def test_a_limit_edited_in_a_suite_reaches_the_seed_and_check_mode_names_it(repo_copy, monkeypatch, capsys):
    suite = repo_copy / "expectations" / "cross_tracking_coverage.json"
    doc = json.loads(suite.read_text())
    for e in doc["expectations"]:
        if e["kwargs"].get("column") == "has_payment_event":
            e["kwargs"]["mostly"] = 0.95
    suite.write_text(json.dumps(doc))
    assert quality_thresholds.stale(repo_copy) == [repo_copy / quality_thresholds.SEED]

    monkeypatch.setattr(quality_thresholds, "REPO_ROOT", repo_copy)
    assert quality_thresholds.main(["--check"]) == 1
    assert "stale: dbt/seeds/quality_thresholds.csv" in capsys.readouterr().err
    before = _seed(repo_copy)
    assert quality_thresholds.main([]) == 0
    assert quality_thresholds.main(["--check"]) == 0
    after = _seed(repo_copy)
    assert after["tracking_coverage"]["threshold"] == "0.95"
    assert {k: v for k, v in after.items() if k != "tracking_coverage"} == {
        k: v for k, v in before.items() if k != "tracking_coverage"}


def test_a_suite_without_the_expectation_is_an_error_naming_it(repo_copy):
    suite = repo_copy / "expectations" / "cross_identity_coverage.json"
    doc = json.loads(suite.read_text())
    doc["expectations"] = []
    suite.write_text(json.dumps(doc))
    with pytest.raises(LookupError, match="cross_identity_coverage has no expect_column_values_to_be_between "
                                          "on column is_attributed"):
        quality_thresholds.render(repo_copy)
