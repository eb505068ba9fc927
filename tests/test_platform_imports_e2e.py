"""The demo world built from its platform exports gives the same repurchase, LTV and segment marts,
row for row, as the same world built from contract files, for the customers the exports can
identify.

What exports cannot carry is left out of both builds by one stated rule (generator
exports.identifiable_world): buyers of Douyin and Pinduoduo (their exports have no buyer key and
mask phones, so each order would be a customer of its own) and platform users who never ordered
(exports list buyers only). Masked Taobao/Tmall/JD phones are linked by the shop's identity map
(`ecomwh import --identity-map`), as the import documents. Customer keys differ between the builds
(hashed buyer ids against the world's user ids), so per-customer marts are compared through the
customer that holds the same orders.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from datetime import date

import duckdb
import pytest

from dagster_project.lib.generator import generate
from dagster_project.lib.generator.exports import PLATFORM_CHANNELS, export_order_id
from ecomwh_proc import shared_env  # tests/ is on sys.path (pytest rootdir conftest)

pytestmark = pytest.mark.e2e

WORLD = dict(customers=600, days=60, seed=5, bad_rate=0.0, start=date(2026, 5, 20), identifiable_only=True)
AGGREGATE_MARTS = (
    "mart_repurchase_cohort", "mart_repurchase_cohort_channel", "mart_repurchase_period",
    "mart_repurchase_period_channel", "mart_repurchase_cycle", "mart_category_interval",
    "mart_repurchase_funnel", "mart_ltv_cohort",
)
CUSTOMER_MARTS = ("mart_customer_segments", "mart_ltv_predicted")
# columns that say when or by which run a row was built, not what it holds
BUILD_COLUMNS = {"built_at", "_loaded_at", "load_id", "computed_at", "model_fitted_at"}


def _run(home, *args):
    env = {"EW_HOME": str(home), "HOME": str(home.parent), "PATH": "/usr/bin:/bin", **shared_env()}
    proc = subprocess.run([sys.executable, "-m", "dagster_project.cli", *args], env=env, capture_output=True,
                          text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    root = tmp_path_factory.mktemp("exports_e2e")
    contract, exported = root / "contract" / "ew", root / "exports" / "ew"
    generate(contract / "landing", truth_path=contract / "truth.json", platform_channels=True, **WORLD)
    generate(exported / "landing", truth_path=exported / "truth.json", platform_exports=exported / "exports",
             **WORLD)
    for platform in PLATFORM_CHANNELS:
        shutil.copytree(exported / "exports" / platform, exported / "imports" / platform)
    _run(exported, "import", "--identity-map", str(exported / "exports" / "identity_map.csv"))
    _run(contract, "run")
    out = _run(exported, "run")
    assert "built raw/platform_imports" in out
    return contract / "warehouse.duckdb", exported / "warehouse.duckdb"


def _rows(con, table: str) -> tuple[list[str], list[tuple]]:
    cols = [r[0] for r in con.execute(f"describe marts.{table}").fetchall() if r[0] not in BUILD_COLUMNS]
    return cols, con.execute(f"select {', '.join(cols)} from marts.{table}").fetchall()


def _same(table: str, rows_a: list[tuple], rows_b: list[tuple]) -> None:
    """Row for row; model floats (the LTV fit sums in another order) equal to 1e-9 relative."""
    def key(r):
        return repr(tuple(None if isinstance(v, float) else v for v in r))

    rows_a, rows_b = sorted(rows_a, key=key), sorted(rows_b, key=key)
    assert len(rows_a) == len(rows_b), table
    for ra, rb in zip(rows_a, rows_b):
        assert len(ra) == len(rb) and all(
            math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9) if isinstance(x, float) and isinstance(y, float)
            else x == y for x, y in zip(ra, rb)), (table, ra, rb)


def test_same_marts_from_exports_as_from_contract_files(builds):
    db_a, db_b = builds
    a = duckdb.connect(str(db_a), read_only=True)
    b = duckdb.connect(str(db_b), read_only=True)
    try:
        # the exports did carry the platform orders (the comparison is not between two empty sets)
        n_platform = b.execute("select count(*) from marts.fct_orders where channel in "
                               f"({', '.join(repr(c) for c in PLATFORM_CHANNELS)})").fetchone()[0]
        assert n_platform > 100
        assert a.execute("select count(*) from marts.fct_orders").fetchone() == \
            b.execute("select count(*) from marts.fct_orders").fetchone()

        # customer in the contract build -> customer in the export build, through their orders
        key_b = dict(b.execute("select order_id, customer_key from marts.fct_orders").fetchall())
        mapping: dict[str, str] = {}
        orders = a.execute("select order_id, channel, customer_key from marts.fct_orders").fetchall()
        for order_id, channel, key in orders:
            bid = export_order_id(channel, order_id) if channel in PLATFORM_CHANNELS else order_id
            assert mapping.setdefault(key, key_b[bid]) == key_b[bid], (key, order_id)
        assert len(set(mapping.values())) == len(mapping), "two customers became one"

        for table in AGGREGATE_MARTS:
            cols_a, rows_a = _rows(a, table)
            cols_b, rows_b = _rows(b, table)
            assert cols_a == cols_b, table
            assert rows_a, table
            _same(table, rows_a, rows_b)
        for table in CUSTOMER_MARTS:
            cols, rows_a = _rows(a, table)
            _, rows_b = _rows(b, table)
            k = cols.index("customer_key")
            mapped = [tuple(mapping[v] if i == k else v for i, v in enumerate(r)) for r in rows_a]
            assert rows_a, table
            _same(table, mapped, rows_b)
    finally:
        a.close()
        b.close()


def test_every_export_row_is_accounted_for_in_the_warehouse(builds):
    _, db_b = builds
    con = duckdb.connect(str(db_b), read_only=True)
    try:
        bad = con.execute("select file_name from raw._imports "
                          "where rows_exported <> rows_converted + rows_quarantined").fetchall()
        assert bad == []
        planted = con.execute("select count(*) from raw.quarantine where load_id like 'import:%'").fetchone()[0]
        assert planted > 0
        # refused export rows name the downloaded file and its row; converted rows trace back to one
        assert con.execute("select count(*) from raw.quarantine where load_id like 'import:%' "
                           "and (row_number < 2 or file_name not like '%.%')").fetchone()[0] == 0
        unmatched = con.execute("""
            select count(*) from raw.orders o
            where o._file like '%_import_%'
              and not exists (select 1 from raw._import_lineage l
                              where l.landing_file = o._file and l.landing_row = o._row)""").fetchone()[0]
        assert unmatched == 0
    finally:
        con.close()
