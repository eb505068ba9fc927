"""Render the Superset dashboard bundle (Superset 6.1 native export format) and the dbt exposures from specs.

    .venv/bin/python superset/build_bundle.py           # (re)write superset/bundle/ and _exposures.yml
    .venv/bin/python superset/build_bundle.py --check   # exit 1 if the checked-in files differ

Everything a dashboard shows is data (docs/serving.md "Dashboards as code"):
  superset/dashboards/<slug>.yaml   title, description, note, rows of chart keys with widths and heights
  superset/charts/<slug>.yaml       the dashboard's charts, one entry per key, in the helper vocabulary below
  dbt model/source YAML             columns and types, and under config.meta.superset a dataset's time column,
                                    metrics and calculated columns (labels zh/en, d3 format)
  superset/datasets.yaml            virtual (SQL) datasets, in the same vocabulary
  superset/labels.yaml              column labels, value vocabularies, label colours; contract enums' value
                                    labels come from dbt/seeds/enum_labels.csv
This file is only the renderer. The bundle is what `dagster_project.defs.serving.superset.provision` zips
and POSTs to /api/v1/assets/import/. Import overwrites by UUID, so every UUID here is uuid5 of a fixed
namespace and the object's name, and chart ids and file names derive from chart keys: re-importing updates
objects in place, and adding a chart writes its own file and rewrites only its dashboard's.
Our own texts carry Chinese and English, because Superset's language switch translates only Superset's UI.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "superset"
BUNDLE = SPECS / "bundle"
MARTS_YAML = REPO / "dbt" / "models" / "marts"
EXPOSURES = MARTS_YAML / "_exposures.yml"
ENUM_LABELS = REPO / "dbt" / "seeds" / "enum_labels.csv"
KPI_TARGETS = REPO / "dbt" / "seeds" / "kpi_targets.csv"
SUPERSET_URL = "http://127.0.0.1:8088"
DATABASE = "ecom_warehouse"
SCHEMA = "marts"
VERSION = "1.0.0"
# A fixed timestamp keeps the output byte-identical between runs (the import ignores it).
TIMESTAMP = "2026-01-01T00:00:00+00:00"
NAMESPACE = uuid.UUID("5b0f6a52-8c1e-4d4e-9a55-ecb0a2e7d001")
NO_FILTER = "No filter"
GRAINS = {"day": "P1D", "week": "P1W", "month": "P1M", "quarter": "P3M"}
KEY = re.compile(r"[a-z0-9_]+")


def uid(kind: str, name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{name}"))


def _yaml(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# Specs: dbt tables, labels, datasets
@dataclass(frozen=True)
class DbtTable:
    name: str
    source: str | None  # dbt source name for Python-built marts, None for dbt models
    columns: dict[str, tuple[str | None, str | None]]  # name -> (data_type, description)
    superset: dict  # config.meta.superset: the dataset's time column, metrics, calculated columns
    path: Path


def load_dbt_tables(root: Path = MARTS_YAML) -> dict[str, DbtTable]:
    """Every model and source table declared in the marts' YAML, with its documented columns."""
    tables: dict[str, DbtTable] = {}
    for path in sorted(root.rglob("*.yml")):
        doc = _yaml(path) or {}
        entries = [(m, None) for m in doc.get("models") or []]
        entries += [(t, s["name"]) for s in doc.get("sources") or [] for t in s.get("tables") or []]
        for entry, source in entries:
            cols = {c["name"]: (c.get("data_type"), _one_line(c.get("description")))
                    for c in entry.get("columns") or []}
            meta = ((entry.get("config") or {}).get("meta") or {}).get("superset") or {}
            tables[entry["name"]] = DbtTable(entry["name"], source, cols, meta, path)
    return tables


def _one_line(text: str | None) -> str | None:
    return " ".join(text.split()) if text else None


def ref(table: DbtTable) -> str:
    return f"source('{table.source}', '{table.name}')" if table.source else f"ref('{table.name}')"


@dataclass(frozen=True)
class Labels:
    columns: dict[str, str]  # column name -> "中文 · English", for every dataset that has the column
    values: dict[str, dict[str, str]]  # vocabulary -> value -> label
    colors: dict[str, dict[str, str]]  # palette -> label -> colour
    # select filters: label column -> its name and the raw columns it labels. A dashboard gets each one
    # whose label column some chart's dataset has.
    filters: dict[str, dict]


def load_labels(path: Path = SPECS / "labels.yaml", enums: Path = ENUM_LABELS) -> Labels:
    """labels.yaml, with the contract enums' value labels from the enum seed ("天猫 Tmall")."""
    spec = _yaml(path)
    values: dict[str, dict[str, str]] = {}
    with enums.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            zh, en = row["label_zh"], row["label_en"]
            values.setdefault(row["enum"], {})[row["value"]] = zh if zh == en else f"{zh} {en}"
    for name, mapping in (spec.get("values") or {}).items():
        values.setdefault(name, {}).update({str(k): v for k, v in mapping.items()})
    return Labels(spec.get("columns") or {}, values, spec.get("colors") or {}, spec.get("select_filters") or {})


def case(col: str, mapping: dict[str, str]) -> str:
    whens = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in mapping.items())
    return f"CASE {col} {whens} ELSE {col} END"


def _label(spec: dict) -> str:
    """label_zh · label_en, the form every bilingual label takes."""
    if "label_zh" in spec and "label_en" in spec:
        return f"{spec['label_zh']} · {spec['label_en']}"
    return spec.get("label") or spec.get("label_zh") or spec.get("label_en")


@dataclass
class Dataset:
    name: str
    dttm: str | None
    metrics: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # name -> (sql, label, d3format)
    calc: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # name -> (sql, label, type)
    sql: str | None = None  # virtual dataset
    columns: dict[str, str] | None = None  # virtual dataset: name -> type
    description: str | None = None
    labels: dict[str, str] = field(default_factory=dict)  # column -> label: labels.yaml's, then the dataset's own
    totals: str | None = None  # column whose value 'all' marks total rows (never a select filter's source)

    @property
    def uuid(self) -> str:
        return uid("dataset", self.name)

    def tables(self) -> set[str]:
        """The marts this dataset reads."""
        return set(re.findall(rf"\b{SCHEMA}\.(\w+)", self.sql)) if self.sql else {self.name}


def dataset(name: str, spec: dict, labels: Labels, where: str) -> Dataset:
    """A dataset from its spec (meta.superset of a dbt model, or an entry of datasets.yaml).

    A calculated column with `values: <vocabulary>` labels the column it names (default: its own name
    without _label): a filter or legend on `channel_label` reads "天猫 Tmall", and giving every
    channel-bearing dataset the same column name lets one native filter reach all of them.
    """
    calc = {}
    for col, c in (spec.get("calculated_columns") or {}).items():
        if "values" in c:
            if c["values"] not in labels.values:
                raise SystemExit(f"{where}: {name}.{col}: no vocabulary {c['values']!r} in labels.yaml or "
                                 f"{ENUM_LABELS.relative_to(REPO)}")
            sql, typ = case(c.get("column", col.removesuffix("_label")), labels.values[c["values"]]), "VARCHAR"
        else:
            sql, typ = c["sql"], c.get("type", "VARCHAR")
        calc[col] = (sql, _label(c), typ)
    metrics = {m: (s["sql"], _label(s), s.get("format", "")) for m, s in (spec.get("metrics") or {}).items()}
    sql = spec.get("sql")
    return Dataset(name, spec.get("time_column"), metrics, calc, sql.rstrip("\n") if sql else None,
                   spec.get("columns"), spec.get("description"),
                   labels.columns | (spec.get("column_labels") or {}), spec.get("totals"))


DS: dict[str, Dataset] = {}  # the datasets charts use, by name: the chart helpers look up time columns here


# ---------------------------------------------------------------------------------------------
# Charts: each helper returns form_data (params) and the one query the chart's buildQuery sends,
# so the saved query_context serves /api/v1/chart/<id>/data/ without a browser.
@dataclass
class Chart:
    key: str
    title: str
    viz: str
    dataset: str
    params: dict
    query: dict
    time_col: str | None  # column the dashboard's date filter narrows, None: out of its scope
    description: str | None = None
    id: int = 0

    @property
    def uuid(self) -> str:
        return uid("chart", self.key)


def _filters(filters: list, time_col: str | None) -> tuple[list, list]:
    """(adhoc_filters for params, filters for the query object) from (column, op, value) triples."""
    adhoc, query = [], []
    for col, op, val in filters + ([(time_col, "TEMPORAL_RANGE", NO_FILTER)] if time_col else []):
        adhoc.append({"clause": "WHERE", "expressionType": "SIMPLE", "subject": col, "operator": op,
                      "comparator": val, "isExtra": False, "isNew": False,
                      "filterOptionName": f"filter_{col}_{op.replace(' ', '_').lower()}"})
        query.append({"col": col, "op": op, **({"val": val} if val is not None else {})})
    return adhoc, query


def _axis(col: str, grain: str | None) -> dict:
    return {"columnType": "BASE_AXIS", "sqlExpression": col, "label": col, "expressionType": "SQL",
            **({"timeGrain": grain} if grain else {})}


def chart(key, title, viz, ds, params, *, columns=(), metrics_=(), filters=(), time_col="auto",
          orderby=(), row_limit=10000, description=None, **query_extra) -> Chart:
    time_col = DS[ds].dttm if time_col == "auto" else time_col
    adhoc, qfilters = _filters(list(filters), time_col)
    params = {"datasource": "0__table", "viz_type": viz, "adhoc_filters": adhoc, "row_limit": row_limit,
              "time_range": NO_FILTER, "extra_form_data": {}, "dashboards": [], **params}
    query = {"filters": qfilters, "extras": {"having": "", "where": ""}, "applied_time_extras": {},
             "columns": list(columns), "metrics": list(metrics_), "orderby": [list(o) for o in orderby],
             "annotation_layers": [], "row_limit": row_limit, "series_limit": 0, "order_desc": True,
             "url_params": {}, "custom_params": {}, "custom_form_data": {}, **query_extra}
    if not metrics_:
        del query["metrics"]
    return Chart(key, title, viz, ds, params, query, time_col, description)


def big_number(key, title, ds, metric, fmt, *, trend_grain=None, filters=(), subheader="", time_col="auto"):
    """KPI tile; with trend_grain a trend line of the metric over the dataset's date column."""
    common = {"metric": metric, "y_axis_format": fmt, "header_font_size": 0.4, "subheader_font_size": 0.15,
              "subheader": subheader, "force_timestamp_formatting": False, "time_format": "smart_date"}
    if not trend_grain:
        return chart(key, title, "big_number_total", ds, common, metrics_=[metric], filters=filters,
                     time_col=time_col)
    x = DS[ds].dttm
    return chart(key, title, "big_number", ds, {
        **common, "x_axis": x, "time_grain_sqla": trend_grain, "show_trend_line": True,
        "start_y_axis_at_zero": True, "compare_lag": 1, "compare_suffix": "较上期 · vs prior period",
        "rolling_type": "None", "aggregation": "LAST_VALUE"},
        columns=[_axis(x, trend_grain)], metrics_=[metric], filters=filters,
        orderby=[(_axis(x, trend_grain), True)])


def series(key, title, ds, x, metrics_, *, kind="line", grain=None, groupby=(), filters=(), fmt="SMART_NUMBER",
           stack=False, x_is_time=True, description=None, time_col="auto", extra=None, targets=()):
    """ECharts time-series family; with x_is_time False the x-axis is a category (bar by channel...).

    targets: KPI targets (target_id of dbt/seeds/kpi_targets.csv, or {target, scale} where the chart's
    unit differs, e.g. scale 60 for hours drawn in minutes) drawn as dashed lines on a time axis.
    """
    if targets and not x_is_time:
        raise ValueError("target lines need a time axis")
    viz = {"line": "echarts_timeseries_line", "bar": "echarts_timeseries_bar", "area": "echarts_area"}[kind]
    params = {
        "x_axis": x, "time_grain_sqla": grain if x_is_time else None, "metrics": list(metrics_),
        "groupby": list(groupby), "order_desc": True, "truncate_metric": True, "show_empty_columns": True,
        "comparison_type": "values", "x_axis_sort_asc": True, "x_axis_sort_series": "name",
        "x_axis_sort_series_ascending": True, "x_axis_time_format": "smart_date", "x_axis_title_margin": 15,
        "y_axis_format": fmt, "y_axis_title_margin": 15, "y_axis_title_position": "Left",
        "logAxis": False, "minorSplitLine": False, "truncateYAxis": False, "y_axis_bounds": [None, None],
        "rich_tooltip": True, "tooltipTimeFormat": "smart_date", "show_legend": True, "legendType": "scroll",
        "legendOrientation": "top", "sort_series_type": "sum", "color_scheme": "supersetColors",
        "only_total": True, "show_value": False, "zoomable": False, "markerEnabled": kind == "line",
        "markerSize": 6, "seriesType": "line", "opacity": 0.3 if kind == "area" else 0.2,
        "stack": "Stack" if stack else None, "orientation": "vertical",
        "annotation_layers": [target_line(t) for t in targets],
        "forecastEnabled": False, "rolling_type": None, "resample_method": None, "resample_rule": None,
    }
    if not x_is_time:
        # every category labelled (ECharts hides "overlapping" ones), tilted when they are words
        params.pop("time_grain_sqla")
        params |= {"xAxisLabelInterval": "0", "xAxisLabelRotation": 30 if kind == "bar" else 0}
    params |= extra or {}
    axis = _axis(x, grain if x_is_time else None)
    return chart(key, title, viz, ds, params, columns=[axis, *groupby], metrics_=metrics_, filters=filters,
                 orderby=[(metrics_[0], False)], series_columns=list(groupby), description=description,
                 time_col=time_col)


TARGETS: dict[str, dict] = {}  # dbt/seeds/kpi_targets.csv by target_id
TARGET_COLOR = "#666666"


def target_line(spec: str | dict) -> dict:
    """A KPI target as a formula annotation: Superset draws it in the browser, no query (and no
    second copy of the value: it is read from the seed the marts compare actuals with)."""
    tid, scale = (spec, 1) if isinstance(spec, str) else (spec["target"], spec.get("scale", 1))
    if tid not in TARGETS:
        raise ValueError(f"no KPI target {tid!r} in {KPI_TARGETS.relative_to(REPO)}")
    t = TARGETS[tid]
    value = float(t["target_value"])
    shown = f"{value:.0%}" if t["unit"] == "share" else f"{value:g} {t['unit']}"
    op = "≥" if t["direction"] == "at_least" else "≤"
    return {"name": f"目标 {t['metric_name_zh']}{op}{shown} · Target {t['metric_name_en']} {op} {shown}",
            "annotationType": "FORMULA", "sourceType": "", "value": f"{value * scale:g}", "overrides": {},
            "show": True, "showLabel": True, "showMarkers": False, "hideLine": False, "titleColumn": "",
            "descriptionColumns": [], "timeColumn": "", "intervalEndColumn": "", "color": TARGET_COLOR,
            "opacity": "", "style": "dashed", "width": 2}


def load_targets(path: Path = KPI_TARGETS) -> dict[str, dict]:
    with path.open(encoding="utf-8", newline="") as f:
        return {row["target_id"]: row for row in csv.DictReader(f)}


def pie(key, title, ds, groupby, metric, *, filters=(), fmt="SMART_NUMBER", time_col="auto", extra=None):
    return chart(key, title, "pie", ds, {
        "groupby": [groupby], "metric": metric, "sort_by_metric": True, "color_scheme": "supersetColors",
        "show_labels_threshold": 3, "show_legend": True, "legendType": "scroll", "legendOrientation": "right",
        "label_type": "key_percent", "number_format": fmt, "date_format": "smart_date", "show_labels": True,
        "labels_outside": True, "label_line": True, "outerRadius": 70, "donut": True, "innerRadius": 40,
        "show_total": True, **(extra or {})}, columns=[groupby], metrics_=[metric], filters=filters, orderby=[(metric, False)],
        time_col=time_col)


def funnel(key, title, ds, groupby, metric, *, filters=()):
    return chart(key, title, "funnel", ds, {
        "groupby": [groupby], "metric": metric, "sort_by_metric": True, "percent_calculation_type": "first_step",
        "color_scheme": "supersetColors", "show_legend": False, "label_type": "key_value_percent",
        "tooltip_label_type": "key_value_percent", "number_format": "SMART_NUMBER", "show_labels": True,
        "show_tooltip_labels": True}, columns=[groupby], metrics_=[metric], filters=filters,
        orderby=[(metric, False)])


def heatmap(key, title, ds, x, y, metric, *, filters=(), fmt=".0%", bounds=(None, None), time_col="auto",
            extra=None):
    return chart(key, title, "heatmap_v2", ds, {
        "x_axis": x, "groupby": y, "metric": metric, "sort_x_axis": "alpha_asc", "sort_y_axis": "alpha_desc",
        "normalize_across": "heatmap", "legend_type": "continuous", "linear_color_scheme": "superset_seq_1",
        "xscale_interval": -1, "yscale_interval": -1, "left_margin": 100, "bottom_margin": "auto",
        "value_bounds": list(bounds), "y_axis_format": fmt, "x_axis_time_format": "smart_date",
        "show_legend": True, "show_percentage": False, "show_values": True, "normalized": False,
        "border_color": {"r": 255, "g": 255, "b": 255, "a": 1}, "border_width": 1, **(extra or {})},
        columns=[x, y], metrics_=[metric], filters=filters, orderby=[(x, True), (y, True)], time_col=time_col)


def histogram(key, title, ds, column, *, bins=20, filters=(), x_title="", y_title="客户数 · Customers"):
    return chart(key, title, "histogram_v2", ds, {
        "column": column, "groupby": [], "bins": bins, "normalize": False, "cumulative": False,
        "x_axis_title": x_title, "y_axis_title": y_title, "x_axis_format": "SMART_NUMBER",
        "y_axis_format": "SMART_NUMBER", "show_value": False, "show_legend": False,
        "color_scheme": "supersetColors"}, columns=[column], filters=filters, row_limit=50000)


def table(key, title, ds, *, groupby=(), metrics_=(), columns=(), order=None, filters=(), page=20,
          row_limit=1000, time_col="auto", description=None, formats=None, bars=None):
    """Aggregated table (groupby + metrics) or, with columns, a raw row list exportable to CSV.

    order is (column or metric, ascending); a raw list may take a list of them (sort by the first, then...).
    """
    raw = bool(columns)
    params = {"query_mode": "raw" if raw else "aggregate", "groupby": list(groupby), "metrics": list(metrics_),
              "all_columns": list(columns), "percent_metrics": [], "order_desc": True, "server_pagination": False,
              "server_page_length": 10, "page_length": page, "include_search": True, "show_cell_bars": (not raw) if bars is None else bars,
              "color_pn": True, "allow_rearrange_columns": True, "table_timestamp_format": "%Y-%m-%d",
              "conditional_formatting": [], "temporal_columns_lookup": {},
              "column_config": {col: {"d3NumberFormat": fmt} for col, fmt in (formats or {}).items()}}
    orderby = []
    if raw and order:
        orders = order if isinstance(order, list) else [order]
        params["order_by_cols"] = [json.dumps([col, asc]) for col, asc in orders]
        orderby = orders
    elif order:
        params["timeseries_limit_metric"] = order[0]
        params["order_desc"] = not order[1]
        orderby = [order]
    return chart(key, title, "table", ds, params, columns=columns if raw else groupby, metrics_=metrics_,
                 filters=filters, orderby=orderby, row_limit=row_limit, time_col=time_col, description=description)


def pivot(key, title, ds, rows, cols, metric, *, filters=(), fmt="SMART_NUMBER"):
    return chart(key, title, "pivot_table_v2", ds, {
        "groupbyRows": list(rows), "groupbyColumns": list(cols), "metrics": [metric], "metricsLayout": "COLUMNS",
        "aggregateFunction": "Sum", "valueFormat": fmt, "date_format": "smart_date", "rowOrder": "key_a_to_z",
        "colOrder": "key_a_to_z", "rowTotals": False, "colTotals": False, "transposePivot": False,
        "combineMetric": False, "conditional_formatting": [], "currency_format": {}},
        columns=[*rows, *cols], metrics_=[metric], filters=filters, orderby=[(metric, False)])


def box_plot(key, title, ds, across, groupby, metric, *, filters=(), time_col="auto"):
    return chart(key, title, "box_plot", ds, {
        "columns": [across], "groupby": [groupby], "metrics": [metric], "whiskerOptions": "Tukey",
        "x_axis_title": "", "y_axis_title": "", "number_format": "SMART_NUMBER", "date_format": "smart_date",
        "x_ticks_layout": "auto", "color_scheme": "supersetColors"},
        columns=[groupby, across], metrics_=[metric], filters=filters, row_limit=50000, time_col=time_col)


# ---------------------------------------------------------------------------------------------
HELPERS = {f.__name__: f for f in (big_number, series, pie, funnel, heatmap, histogram, table, pivot, box_plot)}
ARG_NAMES = {"dataset": "ds", "metrics": "metrics_"}  # spec key -> helper argument


def chart_from_spec(key: str, spec: dict, where: Path) -> Chart:
    """One entry of superset/charts/<slug>.yaml: `type` names a helper, the other keys are its arguments."""
    if not KEY.fullmatch(key):
        raise SystemExit(f"{where}: chart key {key!r}: use lower-case letters, digits and _ (it names files)")
    spec = dict(spec)
    helper = HELPERS.get(spec.pop("type", None))
    if helper is None:
        raise SystemExit(f"{where}: chart {key}: type must be one of {', '.join(HELPERS)}")
    args = {ARG_NAMES.get(k, k): v for k, v in spec.items()}
    for grain in ("grain", "trend_grain"):
        if grain in args:
            args[grain] = GRAINS.get(args[grain], args[grain])
    if isinstance(args.get("order"), list) and args["order"] and isinstance(args["order"][0], str):
        args["order"] = tuple(args["order"])  # one (column, ascending) pair, not a list of them
    if args.get("ds") not in DS:
        raise SystemExit(f"{where}: chart {key}: dataset {args.get('ds')!r} is neither a dbt model/source under "
                         f"{MARTS_YAML.relative_to(REPO)} nor in superset/datasets.yaml")
    try:
        return helper(key, **args)
    except (TypeError, ValueError) as exc:
        raise SystemExit(f"{where}: chart {key}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Dashboards: rows of (chart, width in 12 grid columns)
@dataclass
class Dashboard:
    slug: str
    title: str
    description: str
    note: str  # markdown shown at the top: definitions an analyst needs before reading the numbers
    rows: list[list[tuple[Chart, int]]]
    heights: dict[int, int] = field(default_factory=dict)  # row index -> grid height
    colors: dict[str, str] = field(default_factory=dict)
    note_height: int = 12

    @property
    def uuid(self) -> str:
        return uid("dashboard", self.slug)

    @property
    def charts(self) -> list[Chart]:
        return [c for row in self.rows for c, _ in row]


def load_dashboard(path: Path, charts_path: Path, labels: Labels) -> Dashboard:
    spec = _yaml(path)
    chart_specs = _yaml(charts_path) if charts_path.exists() else {}
    rows, heights, placed = [], {}, set()
    for i, row in enumerate(spec["rows"]):
        if "height" in row:
            heights[i] = row["height"]
        cells = []
        for key, width in row["charts"].items():
            if key not in chart_specs:
                raise SystemExit(f"{path}: row {i + 1} places chart {key}, which {charts_path} does not define")
            if key in placed:
                raise SystemExit(f"{path}: chart {key} is placed twice")
            placed.add(key)
            cells.append((chart_from_spec(key, chart_specs[key], charts_path), width))
        rows.append(cells)
    if unplaced := sorted(set(chart_specs) - placed):
        raise SystemExit(f"{charts_path}: {unplaced} defined but not placed in any row of {path}")
    colors = labels.colors[spec["colors"]] if spec.get("colors") else {}
    return Dashboard(path.stem, spec["title"], spec["description"], spec["note"], rows, heights, colors,
                     spec.get("note_height", 12))


def load_datasets(dbt: dict[str, DbtTable], labels: Labels) -> dict[str, Dataset]:
    """Every dbt mart (meta.superset optional) and every virtual dataset, by name."""
    virtual_path = SPECS / "datasets.yaml"
    out = {name: dataset(name, t.superset, labels, str(t.path)) for name, t in dbt.items()}
    for name, spec in (_yaml(virtual_path) or {}).items():
        if name in out:
            raise SystemExit(f"{virtual_path}: {name} is a dbt table already")
        out[name] = dataset(name, spec, labels, str(virtual_path))
    return out


def load_dashboards(labels: Labels) -> list[Dashboard]:
    return [load_dashboard(p, SPECS / "charts" / p.name, labels) for p in sorted((SPECS / "dashboards").glob("*.yaml"))]


# ---------------------------------------------------------------------------------------------
# Writers
def _column_entries(ds: Dataset, dbt: dict[str, DbtTable]) -> list[dict]:
    if ds.columns is not None:
        cols = [(name, typ, None) for name, typ in ds.columns.items()]
    else:
        table = dbt[ds.name]
        if untyped := [name for name, (dtype, _) in table.columns.items() if not dtype]:
            raise SystemExit(f"{table.path}: {ds.name}: columns without data_type: {untyped}")
        cols = [(name, dtype.upper(), desc) for name, (dtype, desc) in table.columns.items()]
    out = [{"column_name": name, "verbose_name": ds.labels.get(name), "is_dttm": typ in ("DATE", "TIMESTAMP"),
            "is_active": True, "type": typ, "advanced_data_type": None, "groupby": True, "filterable": True,
            "expression": None, "description": desc, "python_date_format": None, "extra": {}}
           for name, typ, desc in cols]
    out += [{"column_name": name, "verbose_name": label, "is_dttm": False, "is_active": True, "type": typ,
             "advanced_data_type": None, "groupby": True, "filterable": True, "expression": sql,
             "description": None, "python_date_format": None, "extra": {}}
            for name, (sql, label, typ) in ds.calc.items()]
    return out


def dataset_yaml(ds: Dataset, dbt: dict[str, DbtTable]) -> dict:
    return {
        "table_name": ds.name, "main_dttm_col": ds.dttm, "description": ds.description,
        "default_endpoint": None, "offset": 0, "cache_timeout": None, "catalog": None, "schema": SCHEMA,
        "sql": ds.sql, "params": None, "template_params": None, "filter_select_enabled": True,
        "fetch_values_predicate": None, "extra": None, "normalize_columns": False, "always_filter_main_dttm": False,
        "uuid": ds.uuid,
        "metrics": [{"metric_name": name, "verbose_name": label, "metric_type": None, "expression": sql,
                     "description": None, "d3format": fmt or None, "currency": None, "extra": {},
                     "warning_text": None} for name, (sql, label, fmt) in ds.metrics.items()],
        "columns": _column_entries(ds, dbt),
        "version": VERSION, "database_uuid": uid("database", DATABASE),
    }


def database_yaml() -> dict:
    # The serving copy is the pipeline's published file: Superset may read it, never write to it,
    # and DuckDB may not reach files or URLs beyond it (read_csv, ATTACH, httpfs) from SQL Lab.
    return {
        "database_name": DATABASE, "sqlalchemy_uri": "duckdb:///${EW_SERVING_PATH}", "cache_timeout": None,
        "expose_in_sqllab": True, "allow_run_async": False, "allow_ctas": False, "allow_cvas": False,
        "allow_dml": False, "allow_file_upload": False,
        "extra": {"allows_virtual_table_explore": True, "metadata_params": {}, "schemas_allowed_for_file_upload": [],
                  # the memory cap and the missing temporary directory: superset_config.py explains
                  "engine_params": {"connect_args": {"read_only": True, "config": {
                      "enable_external_access": False, "memory_limit": "2GB", "temp_directory": ""}}}},
        "impersonate_user": False, "uuid": uid("database", DATABASE), "version": VERSION,
    }


def chart_yaml(c: Chart, dash: Dashboard) -> dict:
    ds = DS[c.dataset]
    params = {**c.params, "slice_id": c.id, "dashboards": []}
    query_context = {"datasource": {"id": 0, "type": "table"}, "force": False, "queries": [c.query],
                     "form_data": {**params, "force": False, "result_format": "json", "result_type": "full"},
                     "result_format": "json", "result_type": "full"}
    return {"slice_name": c.title, "description": c.description, "certified_by": None,
            "certification_details": None, "viz_type": c.viz, "params": params,
            "query_context": json.dumps(query_context, ensure_ascii=False, sort_keys=True),
            "cache_timeout": None, "uuid": c.uuid, "version": VERSION, "dataset_uuid": ds.uuid}


def has_column(ds: Dataset, col: str, dbt: dict[str, DbtTable]) -> bool:
    return any(e["column_name"] == col for e in _column_entries(ds, dbt))


# Select filters: label column, name, and the raw columns it labels. A dashboard gets each one
# whose label column some chart's dataset has.
def native_filters(d: Dashboard, dbt: dict[str, DbtTable], labels: Labels) -> list[dict]:
    """Date range, plus a select (channel, platform, category...) where a chart's dataset has the label column.

    A filter only reaches the charts whose dataset has its column (the rest are excluded), so no
    chart errors on a column it lacks; charts over a current snapshot or model fit ignore dates.
    """
    ids = [c.id for c in d.charts]
    specs = [("time", "日期 · Date range", "filter_time", None,
              [c.id for c in d.charts if c.time_col])]
    for col, spec in labels.filters.items():
        label, raw = _label(spec), spec.get("raw_columns") or ()
        # "all" rows carry the whole cohort: charts reading them stay out of a channel filter, and so
        # do charts pinned to one value of the column (a heatmap of one basket scope).
        scoped = [c for c in d.charts if has_column(DS[c.dataset], col, dbt)
                  and not any(f["operator"] == "==" and (f["comparator"] == "all" or f["subject"] in raw)
                              for f in c.params["adhoc_filters"])]
        if scoped:
            # the filter's values come from a dataset without 'all' rows where there is one
            source = next((c for c in scoped if not DS[c.dataset].totals), scoped[0])
            specs.append((col, label, "filter_select", source.dataset, [c.id for c in scoped]))
    out = []
    for key, name, ftype, ds, in_scope in specs:
        control = {"enableEmptyFilter": False}
        if ftype == "filter_select":
            control |= {"defaultToFirstItem": False, "multiSelect": True, "searchAllOptions": False,
                        "inverseSelection": False}
        out.append({
            "id": f"NATIVE_FILTER-{d.slug}-{key}".replace("_", "-"), "name": name, "filterType": ftype,
            "targets": [{"column": {"name": key}, "datasetUuid": DS[ds].uuid}] if ds else [{}],
            "defaultDataMask": {"extraFormData": {}, "filterState": {}, "ownState": {}},
            "cascadeParentIds": [], "controlValues": control, "type": "NATIVE_FILTER", "description": "",
            # chartsInScope is left to Superset: it derives it from scope with the ids the import assigns.
            "scope": {"rootPath": ["ROOT_ID"], "excluded": [i for i in ids if i not in in_scope]},
            "tabsInScope": [],
        })
    return out


def position(d: Dashboard) -> dict:
    pos: dict = {"DASHBOARD_VERSION_KEY": "v2",
                 "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
                 "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
                 "HEADER_ID": {"id": "HEADER_ID", "type": "HEADER", "meta": {"text": d.title}}}
    rows = [[("MARKDOWN-note", 12, None)]] + [[(c, w, None) for c, w in row] for row in d.rows]
    for r, row in enumerate(rows):
        row_id = f"ROW-{r}"
        pos["GRID_ID"]["children"].append(row_id)
        pos[row_id] = {"type": "ROW", "id": row_id, "children": [], "parents": ["ROOT_ID", "GRID_ID"],
                       "meta": {"background": "BACKGROUND_TRANSPARENT"}}
        height = d.note_height if r == 0 else d.heights.get(r - 1, 50)
        for item, width, _ in row:
            parents = ["ROOT_ID", "GRID_ID", row_id]
            if isinstance(item, str):
                pos[item] = {"type": "MARKDOWN", "id": item, "children": [], "parents": parents,
                             "meta": {"width": width, "height": height, "code": d.note}}
                pos[row_id]["children"].append(item)
                continue
            cid = f"CHART-{item.key}"
            pos[cid] = {"type": "CHART", "id": cid, "children": [], "parents": parents,
                        "meta": {"width": width, "height": height, "chartId": item.id, "uuid": item.uuid,
                                 "sliceName": item.title}}
            pos[row_id]["children"].append(cid)
    return pos


def dashboard_yaml(d: Dashboard, dbt: dict[str, DbtTable], labels: Labels) -> dict:
    metadata = {
        "native_filter_configuration": native_filters(d, dbt, labels), "chart_configuration": {},
        "global_chart_configuration": {"scope": {"rootPath": ["ROOT_ID"], "excluded": []}, "chartsInScope": []},
        "color_scheme": "supersetColors", "label_colors": d.colors, "shared_label_colors": [],
        "map_label_colors": {}, "color_scheme_domain": [], "cross_filters_enabled": False,
        "refresh_frequency": 0, "timed_refresh_immune_slices": [], "expanded_slices": {},
        "default_filters": "{}", "positions": {},
    }
    return {"dashboard_title": d.title, "description": d.description, "css": "", "slug": d.slug,
            "uuid": d.uuid, "position": position(d), "metadata": metadata, "version": VERSION,
            "published": True, "certified_by": None, "certification_details": None}


def dashboard_tables(d: Dashboard) -> set[str]:
    return set().union(*(DS[c.dataset].tables() for c in d.charts))


def exposures_yaml(dash: list[Dashboard], dbt: dict[str, DbtTable]) -> dict:
    out = []
    for d in dash:
        out.append({
            "name": f"superset_{d.slug.replace('-', '_')}", "label": d.title, "type": "dashboard",
            "maturity": "medium", "url": f"{SUPERSET_URL}/superset/dashboard/{d.slug}/",
            "description": d.description, "owner": {"name": "Operations analytics"},
            "depends_on": [ref(dbt[t]) for t in sorted(dashboard_tables(d)) if t in dbt],
        })
    return {"version": 2, "exposures": out}


def _dump(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120, default_flow_style=False)



def chart_id(c: Chart) -> int:
    """A chart's id in the bundle, from its key: adding a chart renumbers no other.

    The import maps these ids to the ones it assigns (through the uuids in the dashboard's position).
    """
    return int(uuid.UUID(c.uuid).hex[:7], 16)


def render() -> dict[Path, str]:
    """Every generated file, path -> text."""
    dbt = load_dbt_tables()
    labels = load_labels()
    DS.clear()
    DS.update(load_datasets(dbt, labels))
    TARGETS.clear()
    TARGETS.update(load_targets())
    dash = load_dashboards(labels)
    charts = [c for d in dash for c in d.charts]
    keys = [c.key for c in charts]
    if len(keys) != len(set(keys)):
        raise SystemExit(f"chart keys must be unique: {sorted({k for k in keys if keys.count(k) > 1})}")
    for c in charts:
        c.id = chart_id(c)
    if len({c.id for c in charts}) != len(charts):
        raise SystemExit("two chart keys share an id: rename one of the new charts")
    used = {c.dataset for c in charts}
    files = {BUNDLE / "metadata.yaml": _dump({"version": VERSION, "type": "assets", "timestamp": TIMESTAMP}),
             BUNDLE / "databases" / f"{DATABASE}.yaml": _dump(database_yaml())}
    for name in sorted(used):
        files[BUNDLE / "datasets" / DATABASE / f"{name}.yaml"] = _dump(dataset_yaml(DS[name], dbt))
    for d in dash:
        for c in d.charts:
            files[BUNDLE / "charts" / f"{c.key}.yaml"] = _dump(chart_yaml(c, d))
        files[BUNDLE / "dashboards" / f"{d.slug}.yaml"] = _dump(dashboard_yaml(d, dbt, labels))
    header = ("# Generated by superset/build_bundle.py from superset/dashboards/ and superset/charts/: edit those,\n"
              "# then run `.venv/bin/python superset/build_bundle.py`. One exposure per Superset dashboard.\n")
    files[EXPOSURES] = header + _dump(exposures_yaml(dash, dbt))
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the checked-in files differ")
    args = parser.parse_args(argv)
    files = render()
    stale = [p for p in BUNDLE.rglob("*.yaml") if p not in files] if BUNDLE.exists() else []
    if args.check:
        differ = [p for p, text in files.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
        for p in differ + stale:
            print(f"out of date: {p.relative_to(REPO)}", file=sys.stderr)
        if differ or stale:
            print("run: .venv/bin/python superset/build_bundle.py", file=sys.stderr)
            return 1
        return 0
    for p in stale:
        p.unlink()
    for p, text in files.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        if not p.exists() or p.read_text(encoding="utf-8") != text:
            p.write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} files ({len(stale)} stale removed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
