"""A tiny generated dataset through the whole pipeline, in process, like `ecomwh run` does."""

from __future__ import annotations

import json
import subprocess
import sys

import duckdb
import pytest

from dagster_project.lib.contract import SOURCE_NAMES
from ecomwh_proc import shared_env  # tests/ is on sys.path (pytest rootdir conftest)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """generate + run once for the module; tests read the result."""
    home = tmp_path_factory.mktemp("e2e") / "ew"
    user_home = home.parent / "user_home"  # an empty HOME: nothing may appear in it
    user_home.mkdir()
    env = {"EW_HOME": str(home), "HOME": str(user_home), "PATH": "/usr/bin:/bin", **shared_env()}
    exe = [sys.executable, "-m", "dagster_project.cli"]
    gen = subprocess.run(exe + ["generate", "--customers", "300", "--days", "40", "--seed", "7",
                                "--bad-rate", "0.01"], env=env, capture_output=True, text=True, timeout=300)
    assert gen.returncode == 0, gen.stderr
    run = subprocess.run(exe + ["run"], env=env, capture_output=True, text=True, timeout=900)
    return home, gen, run


def test_run_succeeds_with_a_progress_line_per_step(built):
    home, _, run = built
    assert run.returncode == 0, run.stdout + run.stderr
    for source in SOURCE_NAMES:
        assert f"built raw/{source}" in run.stdout
    assert "built staging/stg_oms__orders" in run.stdout
    assert "done in" in run.stdout
    # GE Data Docs: rendered once, when the run ends, for every suite it validated
    docs = home / "gx" / "gx" / "uncommitted" / "data_docs" / "local_site"
    assert "GE Data Docs of " in run.stdout
    assert not (home / "gx" / "docs_pending.jsonl").exists()
    rendered = {p.relative_to(docs / "validations").parts[0] for p in (docs / "validations").rglob("*.html")}
    assert {"raw_orders", "raw_events", "mart_repurchase_cohort"} <= rendered, sorted(rendered)
    assert (docs / "index.html").exists()


def test_loaded_and_quarantined_rows_match_the_generators_truth(built):
    home, _, _ = built
    truth = json.loads((home / "truth.json").read_text())
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        for source in SOURCE_NAMES:
            loaded = con.execute(f"select count(*) from raw.{source}").fetchone()[0]
            assert loaded == truth["rows_per_source"][source], source
        by_rule = dict(((s, r), n) for s, r, n in con.execute(
            "select source, rule, count(*) from raw.quarantine group by all").fetchall())
        planted = {(s, r): n for s, rules in truth["bad_rows_by_rule"].items() for r, n in rules.items() if n}
        assert by_rule == planted
        # every planted bad row is quarantined at its exact file and row, for its rule and column
        got = set(con.execute("select file_name, row_number, rule from raw.quarantine").fetchall())
        want = {(b["file_name"], b["row_number"], b["rule"]) for b in truth["bad_rows"]}
        assert got == want
        # staging: one current row per order, and the newest status wins
        n_orders = con.execute("select count(distinct order_id) from raw.orders").fetchone()[0]
        assert con.execute("select count(*) from staging.stg_oms__orders").fetchone()[0] == n_orders
        stale = con.execute("""
            select count(*) from staging.stg_oms__orders s
            join (select order_id, arg_max(status, _file_date) as newest from raw.orders group by 1) r
              using (order_id)
            where s.order_status <> r.newest""").fetchone()[0]
        assert stale == 0
    finally:
        con.close()


def test_rerun_is_a_no_op_and_status_reports_every_source(built):
    home, _, _ = built
    env = {"EW_HOME": str(home), "PATH": "/usr/bin:/bin", **shared_env()}
    exe = [sys.executable, "-m", "dagster_project.cli"]
    before = _counts(home)
    again = subprocess.run(exe + ["run"], env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr
    # nothing new: the run stops before any step (lib/nothing_new.py); one that crosses midnight in
    # business time has work (the freshness rows are dated by their build) and loads nothing
    assert "nothing new: " in again.stdout or (
        "business date moved" in again.stdout and "+0 rows" in again.stdout), again.stdout
    assert _counts(home) == before
    status = subprocess.run(exe + ["status", "--json"], env=env, capture_output=True, text=True, timeout=120)
    report = json.loads(status.stdout)
    assert set(report["sources"]) == set(SOURCE_NAMES)
    assert all(r["files"] > 0 and r["last_load_utc"] for r in report["sources"].values())
    assert sum(r["rows_quarantined"] for r in report["sources"].values()) == sum(
        n for rules in report["quarantine_by_rule"].values() for n in rules.values())


def test_nothing_written_outside_the_state_folder(built):
    home, _, _ = built
    assert list((home.parent / "user_home").iterdir()) == []  # no ~/.dagster, ~/.dbt, ...
    assert sorted(p.name for p in home.parent.iterdir()) == ["ew", "user_home"]
    repo = subprocess.run(["git", "status", "--porcelain", "--ignored"], capture_output=True, text=True,
                          cwd=str(__import__("pathlib").Path(__file__).parent.parent)).stdout
    strays = [line for line in repo.splitlines()
              if not any(p in line for p in (".venv", "__pycache__", ".pytest_cache", ".ew/"))
              and line.startswith("!!")]
    assert strays == [], strays


def test_failed_run_exits_non_zero_with_a_readable_message(tmp_path):
    home = tmp_path / "ew"
    env = {"EW_HOME": str(home), "PATH": "/usr/bin:/bin"}
    exe = [sys.executable, "-m", "dagster_project.cli"]
    empty = subprocess.run(exe + ["run"], env=env, capture_output=True, text=True, timeout=300)
    assert empty.returncode == 2 and "landing folder" in empty.stderr and "is empty" in empty.stderr

    # a step that fails: the warehouse path is a directory, so no raw asset can open it
    landing = home / "landing" / "campaigns"
    landing.mkdir(parents=True)
    (landing / "campaigns_20260520.csv").write_text(
        "campaign_id,name,type,channel,start_at,end_at,cost\nC1,618,discount,app,2026-06-01,2026-06-18,100\n")
    blocked = tmp_path / "not_a_file.duckdb"
    blocked.mkdir()
    failed = subprocess.run(exe + ["run"], env={**env, "EW_DUCKDB_PATH": str(blocked)},
                            capture_output=True, text=True, timeout=600)
    assert failed.returncode == 1
    assert "FAILED" in failed.stderr and "raw__campaigns" in failed.stderr, failed.stderr
    assert "full log:" in failed.stderr


def _counts(home):
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return {s: con.execute(f"select count(*) from raw.{s}").fetchone()[0] for s in SOURCE_NAMES}
    finally:
        con.close()


