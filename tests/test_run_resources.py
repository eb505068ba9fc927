"""What an asset, op or sensor reads at run time comes from its resources (`warehouse`, `alerts`), built
from the EW_* settings as the definitions load: a run launched from the UI may override them and a test
passes its own. Destination URLs stay environment variables, so the UI never shows them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pytest


def test_the_warehouse_resource_takes_the_landing_guards_from_the_settings_as_it_is_built(ew_home, monkeypatch):
    from dagster_project.defs.resources import warehouse_resource

    monkeypatch.setenv("EW_LANDING_SETTLE_S", "0.5")
    monkeypatch.setenv("EW_LANDING_REQUIRE_DONE", "yes")
    monkeypatch.setenv("EW_MAX_FILE_MB", "3")
    monkeypatch.setenv("EW_MAX_COMPRESSION_RATIO", "7")
    monkeypatch.setenv("EW_DUCKDB_MEMORY_LIMIT", "300MB")
    with dg.build_resources({"warehouse": warehouse_resource()}) as resources:
        wh = resources.warehouse
    assert (wh.landing_settle_s, wh.landing_require_done, wh.max_file_mb, wh.max_compression_ratio,
            wh.duckdb_memory_limit) == (0.5, True, 3, 7.0, "300MB")
    assert wh.published_path == ew_home.serving_path


def test_the_published_copy_goes_where_the_run_s_warehouse_resource_says(ew_home, tmp_path):
    from dagster_project.defs.resources import WarehouseResource
    from dagster_project.defs.serving.assets import serving_warehouse

    con = duckdb.connect(str(ew_home.duckdb_path))
    con.execute("create schema marts")
    con.execute("create table marts.mart_x as select 1 as n")
    con.close()
    elsewhere = tmp_path / "elsewhere" / "copy.duckdb"
    run = WarehouseResource(home=str(ew_home.home), duckdb_path=str(ew_home.duckdb_path),
                            landing_dir=str(ew_home.landing_dir), quarantine_dir=str(ew_home.quarantine_dir),
                            serving_path=str(elsewhere))
    assert dg.materialize([serving_warehouse], resources={"warehouse": run}).success
    assert not ew_home.serving_path.exists()  # not EW_SERVING_PATH: the run's resource
    con = duckdb.connect(str(elsewhere), read_only=True)
    try:
        assert con.execute("select n from marts.mart_x").fetchall() == [(1,)]
    finally:
        con.close()


def test_the_alerts_resource_names_the_url_variables_and_carries_the_rest(ew_home, monkeypatch):
    from dagster_project.defs.alerts.resources import alerts_resource
    from dagster_project.settings import get_alert_settings

    monkeypatch.setenv("EW_ALERT_URLS", "json://a.example/x, json://b.example/y")
    monkeypatch.setenv("EW_ALERT_URLS_OPS", "json://ops.example/z")
    monkeypatch.setenv("EW_ALERT_LANGUAGE", "en")
    monkeypatch.setenv("EW_ALERT_QUIET_HOURS", "22:00-08:00")
    monkeypatch.setenv("EW_DELIVERY_DEADLINE", "09:30")
    resource = alerts_resource()
    # the tokens in the URLs are not part of the resource's config, which the UI shows
    assert isinstance(resource.urls, dg.EnvVar) and resource.urls.env_var_name == "EW_ALERT_URLS"
    assert resource.team_urls["ops"].env_var_name == "EW_ALERT_URLS_OPS"
    assert "example" not in repr(resource)
    assert resource.state_path == str(ew_home.home / "alerts" / "notifications.sqlite")
    with dg.build_resources({"alerts": resource}) as resources:
        assert resources.alerts.settings() == get_alert_settings()
    monkeypatch.setenv("EW_ALERT_LANGUAGE", "fr")
    with pytest.raises(ValueError, match="EW_ALERT_LANGUAGE must be zh or en"):
        alerts_resource()  # as the definitions load, not at the first alert


def test_the_delivery_deadline_sensor_reads_its_landing_folder_deadline_and_state_from_resources(ew_home, tmp_path):
    from dagster_project.defs.alerts.notifications import delivery_deadline
    from dagster_project.defs.alerts.resources import AlertsResource
    from dagster_project.defs.resources import WarehouseResource

    # orders delivered daily for a week into this run's landing folder, then not yesterday
    landing = tmp_path / "landing"
    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).date()
    (landing / "orders").mkdir(parents=True)
    for k in range(2, 9):
        (landing / "orders" / f"orders_{today - timedelta(days=k):%Y%m%d}.csv").write_text("order_id\n")
    state = tmp_path / "state" / "n.sqlite"
    resources = {
        "warehouse": WarehouseResource(home=str(ew_home.home), duckdb_path=str(ew_home.duckdb_path),
                                       landing_dir=str(landing), quarantine_dir=str(ew_home.quarantine_dir)),
        "alerts": AlertsResource(state_path=str(state), deadline="00:00"),  # always past
    }
    with dg.build_sensor_context(resources=resources) as ctx:
        result = delivery_deadline(ctx)
    assert result.skip_message == f"orders {today - timedelta(days=1)}: no_destination"
    assert state.exists() and not Path(ew_home.home / "alerts" / "notifications.sqlite").exists()
