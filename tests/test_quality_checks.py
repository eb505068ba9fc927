"""Suites become blocking Dagster asset checks: a failed critical expectation stops downstream
assets in an in-process run, a failed warning does not; metadata carries counts and samples."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from dagster_project.lib.quality import discover_suites

CAMPAIGNS = ("campaign_id,name,type,channel,start_at,end_at,cost\n"
             "C1,618年中大促,discount,app,2026-06-01 00:00:00,2026-06-18 23:59:59,80.00\n"
             "C2,双11狂欢节,coupon,all,2026-11-01 00:00:00,2026-11-11 23:59:59,500.00\n")


def _suite(tmp_path, severity: str):
    d = tmp_path / f"suites_{severity}"
    d.mkdir()
    (d / "budget_cap.json").write_text(json.dumps({
        "name": "budget_cap",
        "meta": {"ew": {"asset": ["raw", "campaigns"], "query": "select * from raw.campaigns",
                        "description": "test suite"}},
        "expectations": [
            {"type": "expect_column_values_to_be_between",
             "kwargs": {"column": "cost", "max_value": 100}, "severity": severity},
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "name"},
             "severity": "critical"},
        ],
    }))
    return d


def _run(ew_home, suites_dir):
    from dagster_project.defs.ingest.assets import raw_assets
    from dagster_project.defs.quality.checks import QualityResource, build_suite_checks
    from dagster_project.defs.resources import warehouse_resource

    landing = ew_home.landing_dir / "campaigns"
    landing.mkdir(parents=True, exist_ok=True)
    (landing / "campaigns_20260520.csv").write_text(CAMPAIGNS, encoding="utf-8")
    raw_campaigns = next(a for a in raw_assets if dg.AssetKey(["raw", "campaigns"]) in a.keys)

    @dg.asset(deps=[dg.AssetKey(["raw", "campaigns"])])
    def campaign_report() -> None:
        return None

    defs = dg.Definitions(
        assets=[raw_campaigns, campaign_report],
        asset_checks=build_suite_checks(suites_dir),
        resources={"warehouse": warehouse_resource(),
                   "quality": QualityResource(home=str(ew_home.home), build_docs=False)},
        jobs=[dg.define_asset_job("j", selection=dg.AssetSelection.all(), executor_def=dg.in_process_executor)],
    )
    result = defs.resolve_job_def("j").execute_in_process(raise_on_error=False)
    materialized = {tuple(e.asset_key.path) for e in result.get_asset_materialization_events()}
    (evaluation,) = [e.event_specific_data for e in result.all_events
                     if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    return materialized, evaluation


def test_critical_failure_blocks_downstream(ew_home, tmp_path):
    materialized, ev = _run(ew_home, _suite(tmp_path, "critical"))
    assert ("raw", "campaigns") in materialized
    assert ("campaign_report",) not in materialized
    assert not ev.passed and ev.severity == dg.AssetCheckSeverity.ERROR
    md = ev.metadata
    assert md["failed_critical"].value == 1 and md["failed_warning"].value == 0
    assert md["unexpected_count"].value == 1
    (failure,) = md["failures"].value
    assert failure["unexpected_count"] == 1 and failure["sample_values"] == [500.0]
    assert failure["unexpected_percent"] == pytest.approx(50.0)


def test_warning_failure_does_not_block(ew_home, tmp_path):
    materialized, ev = _run(ew_home, _suite(tmp_path, "warning"))
    assert ("campaign_report",) in materialized
    assert not ev.passed and ev.severity == dg.AssetCheckSeverity.WARN
    assert ev.metadata["failed_warning"].value == 1


def test_every_suite_file_is_a_check_on_an_existing_asset(ew_home):
    from dagster_project.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = {k.name: k for k in graph.asset_check_keys}
    for suite in discover_suites():
        assert f"ge_{suite.name}" in keys, suite.name
        assert keys[f"ge_{suite.name}"].asset_key.path == list(suite.asset)
        assert graph.has(dg.AssetKey(list(suite.asset))), suite.asset


def test_quantile_expectation_validates_in_a_file_context(tmp_path):
    """GE 1.24 + numpy 2 returns numpy.bool from this expectation; the runner must cope."""
    import numpy as np
    import pandas as pd

    from dagster_project.lib.quality import QualityRunner, SuiteFile

    raw = {"name": "q", "meta": {"ew": {"asset": ["x"], "query": "x"}}, "expectations": [{
        "type": "expect_column_quantile_values_to_be_between",
        "kwargs": {"column": "lag", "quantile_ranges": {"quantiles": [0.5, 0.95],
                                                        "value_ranges": [[0, 4], [0, 30]]},
                   "allow_relative_error": "linear"},
        "severity": "warning"}]}
    outcome = QualityRunner(tmp_path / "gx").validate(SuiteFile("q", ("x",), "x", "", raw),
                                                      pd.DataFrame({"lag": np.linspace(0, 10, 101)}))
    (e,) = outcome.expectations
    assert not e.success and e.severity == "warning"  # median 5 > 4
    assert e.observed_value["values"] == [5.0, 9.5]


def test_a_far_future_timestamp_is_reported_not_a_crash(tmp_path):
    import pandas as pd

    from dagster_project.lib.quality import QualityRunner, SuiteFile

    raw = {"name": "f", "meta": {"ew": {"asset": ["x"], "query": "x"}}, "expectations": [{
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "delisted_at", "min_value": "2000-01-01T00:00:00", "max_value": "2035-01-01T00:00:00"},
        "severity": "critical"}]}
    df = pd.DataFrame({"delisted_at": pd.array(["2026-01-01", "9999-12-31"], dtype="datetime64[us]")})
    outcome = QualityRunner(tmp_path / "gx", build_docs=False).validate(SuiteFile("f", ("x",), "x", "", raw), df)
    (e,) = outcome.expectations
    assert not e.success and e.unexpected_count == 1
