"""The predicted-LTV asset on a generated dataset: coverage, ranges, sums checked against values
computed independently from the raw tables, and the as-of / backtest behaviour."""

from __future__ import annotations

import shutil
from datetime import date, timedelta

import dagster as dg
import duckdb

RAW_PURCHASE_DAYS = """
    -- independent of dbt: newest row per order by file date, valid = paid and not cancelled,
    -- customer = phone_hash else user; purchase day = Shanghai date of order_ts
    with cur as (
        select * from raw.orders
        qualify row_number() over (partition by order_id order by _file_date desc, _loaded_at desc, _row desc) = 1
    ),
    person as (
        select user_id, coalesce(phone_hash, 'u:' || user_id) as person from raw.users
    )
    select distinct person, cast(timezone('Asia/Shanghai', timezone('UTC', order_ts)) as date) as d
    from cur join person using (user_id)
    where paid_ts is not null and status <> 'cancelled'
"""


def test_every_buyer_gets_a_prediction_with_sane_values(truth_warehouse):
    con = duckdb.connect(str(truth_warehouse.db), read_only=True)
    try:
        n, n_keys, bad_p, neg, as_of = con.execute("""
            select count(*), count(distinct customer_key),
                   count(*) filter (where p_alive < 0 or p_alive > 1 or isnan(p_alive)),
                   count(*) filter (where clv_12m < 0 or exp_purchases_90d < 0
                                    or exp_purchases_365d < exp_purchases_90d),
                   max(as_of_date)
            from marts.mart_ltv_predicted""").fetchone()
        assert n == n_keys == truth_warehouse.truth["counts"]["buyers"]
        assert bad_p == 0 and neg == 0
        assert as_of == date.fromisoformat(truth_warehouse.truth["window"]["data_end_date"])

        freq_sum = con.execute("select sum(frequency) from marts.mart_ltv_predicted").fetchone()[0]
        expected = con.execute(f"select count(*) - count(distinct person) from ({RAW_PURCHASE_DAYS})").fetchone()[0]
        assert freq_sum == expected

        params = dict(((m, p), v) for m, p, v in con.execute(
            "select model, param, value from marts.mart_ltv_model").fetchall())
        assert set(params) == {("bgnbd", p) for p in ("r", "alpha", "a", "b")} | {
            ("gamma_gamma", p) for p in ("p", "q", "gamma")}
        assert all(v > 0 for v in params.values())

        (bt_as_of, holdout, customers, predicted, actual), = con.execute(
            "select as_of_date, holdout_days, customers, predicted_purchases, actual_purchases "
            "from marts.mart_ltv_backtest").fetchall()
        assert holdout == 60 and bt_as_of == as_of - timedelta(days=60)
        acquired, later = con.execute(f"""
            with p as ({RAW_PURCHASE_DAYS}),
            firsts as (select person, min(d) as first_d from p group by 1)
            select count(*) filter (where first_d <= ?),
                   (select count(*) from p join firsts using (person) where first_d <= ? and d > ?)
            from firsts""", [bt_as_of, bt_as_of, bt_as_of]).fetchone()
        assert customers == acquired and actual == later
        assert abs(predicted - actual) / actual < 0.5  # a model, not an oracle: same order of magnitude
    finally:
        con.close()


def test_an_earlier_as_of_date_is_honoured_and_backtested(truth_warehouse, tmp_path, monkeypatch):
    db = tmp_path / "copy.duckdb"
    shutil.copy(truth_warehouse.db, db)
    end = date.fromisoformat(truth_warehouse.truth["window"]["data_end_date"])
    as_of = end - timedelta(days=30)
    for k, v in {"EW_HOME": str(tmp_path), "EW_DUCKDB_PATH": str(db), "EW_LANDING_DIR": str(tmp_path),
                 "EW_QUARANTINE_DIR": str(tmp_path), "EW_TIMEZONE": "Asia/Shanghai",
                 "EW_LTV_AS_OF": as_of.isoformat()}.items():
        monkeypatch.setenv(k, v)
    from dagster_project.defs.models.ltv import ltv_settings, predicted_ltv
    from dagster_project.defs.resources import warehouse_resource

    result = dg.materialize([predicted_ltv], resources={"warehouse": warehouse_resource(), "ltv": ltv_settings()})
    assert result.success
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("select distinct as_of_date from marts.mart_ltv_predicted").fetchall() == [(as_of,)]
        rows = con.execute("select as_of_date, holdout_days from marts.mart_ltv_backtest order by 1").fetchall()
        assert rows == [(end - timedelta(days=60), 60), (as_of, 30)]
        late = con.execute("select count(*) from marts.mart_ltv_predicted where first_purchase_date > ?",
                           [as_of]).fetchone()[0]
        assert late == 0
    finally:
        con.close()


def test_predicted_ltv_is_as_of_the_one_data_end_date(truth_warehouse, tmp_path, monkeypatch):
    """B10: the LTV fit takes the data end date every mart uses (int_data_end_dates_resolved: var
    as_of_date included), not the latest valid order of its own. Here that model says 20 days before
    the last order, as a dbt run with var as_of_date would."""
    db = tmp_path / "copy.duckdb"
    shutil.copy(truth_warehouse.db, db)
    pinned = date.fromisoformat(truth_warehouse.truth["window"]["data_end_date"]) - timedelta(days=20)
    con = duckdb.connect(str(db))
    con.execute(f"create or replace table intermediate.int_data_end_dates_resolved as "
                f"select date '{pinned.isoformat()}' as data_end_date")
    con.close()
    for k, v in {"EW_HOME": str(tmp_path), "EW_DUCKDB_PATH": str(db), "EW_LANDING_DIR": str(tmp_path),
                 "EW_QUARANTINE_DIR": str(tmp_path), "EW_TIMEZONE": "Asia/Shanghai"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("EW_LTV_AS_OF", raising=False)
    from dagster_project.defs.models.ltv import ltv_settings, predicted_ltv
    from dagster_project.defs.resources import warehouse_resource

    assert dg.materialize([predicted_ltv], resources={"warehouse": warehouse_resource(), "ltv": ltv_settings()}).success
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("select distinct as_of_date from marts.mart_ltv_predicted").fetchall() == [(pinned,)]
        assert con.execute("select as_of_date from marts.mart_ltv_backtest").fetchall() == [
            (pinned - timedelta(days=60),)]
        assert con.execute("select count(*) from marts.mart_ltv_predicted where first_purchase_date > ?",
                           [pinned]).fetchone()[0] == 0
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------
# A shop too young for the model: empty marts, the reason recorded, a successful run.


def _young_warehouse(tmp_path, monkeypatch, purchases: list[tuple[str, date, float]]):
    """A warehouse holding only marts.fct_orders with these (customer, day, net revenue) orders, and
    the data end date model over them (the latest order date, as without events)."""
    db = tmp_path / "young.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("create schema marts")
        con.execute("create schema intermediate")
        con.execute("create table marts.fct_orders (customer_key varchar, order_date date, "
                    "net_revenue decimal(18, 2), is_valid boolean)")
        if purchases:
            con.executemany("insert into marts.fct_orders values (?, ?, ?, true)", purchases)
        con.execute("insert into marts.fct_orders values ('cancelled', date '2026-11-01', 10, false)")
        con.execute("create view intermediate.int_data_end_dates_resolved as "
                    "select max(order_date) filter (where is_valid) as data_end_date from marts.fct_orders")
    for k, v in {"EW_HOME": str(tmp_path), "EW_DUCKDB_PATH": str(db), "EW_LANDING_DIR": str(tmp_path),
                 "EW_QUARANTINE_DIR": str(tmp_path), "EW_TIMEZONE": "Asia/Shanghai"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("EW_LTV_AS_OF", raising=False)
    from dagster_project.defs.models.ltv import ltv_settings, predicted_ltv
    from dagster_project.defs.resources import warehouse_resource

    result = dg.materialize([predicted_ltv], resources={"warehouse": warehouse_resource(), "ltv": ltv_settings()})
    with duckdb.connect(str(db), read_only=True) as con:
        tables = {t: con.execute(f"select count(*) from marts.{t}").fetchone()[0]
                  for t in ("mart_ltv_predicted", "mart_ltv_model", "mart_ltv_backtest")}
        status = con.execute("select * from marts.mart_ltv_status").fetchall()
    return result, tables, status


EMPTY = {"mart_ltv_predicted": 0, "mart_ltv_model": 0, "mart_ltv_backtest": 0}


def test_no_valid_order_at_all(tmp_path, monkeypatch):
    result, tables, status = _young_warehouse(tmp_path, monkeypatch, [])
    assert result.success and tables == EMPTY
    assert status == [(None, "not_fitted", "no valid order yet: nothing to fit the model on", 0, 0)]
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"p_alive_is_a_probability": True, "model_converged": True}


def test_customers_who_have_not_bought_twice_yet(tmp_path, monkeypatch):
    day = date(2026, 11, 14)
    one_time = [(f"c{i}", day - timedelta(days=i % 3), 50.0 + i) for i in range(60)]
    twice = [("c0", day - timedelta(days=1), 20.0)]  # c0 bought on days 14 and 13: one repeat customer
    result, tables, status = _young_warehouse(tmp_path, monkeypatch, one_time + twice)
    assert result.success and tables == EMPTY
    assert status == [(day, "not_fitted", "1 of 60 customers bought on two or more days by 2026-11-14; spend per "
                                          "purchase needs at least 10 repeat customers", 60, 1)]
    mat = {tuple(m.asset_key.path): m.materialization.metadata for m in result.get_asset_materialization_events()}
    assert mat[("marts", "mart_ltv_status")]["model_status"].value == "not_fitted"


def test_too_few_customers(tmp_path, monkeypatch):
    day = date(2026, 11, 14)
    rows = [(f"c{i}", day - timedelta(days=d), 30.0) for i in range(49) for d in (0, 7)]
    result, tables, status = _young_warehouse(tmp_path, monkeypatch, rows)
    assert result.success and tables == EMPTY
    assert status == [(day, "not_fitted", "49 customers bought by 2026-11-14; the model needs at least 50", 49, 49)]


def test_ltv_settings_are_a_resource_from_the_environment_that_a_run_may_override(ew_home, monkeypatch):
    """EW_LTV_* become the `ltv` resource as the definitions load; the asset reads the resource, so a
    run's resource config (here: another as-of date than the environment's) is what it fits on."""
    from dagster_project.defs.models.ltv import READS, LtvSettings, ltv_settings, predicted_ltv
    from dagster_project.defs.resources import warehouse_resource

    monkeypatch.setenv("EW_LTV_AS_OF", "2026-03-01")
    monkeypatch.setenv("EW_LTV_BACKTEST_DAYS", "30")
    assert ltv_settings() == LtvSettings(as_of="2026-03-01", time_unit_days=7.0, monthly_discount=0.01,
                                         backtest_days=30)
    con = duckdb.connect(str(ew_home.duckdb_path))
    fct_orders, data_end = READS.sql("{fct_orders}"), READS.sql("{int_data_end_dates_resolved}")
    for schema in {fct_orders.split(".")[0], data_end.split(".")[0]}:
        con.execute(f"create schema if not exists {schema}")
    con.execute(f"create table {fct_orders} as select 'c1' as customer_key, "
                "date '2026-02-01' as order_date, 10.0 as net_revenue, true as is_valid")
    con.execute(f"create table {data_end} as select date '2026-04-30' as data_end_date")
    con.close()
    run = LtvSettings(as_of="2026-02-15")  # the run's own, not the environment's
    assert dg.materialize([predicted_ltv], resources={"warehouse": warehouse_resource(), "ltv": run}).success
    con = duckdb.connect(str(ew_home.duckdb_path), read_only=True)
    try:  # one customer: not fitted, and the status says as of which date
        assert con.execute("select as_of_date, status from marts.mart_ltv_status").fetchall() == [
            (date(2026, 2, 15), "not_fitted")]
    finally:
        con.close()
