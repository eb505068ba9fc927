"""Where Python finds the tables dbt builds: through the dbt manifest, never by typing their names.

Every Python reader of the warehouse is a dbt exposure (dbt/models/_python__exposures.yml) whose
`depends_on` lists the models and sources it reads. Its SQL names them like dbt's ref(), as
`{model_name}`, and `ExposureTables.sql` fills in the relation from the manifest. So a model
renamed in dbt without its exposure fails `dbt parse` (the exposure's ref no longer resolves),
and a query naming a table its exposure does not declare fails where the query is rendered.

The marts Python writes itself (LTV, alerts) are dbt sources: `written_by` finds them by the
writer named in their `meta.ew.written_by`, keyed by `meta.ew.role`.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

EXPOSURES_FILE = "dbt/models/_python__exposures.yml"


@cache
def _read(path: str, mtime: float) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def load_manifest(path: Path | None = None) -> dict[str, Any]:
    """The dbt manifest at `path`, by default the one Dagster loads (parsed first if missing)."""
    if path is None:
        from dagster_project.defs.dbt.project import dbt_project

        path = dbt_project.manifest_path
    path = Path(path)
    return _read(str(path), path.stat().st_mtime)


def relation(node: dict[str, Any]) -> str:
    """schema.table of a model or source node, without the database: the published copy is
    another DuckDB file with the same schemas."""
    table = node.get("identifier") if node["resource_type"] == "source" else node.get("alias")
    return f"{node['schema']}.{table or node['name']}"


def asset_path(node: dict[str, Any]) -> tuple[str, ...]:
    """The Dagster asset key of a dbt model or source, by defs/dbt/assets.py's EwDbtTranslator rule:
    meta.dagster.asset_key, else raw/<table> for a source, else <schema>/<model>."""
    meta_key = (node.get("meta") or {}).get("dagster", {}).get("asset_key")
    if meta_key:
        return tuple(meta_key)
    if node["resource_type"] == "source":
        return ("raw", node["name"])
    return ((node.get("config") or {}).get("schema") or node["schema"], node["name"])


def model(name: str, manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    """The manifest node of dbt model `name`, for what names a model outside Python (a GE suite)."""
    manifest = manifest if manifest is not None else load_manifest()
    for node in manifest["nodes"].values():
        if node["resource_type"] == "model" and node["name"] == name:
            return node
    raise LookupError(f"no dbt model named {name} in the manifest")


def columns_in(con, table: str) -> list[str]:
    """The columns of `table` (schema.table) in the warehouse `con` opens; [] when it is not built yet."""
    schema, name = table.split(".", 1)
    return [r[0] for r in con.execute(
        "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
        "order by ordinal_position", [schema, name]).fetchall()]


@dataclass(frozen=True)
class ExposureTables:
    exposure: str
    nodes: dict[str, dict[str, Any]]  # node name -> manifest node, for every dependency

    @property
    def relations(self) -> dict[str, str]:
        return {name: relation(node) for name, node in self.nodes.items()}

    def table(self, name: str) -> str:
        """The relation of dependency `name`; a name the exposure does not declare is an error."""
        try:
            return self.relations[name]
        except KeyError:
            raise KeyError(f"{name} is not among the dependencies of the dbt exposure {self.exposure} "
                           f"({EXPOSURES_FILE}): {', '.join(sorted(self.nodes))}") from None

    def sql(self, query: str) -> str:
        """`query` with each `{name}` replaced by that dependency's relation."""
        names = {field for _, field, _, _ in string.Formatter().parse(query) if field}
        return query.format_map({n: self.table(n) for n in names})


def exposure_tables(name: str, manifest: dict[str, Any] | None = None) -> ExposureTables:
    """The models and sources the dbt exposure `name` depends on."""
    manifest = manifest if manifest is not None else load_manifest()
    exposure = next((e for e in manifest.get("exposures", {}).values() if e["name"] == name), None)
    if exposure is None:
        raise LookupError(f"no dbt exposure named {name} in the manifest ({EXPOSURES_FILE})")
    nodes = {}
    for uid in exposure["depends_on"]["nodes"]:
        node = manifest["nodes"].get(uid) or manifest["sources"][uid]
        nodes[node["name"]] = node
    return ExposureTables(name, nodes)


@dataclass(frozen=True)
class PythonMart:
    """A mart a Python asset writes, as its dbt source declares it: the one place its columns live."""

    key_path: tuple[str, ...]  # the Dagster asset key (meta.dagster.asset_key)
    relation: str
    columns: dict[str, str]  # name -> DDL type, "not null" from the column's not_null constraint
    primary_key: tuple[str, ...]

    @classmethod
    def from_source(cls, node: dict[str, Any]) -> PythonMart:
        columns = {}
        for name, col in node["columns"].items():
            if not col.get("data_type"):
                raise ValueError(f"dbt source {node['source_name']}.{node['name']}: column {name} has no "
                                 f"data_type ({node['original_file_path']})")
            not_null = any(c.get("type") == "not_null" for c in col.get("constraints") or [])
            columns[name] = col["data_type"] + (" not null" if not_null else "")
        meta = node.get("meta") or {}
        return cls(tuple(meta["dagster"]["asset_key"]), relation(node), columns,
                   tuple(meta["ew"].get("primary_key") or ()))

    def replace(self, con, frame) -> None:
        """Recreate the table and insert `frame`'s rows (None: left empty); the caller owns the
        transaction, so several marts can be replaced together."""
        ddl = ", ".join(f"{c} {t}" for c, t in self.columns.items())
        pk = f", primary key ({', '.join(self.primary_key)})" if self.primary_key else ""
        con.execute(f"create schema if not exists {self.relation.split('.')[0]}")
        con.execute(f"create or replace table {self.relation} ({ddl}{pk})")
        if frame is not None and frame.height:
            con.register("python_mart_frame", frame.select(list(self.columns)))
            con.execute(f"insert into {self.relation} select * from python_mart_frame")
            con.unregister("python_mart_frame")


def written_by(writer: str, manifest: dict[str, Any] | None = None) -> dict[str, PythonMart]:
    """The dbt sources a Python asset writes (meta.ew.written_by), by their meta.ew.role."""
    manifest = manifest if manifest is not None else load_manifest()
    found = {}
    for node in manifest["sources"].values():
        ew = (node.get("meta") or {}).get("ew") or {}
        if ew.get("written_by") == writer:
            found[ew.get("role") or node["name"]] = PythonMart.from_source(node)
    if not found:
        raise LookupError(f"no dbt source declares meta.ew.written_by: {writer}")
    return found
