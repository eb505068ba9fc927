"""Dagster's event log in a state folder keeps its SQLite connections open between events
(lib/dagster_storage.py): what one instance writes, another (the UI, `ecomwh status`) reads at once,
and a process keeps a bounded number of files open."""

from __future__ import annotations

import dagster as dg
from dagster import DagsterInstance

from dagster_project.cli.environment import prepare_environment
from dagster_project.lib.dagster_storage import OPEN_SHARDS, PooledSqliteEventLogStorage


@dg.asset
def thing() -> int:
    return 1


def _last_event(instance: DagsterInstance, run_id: str):
    return [e.dagster_event_type for e in instance.all_logs(run_id) if e.is_dagster_event][-1]


def _instance() -> DagsterInstance:
    settings = prepare_environment()
    return DagsterInstance.from_config(str(settings.dagster_home))


def test_a_state_folder_uses_the_pooled_event_log_in_dagsters_layout(ew_home):
    instance = _instance()
    try:
        assert type(instance.event_log_storage) is PooledSqliteEventLogStorage
        result = dg.materialize([thing], instance=instance)
        assert result.success
        run_db = ew_home.dagster_home / "history" / "runs" / f"{result.run_id}.db"
        assert run_db.exists() and (ew_home.dagster_home / "history" / "runs" / "index.db").exists()
    finally:
        instance.dispose()


def test_what_one_instance_writes_another_reads_while_the_writer_keeps_its_files_open(ew_home):
    writer, reader = _instance(), _instance()
    try:
        first = dg.materialize([thing], instance=writer)
        seen = reader.get_latest_materialization_event(dg.AssetKey("thing"))
        assert seen is not None and seen.run_id == first.run_id
        second = dg.materialize([thing], instance=writer)  # the writer's shards are open now
        seen = reader.get_latest_materialization_event(dg.AssetKey("thing"))
        assert seen is not None and seen.run_id == second.run_id
        assert _last_event(reader, second.run_id) == dg.DagsterEventType.RUN_SUCCESS
        assert reader.get_run_by_id(second.run_id).is_success
    finally:
        writer.dispose()
        reader.dispose()


def test_a_process_keeps_a_bounded_number_of_shards_open(ew_home):
    instance = _instance()
    try:
        runs = [dg.materialize([thing], instance=instance).run_id for _ in range(OPEN_SHARDS + 3)]
        storage = instance.event_log_storage
        assert len(storage._engines) == OPEN_SHARDS  # the oldest runs' files were closed
        for run_id in runs:  # ... and a closed shard opens again when it is read
            assert _last_event(instance, run_id) == dg.DagsterEventType.RUN_SUCCESS
    finally:
        instance.dispose()


def test_a_deleted_run_is_gone_and_the_next_runs_are_stored(ew_home):
    instance = _instance()
    try:
        gone = dg.materialize([thing], instance=instance).run_id
        instance.delete_run(gone)
        assert instance.get_run_by_id(gone) is None and not instance.all_logs(gone)
        kept = dg.materialize([thing], instance=instance).run_id
        assert instance.get_latest_materialization_event(dg.AssetKey("thing")).run_id == kept
        instance.wipe()
        assert not instance.all_logs(kept)
        again = dg.materialize([thing], instance=instance).run_id
        assert _last_event(instance, again) == dg.DagsterEventType.RUN_SUCCESS
    finally:
        instance.dispose()


def test_the_write_ahead_logs_stay_small_while_the_files_are_open(ew_home):
    """Closing after every event used to checkpoint and delete the log; kept open, it is checkpointed
    every 64 pages and truncated to 256 kB (a nearly full disk must fill in a step, not in the log)."""
    instance = _instance()
    try:
        for _ in range(6):
            dg.materialize([thing], instance=instance)
        logs = list((ew_home.dagster_home / "history" / "runs").glob("*.db-wal"))
        assert logs, "the files in use are in WAL mode"
        assert max(p.stat().st_size for p in logs) <= 64 * 4096 + 2 * 4096 + 32, \
            {p.name: p.stat().st_size for p in logs}
    finally:
        instance.dispose()
