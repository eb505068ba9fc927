"""Suites become Dagster asset checks: a failed critical expectation is an ERROR, a failed warning a
WARN; metadata carries counts, samples, where the rows are and why the rule exists.

Where a suite hangs decides what an ERROR stops: a suite on a raw asset is validated in that asset's
own step and stops what dbt builds from the source (tests/test_valid_data_loads.py runs that whole
path); any other suite is a blocking check that stops every asset downstream in the run."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from dagster_project.lib.quality import discover_suites

CAMPAIGNS = ("campaign_id,name,type,channel,start_at,end_at,cost\n"
             "C1,618年中大促,discount,app,2026-06-01 00:00:00,2026-06-18 23:59:59,80.00\n"
             "C2,双11狂欢节,coupon,all,2026-11-01 00:00:00,2026-11-11 23:59:59,500.00\n")
RAW = ["raw", "campaigns"]
REPORT = ["marts", "fct_orders"]  # a stand-in mart (a Python asset reading raw.campaigns) the docs step waits for


def _suite(tmp_path, severity: str, asset: list[str] = RAW):
    d = tmp_path / f"suites_{severity}_{'_'.join(asset)}"
    d.mkdir()
    (d / "budget_cap.json").write_text(json.dumps({
        "name": "budget_cap",
        "meta": {"ew": {"asset": asset, "query": "select * from raw.campaigns", "description": "test suite"}},
        "expectations": [
            {"type": "expect_column_values_to_be_between",
             "kwargs": {"column": "cost", "max_value": 100}, "severity": severity,
             "meta": {"why": "a test budget"}},
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "name"},
             "severity": "critical"},
        ],
    }))
    return d


def _run(ew_home, suites_dir, build_docs: bool = False):
    from dagster_project.defs.ingest.assets import build_raw_assets
    from dagster_project.defs.quality.checks import QualityResource, build_suite_checks
    from dagster_project.defs.resources import warehouse_resource

    landing = ew_home.landing_dir / "campaigns"
    landing.mkdir(parents=True, exist_ok=True)
    (landing / "campaigns_20260520.csv").write_text(CAMPAIGNS, encoding="utf-8")
    # written whole: the marker lets ingest load it at once instead of waiting EW_LANDING_SETTLE_S (10 s)
    (landing / "campaigns_20260520.csv.done").touch()
    raw_campaigns = next(a for a in build_raw_assets(suites_dir) if dg.AssetKey(RAW) in a.keys)

    @dg.asset(key=dg.AssetKey(REPORT), deps=[dg.AssetKey(RAW)])
    def campaign_report() -> None:
        return None

    @dg.asset(deps=[dg.AssetKey(REPORT)])
    def campaign_summary() -> None:
        return None

    defs = dg.Definitions(
        assets=[raw_campaigns, campaign_report, campaign_summary],
        asset_checks=build_suite_checks(suites_dir),
        resources={"warehouse": warehouse_resource(),
                   "quality": QualityResource(home=str(ew_home.home), build_docs=build_docs)},
        jobs=[dg.define_asset_job("j", selection=dg.AssetSelection.all(), executor_def=dg.in_process_executor)],
    )
    _run.instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def("j").execute_in_process(raise_on_error=False, instance=_run.instance)
    _run.result = result
    materialized = {tuple(e.asset_key.path) for e in result.get_asset_materialization_events()}
    _run.metadata = {tuple(e.asset_key.path): e.materialization.metadata
                     for e in result.get_asset_materialization_events()}
    (evaluation,) = [e.event_specific_data for e in result.all_events
                     if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    return materialized, evaluation


def test_critical_failure_blocks_downstream(ew_home, tmp_path):
    materialized, ev = _run(ew_home, _suite(tmp_path, "critical", REPORT))
    assert ("raw", "campaigns") in materialized and tuple(REPORT) in materialized
    assert ("campaign_summary",) not in materialized
    assert not ev.passed and ev.severity == dg.AssetCheckSeverity.ERROR
    md = ev.metadata
    assert md["failed_critical"].value == 1 and md["failed_warning"].value == 0
    assert md["unexpected_count"].value == 1
    (failure,) = md["failures"].value
    assert failure["unexpected_count"] == 1 and failure["sample_values"] == [500.0]
    assert failure["unexpected_percent"] == pytest.approx(50.0)
    assert failure["why"] == "a test budget"
    # the query reads raw.campaigns whole: row 2 of the landed file is the one over budget
    assert failure["rows"] == [{"file": "campaigns_20260520.csv", "row": 2}]


def test_a_critical_failure_on_a_raw_suite_blocks_the_source_not_the_step(ew_home, tmp_path):
    """Validated in the raw asset's own step: the step and its direct dependents go on, and the source
    is blocked, which is what the dbt step reads to leave out the models it feeds."""
    from dagster_project.defs.quality.checks import blocked_sources

    suites = _suite(tmp_path, "critical")
    materialized, ev = _run(ew_home, suites)
    assert not ev.passed and ev.severity == dg.AssetCheckSeverity.ERROR
    assert ev.asset_key == dg.AssetKey(RAW) and ev.check_name == "ge_budget_cap"
    assert {("raw", "campaigns"), tuple(REPORT), ("campaign_summary",)} <= materialized
    assert blocked_sources(_run.instance, suites) == {"campaigns": ["ge_budget_cap"]}
    md = _run.metadata[("raw", "campaigns")]
    assert md["checks"].value == 1 and md["check_seconds"].value >= 0


def test_a_passing_or_warning_raw_suite_blocks_nothing(ew_home, tmp_path):
    from dagster_project.defs.quality.checks import blocked_sources

    suites = _suite(tmp_path, "warning")
    _, ev = _run(ew_home, suites)
    assert not ev.passed and ev.severity == dg.AssetCheckSeverity.WARN
    assert blocked_sources(_run.instance, suites) == {}


def test_warning_failure_does_not_block(ew_home, tmp_path):
    materialized, ev = _run(ew_home, _suite(tmp_path, "warning", REPORT))
    assert ("campaign_summary",) in materialized
    assert not ev.passed and ev.severity == dg.AssetCheckSeverity.WARN
    assert ev.metadata["failed_warning"].value == 1


def _queued(gx_root) -> int:
    """Validation results waiting for their Data Docs page, read from the queue file itself."""
    queue = gx_root / "docs_pending.jsonl"
    return len(queue.read_text().splitlines()) if queue.exists() else 0


def _docs_site(ew_home):
    return ew_home.home / "gx" / "gx" / "uncommitted" / "data_docs" / "local_site"


def _pages(ew_home, suite: str) -> list:
    return list((_docs_site(ew_home) / "validations" / suite).rglob("*.html"))


def _sensor_context(ew_home, sensor, failed: bool):
    """What the daemon hands a run-status sensor after _run's run ended."""
    from dagster_project.defs.quality.checks import QualityResource

    result = _run.result
    ended = "PIPELINE_FAILURE" if failed else "PIPELINE_SUCCESS"
    (event,) = [e for e in result.all_events if e.event_type_value == ended]
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name, dagster_event=event, dagster_instance=_run.instance,
        dagster_run=result.dagster_run, resources={"quality": QualityResource(home=str(ew_home.home))})
    return context.for_run_failure() if failed else context


def test_checks_queue_their_results_and_the_success_sensor_renders_them_once(ew_home, tmp_path):
    from dagster_project.defs.quality.docs import ge_data_docs_after_success

    _, ev = _run(ew_home, _suite(tmp_path, "warning"), build_docs=True)
    assert not ev.passed and _run.result.success  # a warning: the run succeeds
    assert _queued(ew_home.home / "gx") == 1 and not _pages(ew_home, "budget_cap")  # nothing rendered in the run
    assert ev.metadata["data_docs"].value == str(_docs_site(ew_home) / "index.html")
    ge_data_docs_after_success(_sensor_context(ew_home, ge_data_docs_after_success, failed=False))
    assert _queued(ew_home.home / "gx") == 0 and _pages(ew_home, "budget_cap")
    assert (_docs_site(ew_home) / "index.html").exists()


def test_a_blocking_failure_fails_the_run_and_the_failure_sensor_renders_its_evidence(ew_home, tmp_path):
    from dagster_project.defs.quality.docs import ge_data_docs_after_failure

    materialized, ev = _run(ew_home, _suite(tmp_path, "critical", REPORT), build_docs=True)
    assert not ev.passed and ev.severity == dg.AssetCheckSeverity.ERROR
    assert ("campaign_summary",) not in materialized and not _run.result.success
    assert _queued(ew_home.home / "gx") == 1 and not _pages(ew_home, "budget_cap")
    ge_data_docs_after_failure(_sensor_context(ew_home, ge_data_docs_after_failure, failed=True))
    assert _queued(ew_home.home / "gx") == 0 and _pages(ew_home, "budget_cap")


def test_the_pipeline_renders_data_docs_only_through_its_run_status_sensors(ew_home):
    from dagster_project.definitions import defs

    graph = defs.resolve_asset_graph()
    assert not any(k.path[-1] == "ge_data_docs" for k in graph.get_all_asset_keys())
    for name in ("ge_data_docs_after_success", "ge_data_docs_after_failure"):
        sensor = defs.resolve_sensor_def(name)
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING and "quality" in sensor.required_resource_keys


def test_render_docs_renders_the_queue_in_one_call_and_empties_it(tmp_path, monkeypatch):
    import pandas as pd

    from dagster_project.lib.quality import QualityRunner, SuiteFile

    runner = QualityRunner(tmp_path / "gx")
    for name in ("s1", "s2"):
        raw = {"name": name, "meta": {"ew": {"asset": ["x"], "query": "x"}},
               "expectations": [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}}]}
        runner.validate(SuiteFile(name, ("x",), "x", "", raw), pd.DataFrame({"a": [1, 2]}))
    site = tmp_path / "gx" / "gx" / "uncommitted" / "data_docs" / "local_site"
    assert _queued(tmp_path / "gx") == 2 and not site.exists()
    with open(tmp_path / "gx" / "docs_pending.jsonl", "a") as f:
        f.write('{"result": ["trunc\n')  # a write cut short
    builds = []
    real = runner.context.build_data_docs
    monkeypatch.setattr(runner.context, "build_data_docs", lambda **kw: (builds.append(kw), real(**kw))[1])
    with pytest.warns(UserWarning, match="unreadable entry dropped"):
        assert runner.render_docs() == 2
    assert len(builds) == 1
    validations = site / "validations"
    assert {p.relative_to(validations).parts[0] for p in validations.rglob("*.html")} == {"s1", "s2"}
    assert (site / "index.html").exists()
    assert _queued(tmp_path / "gx") == 0 and runner.render_docs() == 0 and len(builds) == 1


def test_ecomwh_run_renders_the_docs_its_checks_queued(ew_home):
    import pandas as pd

    from dagster_project.cli.run import _render_run_docs
    from dagster_project.lib.quality import QualityRunner, SuiteFile

    runner = QualityRunner(ew_home.home / "gx")
    raw = {"name": "left", "meta": {"ew": {"asset": ["x"], "query": "x"}},
           "expectations": [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}}]}
    runner.validate(SuiteFile("left", ("x",), "x", "", raw), pd.DataFrame({"a": [1]}))
    assert _queued(ew_home.home / "gx") == 1
    _render_run_docs(ew_home)
    assert _queued(ew_home.home / "gx") == 0
    assert list((_docs_site(ew_home) / "validations" / "left").rglob("*.html"))


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


def test_canary_the_numpy_bool_patch_is_still_needed_and_still_fits():
    """pyproject pins great-expectations exactly because lib/quality.py wraps one of its methods.
    GE's own method must still return a numpy.bool (else an upgrade fixed it: drop the patch) and the
    wrapper a bool; a renamed class or method fails the import or the call here, not a night's run."""
    import numpy as np
    from great_expectations.expectations.core.expect_column_quantile_values_to_be_between import (
        ExpectColumnQuantileValuesToBeBetween,
    )

    from dagster_project.lib.quality import _patch_numpy_bool_results

    _patch_numpy_bool_results()
    patched = ExpectColumnQuantileValuesToBeBetween._validate
    expectation = ExpectColumnQuantileValuesToBeBetween(
        column="lag", quantile_ranges={"quantiles": [0.5], "value_ranges": [[0, 4]]})
    metrics = {"column.quantile_values": [5.0]}
    unpatched = patched.__wrapped__(expectation, metrics)["success"]
    assert isinstance(unpatched, np.bool_) and not isinstance(unpatched, bool), (
        f"GE now returns {type(unpatched).__name__}: remove _patch_numpy_bool_results and its pin")
    assert patched(expectation, metrics)["success"] is False


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


# ---------------------------------------------------------------------------------------------
# Raw suites validate new loads only: {new_rows:raw.<table>} scope, state, batches.

USERS_HEADER = "user_id,registered_at,channel,phone_hash,province,city,member_level,birth_year\n"


def _user(uid: str, registered_at: str = "2026-05-20T10:00:00+08:00", phone: bool = True) -> str:
    import hashlib

    phone_hash = hashlib.sha256(uid.encode()).hexdigest() if phone else ""
    return f"{uid},{registered_at},app,{phone_hash},广东省,广州市,1,1990\n"


def _land_users(ew_home, name: str, rows: list[str]) -> None:
    landing = ew_home.landing_dir / "users"
    landing.mkdir(parents=True, exist_ok=True)
    (landing / name).write_text(USERS_HEADER + "".join(rows), encoding="utf-8")
    (landing / f"{name}.done").touch()  # written whole: loads at once, no EW_LANDING_SETTLE_S wait


def _warehouse(ew_home):
    from dagster_project.defs.resources import WarehouseResource

    return WarehouseResource(home=str(ew_home.home), duckdb_path=str(ew_home.duckdb_path),
                             landing_dir=str(ew_home.landing_dir), quarantine_dir=str(ew_home.quarantine_dir),
                             timezone=ew_home.timezone)


def _quality(home):
    from dagster_project.defs.quality.checks import QualityResource

    return QualityResource(home=str(home), build_docs=False)


def _users_suite_with_a_critical_time_rule():
    """raw_users, with its registration-time plausibility rule made critical: every critical rule of a
    raw suite is a contract rule that ingest enforces, so no row that loads can fail one; this one
    can, which is what the scope mechanics below need (a failed load is validated again)."""
    from dataclasses import replace

    (suite,) = [s for s in discover_suites() if s.name == "raw_users"]
    raw = json.loads(json.dumps(suite.raw))
    for e in raw["expectations"]:
        if e["kwargs"].get("column") == "_registered_at_implausible":
            e["severity"] = "critical"
    return replace(suite, raw=raw)


@pytest.fixture()
def users_check(ew_home):
    """(load(name, rows), validate(batch_rows=None, quality=None)) over raw.users and raw_users.json."""
    from dagster_project.defs.quality.checks import validate_new_loads

    warehouse = _warehouse(ew_home)
    quality = _quality(ew_home.home)
    suite = _users_suite_with_a_critical_time_rule()
    assert suite.scoped_table == "users"

    def load(name, rows):
        _land_users(ew_home, name, rows)
        result = warehouse.ingest_source("users")
        assert all(f.rows_quarantined == 0 for f in result.files), result

    def validate(batch_rows=None, q=None):
        return validate_new_loads(suite, warehouse, q or quality, batch_rows=batch_rows)

    return load, validate


def _failures(outcome) -> dict:
    return {e.label: e.unexpected_count for e in outcome.failed}


def test_second_load_validates_only_the_new_file(users_check):
    load, validate = users_check
    load("users_20260520.csv", [_user(f"U{i:03d}") for i in range(5)])
    outcome, scope = validate()
    assert outcome.passed and outcome.rows == 5
    assert scope["new_loads"] == 1 and scope["new_rows"] == 5 and scope["watermark_before"] is None
    first_mark = scope["watermark_after"]
    assert first_mark is not None and scope["watermark_advanced"]

    load("users_20260521.csv", [_user(f"U1{i:02d}") for i in range(3)])
    outcome, scope = validate()
    assert outcome.passed and outcome.rows == 3  # the new file's rows only
    assert scope["new_loads"] == 1 and scope["table_loads"] == 2 and scope["batches"] == 1
    assert scope["watermark_before"] == first_mark and scope["watermark_after"] > first_mark

    outcome, scope = validate()  # nothing new: an empty frame, still every expectation
    assert outcome.passed and outcome.rows == 0 and scope["new_loads"] == 0
    assert len(outcome.expectations) == _users_suite_with_a_critical_time_rule().expectation_count


def test_bad_rows_are_caught_until_validated_and_full_refresh_revalidates(users_check, ew_home):
    load, validate = users_check
    load("users_20260520.csv", [_user(f"U{i:03d}") for i in range(4)])
    assert validate()[0].passed

    # a bad row in a new file, and another file after it, both loaded before the check runs
    load("users_20260521.csv", [_user("U100"), _user("U101", registered_at="1970-01-01T00:00:00Z")])
    load("users_20260522.csv", [_user("U200"), _user("U201"), _user("U202")])
    outcome, scope = validate()
    assert outcome.critical_failed and outcome.rows == 5
    assert _failures(outcome) == {"expect_column_values_to_be_null(_registered_at_implausible)": 1}
    assert not scope["watermark_advanced"] and scope["watermark_after"] == scope["watermark_before"]

    # the failed check did not accept those loads: the next run validates the same rows again
    outcome, scope = validate()
    assert outcome.critical_failed and outcome.rows == 5 and scope["new_loads"] == 2

    # a corrected redelivery replaces the bad file: its new rows (and the file after it) pass
    load("users_20260521.csv", [_user("U100"), _user("U101")])
    outcome, scope = validate()
    assert outcome.passed and outcome.rows == 5 and scope["new_loads"] == 2
    assert validate()[0].rows == 0

    # a full refresh (a fresh DuckDB file) revalidates everything
    ew_home.duckdb_path.unlink()
    from dagster_project.lib.ingest import loaded_index_path

    loaded_index_path(ew_home.duckdb_path).unlink(missing_ok=True)
    assert _warehouse(ew_home).ingest_source("users").total("rows_loaded") == 9
    outcome, scope = validate()
    assert outcome.passed and outcome.rows == 9 and scope["new_loads"] == 3


def test_a_key_repeated_across_an_old_and_a_new_file_is_caught(users_check):
    load, validate = users_check
    load("users_20260520.csv", [_user("U001"), _user("U002")])
    assert validate()[0].passed
    load("users_20260521.csv", [_user("U003"), _user("U001")])  # U001 again, in a new file
    outcome, scope = validate()
    assert outcome.rows == 2 and not outcome.critical_failed and outcome.warning_failed
    (failure,) = outcome.failed
    assert failure.label == "expect_column_values_to_be_between(_user_id_rows)"
    assert failure.unexpected_count == 1 and failure.samples == [2]  # the new row; 2 rows in the table
    # a warning does not block: the loads count as validated (see docs/quality.md)
    assert scope["watermark_advanced"] and validate()[0].rows == 0


def test_batches_give_the_same_outcome_as_one_frame(users_check, ew_home, tmp_path):
    load, validate = users_check
    load("users_20260520.csv", [_user("U001"), _user("U002", registered_at="2099-01-01T00:00:00Z")])
    load("users_20260521.csv", [_user("U003", phone=False)])  # a batch of its own is 100% without phone
    load("users_20260522.csv", [_user(f"U1{i:02d}") for i in range(8)] + [_user("U001")])
    load("users_20260523.csv", [_user("U201", registered_at="1970-01-01T00:00:00Z"), _user("U202")])

    one, one_scope = validate(batch_rows=10_000, q=_quality(tmp_path / "one"))
    many, many_scope = validate(batch_rows=2, q=_quality(tmp_path / "many"))
    assert one_scope["batches"] == 1 and many_scope["batches"] == 4
    assert one.rows == many.rows == 14

    def summary(outcome):
        return [(e.label, e.severity, e.success, e.element_count, e.unexpected_count,
                 None if e.unexpected_percent is None else round(e.unexpected_percent, 9))
                for e in outcome.expectations]

    assert summary(many) == summary(one)
    assert (many.passed, many.critical_failed, many.warning_failed) == (one.passed, one.critical_failed,
                                                                        one.warning_failed)
    assert _failures(one) == {"expect_column_values_to_be_null(_registered_at_implausible)": 2,
                              "expect_column_values_to_be_between(_user_id_rows)": 2}
    # phone_hash share is 1/14 missing over the run: passes, although one batch alone is 100% missing
    phone = [e for e in many.expectations if e.label == "expect_column_values_to_not_be_null(phone_hash)"]
    assert phone[0].success and phone[0].unexpected_count == 1
    # samples come from the first failing batch
    (ts,) = [e for e in many.failed if e.column == "_registered_at_implausible"]
    assert len(ts.samples) == 1


def test_released_quarantined_rows_are_validated(tmp_path):
    """Rows released from quarantine keep their load id: a load whose row count changed is new."""
    import duckdb

    from dagster_project.lib.quality import plan_scope

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("create schema raw; create table raw.t (k int, _load_id varchar, _loaded_at timestamp)")
    from dagster_project.lib.contract import FILES_DDL

    con.execute(FILES_DDL)
    con.execute("insert into raw.t values (1, 'a', '2026-01-01'), (2, 'b', '2026-01-02')")
    con.execute("insert into raw._files (source, file_name, load_id, loaded_at, rows_loaded, status) values "
                "('t', 'f1', 'a', '2026-01-01', 1, 'loaded'), ('t', 'f2', 'b', '2026-01-02', 1, 'loaded'), "
                "('t', 'f0', 'old', '2025-01-01', 7, 'superseded')")
    plan = plan_scope(con, "t", {"a": 1, "b": 1})
    assert plan.new == [] and plan.batches[0].loads == ()
    con.execute("insert into raw.t values (3, 'a', '2026-01-01')")  # released into load a
    con.execute("update raw._files set rows_loaded = 2 where load_id = 'a'")
    plan = plan_scope(con, "t", {"a": 1, "b": 1})
    assert [ld.load_id for ld in plan.new] == ["a"] and plan.batches[0].loads == ("a",)
    # rows outside the ledger: the table itself is grouped by load
    con.execute("insert into raw.t values (4, 'c', '2026-01-03')")
    plan = plan_scope(con, "t", {"a": 2, "b": 1})
    assert [ld.load_id for ld in plan.new] == ["c"]
    con.close()


def test_a_compiled_suite_validates_a_first_load_in_one_batch(monkeypatch):
    """A suite compiled to SQL plans one batch (a first load: the whole table, read as such), as
    many loads as there are; the pandas route and EW_GE_BATCH_ROWS still split by rows."""
    import duckdb

    from dagster_project.lib.quality import PANDAS_BATCH_ROWS, LoadScope, batch_rows_setting, plan_scope

    monkeypatch.delenv("EW_GE_BATCH_ROWS", raising=False)
    assert batch_rows_setting(compiled=True) is None
    assert batch_rows_setting(compiled=False) == PANDAS_BATCH_ROWS
    con = duckdb.connect()
    con.execute("create schema raw; create table raw.t (k int, _load_id varchar, _loaded_at timestamp)")
    con.execute("insert into raw.t select i, 'l' || (i % 3), timestamp '2026-01-01' + to_days(i % 3) "
                "from range(30) r(i)")
    plan = plan_scope(con, "t", {}, batch_rows_setting())
    assert plan.batches == [LoadScope("t", None, ("l0", "l1", "l2"))] and plan.new_rows == 30
    con.execute("insert into raw.t values (99, 'l3', '2026-01-04')")
    plan = plan_scope(con, "t", {"l0": 10, "l1": 10, "l2": 10}, batch_rows_setting())
    assert [b.loads for b in plan.batches] == [("l3",)]
    monkeypatch.setenv("EW_GE_BATCH_ROWS", "10")
    assert [b.loads for b in plan_scope(con, "t", {}, batch_rows_setting()).batches] == \
        [("l0",), ("l1",), ("l2",), ("l3",)]
    con.close()


def test_a_key_counted_over_the_table_is_no_semi_join_on_a_first_load():
    """{in_new_rows:raw.<table>.<column>}: rows of the table whose key is among the rows in scope;
    `true` when the scope is the whole table, where every key qualifies."""
    import duckdb

    from dagster_project.lib.quality import LoadScope, render_scope, scoped_table

    query = ("select k, count(*) from raw.t where {in_new_rows:raw.t.k} group by k having count(*) > 1 "
             "order by k")
    assert scoped_table(query) == "t"
    assert "{" not in render_scope(query) and " true " in render_scope(query)
    con = duckdb.connect()
    con.execute("create schema raw; create table raw.t (k int, _load_id varchar)")
    con.execute("insert into raw.t values (1, 'a'), (2, 'a'), (3, 'a'), (1, 'b'), (4, 'b'), (2, 'c'), (2, 'c')")
    assert con.execute(render_scope(query)).fetchall() == [(1, 2), (2, 3)]
    assert con.execute(render_scope(query, LoadScope("t", ("b",)))).fetchall() == [(1, 2)]
    assert con.execute(render_scope(query, LoadScope("t", ()))).fetchall() == []
    con.close()


def test_scoped_check_metadata_in_a_dagster_run(ew_home, tmp_path):
    d = tmp_path / "scoped"
    d.mkdir()
    (d / "budget_cap.json").write_text(json.dumps({
        "name": "budget_cap",
        "meta": {"ew": {"asset": ["raw", "campaigns"], "query": "select * from {new_rows:raw.campaigns}",
                        "description": "test suite"}},
        "expectations": [{"type": "expect_column_values_to_be_between",
                          "kwargs": {"column": "cost", "max_value": 1000}, "severity": "critical"}],
    }))
    _, ev = _run(ew_home, d)
    md = ev.metadata
    assert ev.passed and md["rows"].value == 2 and md["new_rows"].value == 2
    assert md["new_loads"].value == 1 and md["batches"].value == 1
    assert md["scope"].value == "new loads of raw.campaigns" and md["watermark_advanced"].value
    (ew_home.landing_dir / "campaigns" / "campaigns_20260601.csv").write_text(
        CAMPAIGNS.splitlines()[0] + "\nC3,会员日,coupon,app,2026-06-10 00:00:00,2026-06-11 00:00:00,9999.00\n",
        encoding="utf-8")
    (ew_home.landing_dir / "campaigns" / "campaigns_20260601.csv.done").touch()
    _, ev = _run(ew_home, d)
    md = ev.metadata
    assert not ev.passed and md["rows"].value == 1 and md["unexpected_count"].value == 1
    assert md["watermark_before"].value is not None and not md["watermark_advanced"].value
