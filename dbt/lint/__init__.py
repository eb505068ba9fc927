"""What sqlfluff's jinja templater needs besides its dbt builtins to render our models without dbt
(`make check` lints offline, in seconds, with no profile or database): `var` with the values of
dbt_project.yml (models compute with them, e.g. `-var('ops_demand_window_days')`), `modules`, and
the `dbt` namespace of cross-database macros, each rendering the SQL dbt-duckdb would so the linter
parses what runs. Our own macros are stood in for in .sqlfluff. Not used by dbt itself."""

import datetime
import json
import re
from pathlib import Path
from types import SimpleNamespace

import yaml

_VARS = yaml.safe_load((Path(__file__).parents[1] / "dbt_project.yml").read_text())["vars"]


def var(name, default=None):
    return _VARS.get(name, default)


modules = SimpleNamespace(re=re, datetime=datetime)


def _dateadd(datepart, interval, from_date_or_timestamp):
    return f"({from_date_or_timestamp} + (interval ({interval}) {datepart}))"


def _datediff(first_date, second_date, datepart):
    return f"date_diff('{datepart}', cast({first_date} as timestamp), cast({second_date} as timestamp))"


def _date_trunc(datepart, date):
    return f"date_trunc('{datepart}', {date})"


def _listagg(measure, delimiter_text="','", order_by_clause=None, limit_num=None):
    order = f" {order_by_clause}" if order_by_clause else ""
    return f"string_agg({measure}, {delimiter_text}{order})"


dbt = SimpleNamespace(dateadd=_dateadd, datediff=_datediff, date_trunc=_date_trunc, listagg=_listagg,
                      type_string=lambda: "varchar")


_CONTRACT_MACROS = (Path(__file__).parents[1] / "macros" / "contract.sql").read_text()


def contract_sources():
    """The list the rendered contract_sources() macro returns (a macro in .sqlfluff can only render text)."""
    return json.loads(re.search(r"macro contract_sources\(\) %\}\s*\{\{ return\((.*?)\) \}\}", _CONTRACT_MACROS,
                                re.S).group(1))
