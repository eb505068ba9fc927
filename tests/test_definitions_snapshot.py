"""The Dagster definitions as a reviewed file: asset keys with their deps, group and checks, jobs with the
assets they run, schedules and sensors, compared with tests/snapshots/definitions.json.

A renamed dbt model, a lost dependency, a check that no longer blocks or a job that stopped selecting an
asset shows up here as a diff of that file. When the change is intended, rewrite the file and commit it
with the change:

    EW_UPDATE_SNAPSHOT=1 .venv/bin/pytest tests/test_definitions_snapshot.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"
UPDATE_COMMAND = "EW_UPDATE_SNAPSHOT=1 .venv/bin/pytest tests/test_definitions_snapshot.py"
# read at import: the ew_home fixture clears every EW_ variable before the test runs
UPDATE = os.environ.get("EW_UPDATE_SNAPSHOT") == "1"


def _key(key) -> str:
    return "/".join(key.path)


def describe(defs) -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=_key):
        node = graph.get(key)
        assets[_key(key)] = {
            "group": node.group_name,
            "deps": sorted(_key(p) for p in node.parent_keys),
            "checks": {c.name: "blocking" if graph.get(c).blocking else "non-blocking"
                       for c in sorted(node.check_keys, key=lambda c: c.name)},
        }
    jobs = {job.name: sorted(_key(k) for k in job.asset_layer.selected_asset_keys)
            for job in sorted(defs.resolve_all_job_defs(), key=lambda j: j.name)
            if not job.name.startswith("__")}
    schedules = {s.name: {"cron": s.cron_schedule, "timezone": s.execution_timezone, "job": s.job_name}
                 for s in sorted(defs.schedules or [], key=lambda s: s.name)}
    sensors = {}
    for sensor in sorted(defs.sensors or [], key=lambda s: s.name):
        sensor = defs.resolve_sensor_def(sensor.name)
        sensors[sensor.name] = {"type": sensor.sensor_type.value,
                                "jobs": sorted(t.job_name for t in sensor.targets)}
    return {"assets": assets, "jobs": jobs, "schedules": schedules, "sensors": sensors}


def test_definitions_match_the_snapshot(ew_home):
    from dagster_project.definitions import defs

    current = json.dumps(describe(defs), indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    if UPDATE:
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(current)
        pytest.fail(f"snapshot rewritten at {SNAPSHOT}: review its diff and run again without EW_UPDATE_SNAPSHOT")
    assert SNAPSHOT.exists(), f"no snapshot yet: write it with `{UPDATE_COMMAND}`"
    saved = SNAPSHOT.read_text()
    if current != saved:
        import difflib

        diff = "".join(difflib.unified_diff(saved.splitlines(keepends=True), current.splitlines(keepends=True),
                                            "snapshot", "definitions now", n=2))
        raise AssertionError(f"the Dagster definitions differ from {SNAPSHOT.name} (diff below). If the change is "
                             f"intended, rewrite it with `{UPDATE_COMMAND}` and commit it.\n{diff}")
