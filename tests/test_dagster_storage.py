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


OLD_DAGSTER_YAML = """\
# what ecomwh wrote before the pooled event log (8cc0675^): Dagster's default SQLite storage
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
"""


def test_a_state_folder_written_by_dagsters_own_storage_reads_on_and_keeps_growing(ew_home):
    """An EW_HOME from before the pooled event log: its runs were written by Dagster's stock
    SqliteEventLogStorage. The next command rewrites dagster.yaml; the old runs, their events and the
    latest materialization stay readable, and new runs go to the same files' layout."""
    ew_home.dagster_home.mkdir(parents=True, exist_ok=True)
    (ew_home.dagster_home / "dagster.yaml").write_text(OLD_DAGSTER_YAML)
    old = DagsterInstance.from_config(str(ew_home.dagster_home))
    try:
        assert type(old.event_log_storage) is not PooledSqliteEventLogStorage
        written = [dg.materialize([thing], instance=old).run_id for _ in range(2)]
        n_events = len(old.all_logs(written[-1]))
    finally:
        old.dispose()

    instance = _instance()  # what `ecomwh run` does first
    try:
        assert type(instance.event_log_storage) is PooledSqliteEventLogStorage
        for run_id in written:
            assert instance.get_run_by_id(run_id).is_success
            assert _last_event(instance, run_id) == dg.DagsterEventType.RUN_SUCCESS
        assert len(instance.all_logs(written[-1])) == n_events
        assert instance.get_latest_materialization_event(dg.AssetKey("thing")).run_id == written[-1]
        new = dg.materialize([thing], instance=instance).run_id
        assert instance.get_latest_materialization_event(dg.AssetKey("thing")).run_id == new
        assert len(instance.get_runs()) == 3
        assert (ew_home.dagster_home / "history" / "runs" / f"{written[0]}.db").exists()
        assert (ew_home.dagster_home / "history" / "runs" / f"{new}.db").exists()
    finally:
        instance.dispose()
