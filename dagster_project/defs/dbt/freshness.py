"""Freshness of the raw sources as Dagster checks, built from the dbt sources' freshness config.

The dbt sources (rendered from lib/contract.py) declare which raw asset each table is
(meta.dagster.asset_key), the column that dates its data (loaded_at_field) and its SLA
(freshness.warn_after). Here each becomes a `freshness_check` on the raw asset: it passes while the
newest data is at most the SLA old. The raw asset reports its newest data time as
dagster/last_updated_timestamp, so the check measures the data's age, not the load's. The SLA is
taken from the contract when the definitions load (EW_SLA_<SOURCE>_MIN overriding), so a changed
variable applies without reparsing dbt; tests/test_contract_render.py pins the two to each other.

Dagster 1.13 marks these check builders superseded by FreshnessPolicy, but a policy measures the time
since the last materialization only: every run materializes every raw asset, so a source whose
files stopped coming would look fresh. The checks read dagster/last_updated_timestamp, hence them.

Warnings only: a historical backfill is stale by design and must not fail a run. The checks run in
every pipeline run after the raw loads, and a sensor re-evaluates them between runs so an overdue
source shows in the UI without waiting for the next file.
"""

from __future__ import annotations

import json
import warnings
from datetime import timedelta
from pathlib import Path

import dagster as dg

from dagster_project.lib.contract import sla_minutes

SENSOR_NAME = "raw_freshness_checks"
# Seconds between the sensor's evaluations: a third of the tightest default SLA (orders, 15 min), so
# an overdue source shows within a third of its allowance.
SENSOR_INTERVAL_S = 5 * 60


def source_freshness(manifest_path: Path) -> dict[dg.AssetKey, str]:
    """Raw asset key -> source table name, for every dbt source with a freshness SLA."""
    manifest = json.loads(Path(manifest_path).read_text())
    out = {}
    for node in manifest["sources"].values():
        key = ((node.get("meta") or {}).get("dagster") or {}).get("asset_key")
        if key and ((node.get("freshness") or {}).get("warn_after") or {}).get("count"):
            out[dg.AssetKey(key)] = node["name"]
    return out


def build_freshness_checks(manifest_path: Path) -> list[dg.AssetChecksDefinition]:
    by_sla: dict[int, list[dg.AssetKey]] = {}
    slas = sla_minutes()
    for key, table in sorted(source_freshness(manifest_path).items(), key=lambda kv: kv[0].to_string()):
        by_sla.setdefault(slas[table], []).append(key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.SupersessionWarning)  # see the module's docstring
        return [
            check
            for minutes, keys in sorted(by_sla.items())
            for check in dg.build_last_update_freshness_checks(
                assets=keys, lower_bound_delta=timedelta(minutes=minutes), severity=dg.AssetCheckSeverity.WARN,
            )
        ]


def build_freshness_sensor(checks: list[dg.AssetChecksDefinition]) -> dg.SensorDefinition:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.SupersessionWarning)
        return dg.build_sensor_for_freshness_checks(
            freshness_checks=checks,
            minimum_interval_seconds=SENSOR_INTERVAL_S,
            name=SENSOR_NAME,
            default_status=dg.DefaultSensorStatus.RUNNING,
        )
