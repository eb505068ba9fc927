"""Python finds the tables dbt builds through the manifest (dagster_project/lib/dbt_outputs.py): no
model name is typed in Python, a renamed model fails when the definitions load, and the marts
Python writes take their columns from the dbt sources that declare them."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from dagster_project.lib import dbt_outputs
from dagster_project.settings import REPO_ROOT

# the issue's own grep: a string literal that starts with a dbt layer's prefix
MODEL_NAME_LITERAL = re.compile(r'"(stg|int|fct|dim|mart)_')


def test_no_python_module_types_a_dbt_model_name():
    hits = [f"{p.relative_to(REPO_ROOT)}:{n}: {line.strip()}"
            for p in sorted((REPO_ROOT / "dagster_project").rglob("*.py"))
            for n, line in enumerate(p.read_text().splitlines(), 1) if MODEL_NAME_LITERAL.search(line)]
    assert hits == []


def _manifest() -> dict:
    model = {"resource_type": "model", "name": "fct_orders", "schema": "marts", "alias": "fct_orders"}
    source = {"resource_type": "source", "name": "mart_x", "source_name": "py", "schema": "marts",
              "identifier": "mart_x", "original_file_path": "models/x.yml",
              "meta": {"dagster": {"asset_key": ["marts", "mart_x"]},
                       "ew": {"written_by": "reader", "role": "x", "primary_key": ["k"]}},
              "columns": {"k": {"data_type": "varchar", "constraints": [{"type": "not_null"}]},
                          "v": {"data_type": "double", "constraints": []}}}
    return {"nodes": {"model.p.fct_orders": model}, "sources": {"source.p.py.mart_x": source},
            "exposures": {"exposure.p.reader": {"name": "reader",
                                                "depends_on": {"nodes": ["model.p.fct_orders",
                                                                         "source.p.py.mart_x"]}}}}


def test_a_query_names_only_what_its_exposure_declares():
    reads = dbt_outputs.exposure_tables("reader", _manifest())
    assert reads.sql("select * from {fct_orders} join {mart_x} using (k)") == \
        "select * from marts.fct_orders join marts.mart_x using (k)"
    with pytest.raises(KeyError, match="dim_customers is not among the dependencies of the dbt exposure reader"):
        reads.sql("select * from {dim_customers}")
    with pytest.raises(LookupError, match="no dbt exposure named nobody"):
        dbt_outputs.exposure_tables("nobody", _manifest())


def test_a_python_mart_is_created_with_the_columns_of_its_dbt_source(tmp_path):
    mart = dbt_outputs.written_by("reader", _manifest())["x"]
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    # the frame's extra column and column order do not reach the table: the source's columns do
    mart.replace(con, pl.DataFrame({"extra": [1], "v": [2.5], "k": ["a"]}))
    assert con.execute("select * from marts.mart_x").fetchall() == [("a", 2.5)]
    assert con.execute("select column_name, data_type, is_nullable from information_schema.columns "
                       "where table_name = 'mart_x' order by ordinal_position").fetchall() == [
        ("k", "VARCHAR", "NO"), ("v", "DOUBLE", "YES")]
    with pytest.raises(duckdb.ConstraintException):
        con.execute("insert into marts.mart_x values ('a', 1.0)")  # primary key k


def test_the_ltv_marts_take_their_columns_from_the_dbt_sources(ew_home):
    # ew_home: the definitions parse the dbt project into the test's state folder, not the repository
    from dagster_project.defs.models.ltv import WRITES

    assert {role: m.relation for role, m in WRITES.items()} == {
        "predicted": "marts.mart_ltv_predicted", "model": "marts.mart_ltv_model",
        "backtest": "marts.mart_ltv_backtest", "status": "marts.mart_ltv_status"}
    assert WRITES["predicted"].primary_key == ("customer_key", "as_of_date")
    assert WRITES["predicted"].columns["p_alive"] == "double not null"
    assert WRITES["status"].columns["as_of_date"] == "date"  # null when there is no valid order at all


@pytest.mark.e2e
def test_a_model_renamed_in_dbt_fails_when_the_definitions_load(tmp_path):
    """mart_kpi_targets renamed in every dbt file, but not in the exposure of the Python code that
    reads it (the daily digest): loading the definitions, which parses the project, fails and names
    the exposure. Before, the digest found no table of that name and left the targets out."""
    repo = tmp_path / "repo"
    shutil.copytree(REPO_ROOT, repo, ignore=shutil.ignore_patterns(
        ".git", ".venv*", ".ew", "target", "logs", "__pycache__", ".ruff_cache", "node_modules"))
    dbt_dir = repo / "dbt"
    (dbt_dir / "models/marts/kpi/mart_kpi_targets.sql").rename(dbt_dir / "models/marts/kpi/mart_kpi_goals.sql")
    exposures = dbt_dir / "models/_python__exposures.yml"
    for path in dbt_dir.rglob("*"):
        if path.suffix in (".sql", ".yml") and path != exposures:
            text = path.read_text()
            renamed = re.sub(r"\bmart_kpi_targets\b", "mart_kpi_goals", text)
            if renamed != text:
                path.write_text(renamed)
    env = {"EW_HOME": str(tmp_path / "ew"), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
           "HOME": str(tmp_path), "PYTHONPATH": str(repo)}
    load = ("from dagster_project.defs.dbt.project import prepare_dbt_project; prepare_dbt_project(); "
            "import dagster_project.definitions")  # what `ecomwh run` and `ecomwh serve` do
    proc = subprocess.run([sys.executable, "-c", load], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert "metric_alerts" in proc.stderr and "mart_kpi_targets" in proc.stderr, proc.stderr[-3000:]
