"""State folders that share EW_DBT_SHARED_DIR start their dbt parse from another folder's
(lib/dbt_parse_seed.py): dbt re-parses no file, and the manifest is the one a parse from scratch
gives; a folder whose connection settings differ beyond the DuckDB path is parsed from scratch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e  # three dbt parses, ~35 s: not for the fast tier

PREPARE = """
from dagster_project.cli.environment import prepare_environment
prepare_environment()
from dagster_project.defs.dbt.project import prepare_dbt_project
print(prepare_dbt_project())
"""
BUILD_FIELDS = {"created_at", "generated_at", "invocation_id", "run_started_at", "invocation_started_at"}


def _prepare(home: Path, shared: Path | None, **env: str) -> Path:
    """What `ecomwh run` does first in a fresh state folder; returns its dbt target folder."""
    full_env = {"EW_HOME": str(home), "HOME": str(home.parent), "PATH": "/usr/bin:/bin", **env}
    if shared is not None:
        full_env["EW_DBT_SHARED_DIR"] = str(shared)
    proc = subprocess.run([sys.executable, "-c", PREPARE], env=full_env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return Path(proc.stdout.strip()).parent


def _files_parsed(target: Path) -> int:
    return json.loads((target / "perf_info.json").read_text())["parsed_path_count"]


def _databases(manifest: dict) -> set[str]:
    """The database every model's relation is in (the DuckDB file's stem), from the manifest's own
    nodes: no model is named here, so a renamed model cannot break the test."""
    names = {node["relation_name"].split(".")[0].strip('"') for node in manifest["nodes"].values()
             if node["resource_type"] == "model" and node.get("relation_name")}
    assert names, "the manifest holds no model"
    return names


def _manifest(target: Path) -> dict:
    def strip(v):
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k not in BUILD_FIELDS}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v
    return strip(json.loads((target / "manifest.json").read_text()))


def test_a_fresh_folder_starts_from_another_folders_parse_and_gets_the_same_manifest(tmp_path):
    shared = tmp_path / "shared"
    first = _prepare(tmp_path / "a" / "ew", shared)
    assert _files_parsed(first) > 100  # nothing to start from: every file parsed
    assert list((shared / "parse").glob("*.partial_parse.msgpack"))

    seeded = _prepare(tmp_path / "b" / "ew", shared)
    assert _files_parsed(seeded) == 0  # dbt accepted the seed: no file parsed again

    alone = _prepare(tmp_path / "c" / "ew", None)  # no shared folder: from scratch, as before
    assert _files_parsed(alone) > 100
    assert _manifest(seeded) == _manifest(alone)
    assert _databases(_manifest(seeded)) == {"warehouse"}


def test_another_database_name_or_an_unreadable_seed_parses_from_scratch(tmp_path):
    shared = tmp_path / "shared"
    _prepare(tmp_path / "a" / "ew", shared)

    # another file name is another database name in every relation: not the same settings
    other = tmp_path / "d" / "ew"
    target = _prepare(other, shared, EW_DUCKDB_PATH=str(other / "shop.duckdb"))
    assert _files_parsed(target) > 100
    assert _databases(_manifest(target)) == {"shop"}

    for seed in (shared / "parse").glob("*.partial_parse.msgpack"):
        seed.write_bytes(b"\x00not msgpack")
    target = _prepare(tmp_path / "e" / "ew", shared)
    assert _files_parsed(target) > 100
    assert _databases(_manifest(target)) == {"warehouse"}
