"""The morning digest (日报): yesterday's overview KPIs against the day before, the same weekday last
week and this month's targets, and the alerts firing now. Read from the published copy."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb

from dagster_project.lib import dbt_outputs
from dagster_project.lib.alerts.notify import chart_url, fmt

KPIS = [  # (key, zh, en, SQL over fct_orders' valid orders of one day, unit)
    ("gmv", "GMV", "GMV", "sum(pay_amount)", "yuan"),
    ("orders", "有效订单", "Valid orders", "count(*)", "count"),
    ("buyers", "买家数", "Buyers", "count(distinct customer_key)", "count"),
    ("aov", "客单价", "AOV", "sum(pay_amount) / nullif(count(*), 0)", "yuan"),
]


def _change(now: float | None, then: float | None) -> str:
    if now is None or not then:
        return "-"
    return f"{(now - then) / then * 100:+.1f}%"


def _exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(dbt_outputs.columns_in(con, table))


def build_digest(con: duckdb.DuckDBPyConnection, lang: str, public_url: str,
                 day: date | None = None) -> tuple[str, str]:
    """(title, body); `day` defaults to the last order date in the data."""
    reads = dbt_outputs.exposure_tables("metric_alerts")
    day = day or con.execute(reads.sql("select max(order_date) from {fct_orders}")).fetchone()[0]
    if day is None:
        return ("日报：暂无数据" if lang == "zh" else "Daily report: no data yet"), ""
    days = [day, day - timedelta(days=1), day - timedelta(days=7)]
    values = {}
    for d in days:
        row = con.execute("select " + ", ".join(sql for _, _, _, sql, _ in KPIS)
                          + reads.sql(" from {fct_orders} where is_valid and order_date = ?"), [d]).fetchone()
        values[d] = dict(zip([k for k, *_ in KPIS], row))
    zh = lang == "zh"
    lines = [f"{'日期' if zh else 'Date'}: {day}"]
    for key, name_zh, name_en, _, unit in KPIS:
        now = values[day][key]
        prev, week = _change(now, values[days[1]][key]), _change(now, values[days[2]][key])
        lines.append(f"{name_zh}：{fmt(now, unit)}（较前日 {prev}，较上周同日 {week}）" if zh else
                     f"{name_en}: {fmt(now, unit)} (vs previous day {prev}, vs same weekday last week {week})")
    if _exists(con, reads.sql("{mart_kpi_targets}")):
        lines += ["", "本月目标" if zh else "Targets this month"]
        rows = con.execute(reads.sql("""
            select metric_name_zh, metric_name_en, unit, actual_value, target_value, direction, status
            from {mart_kpi_targets}
            where period_start = (select max(period_start) from {mart_kpi_targets} where period_start <= ?)
            order by target_id"""), [day]).fetchall()
        for name_zh, name_en, unit, actual, target, direction, status in rows:
            op = "≥" if direction == "at_least" else "≤"
            lines.append(f"- {name_zh if zh else name_en}: {fmt(actual, unit)} / {op} {fmt(target, unit)} ({status})")
    if _exists(con, reads.sql("{mart_metric_alerts}")):
        firing = con.execute(reads.sql("""
            with latest as (
                select rule_id, dims, max(metric_date) as metric_date from {mart_metric_alerts}
                where state <> 'not_evaluated' group by all)
            select a.title_zh, a.title_en, a.dims, a.since, a.value, a.unit, a.chart
            from {mart_metric_alerts} a join latest using (rule_id, dims, metric_date)
            where a.state = 'firing' order by a.severity, a.since""")).fetchall()
        lines += ["", f"{'正在告警' if zh else 'Firing now'}: {len(firing)}"]
        for t_zh, t_en, dims, since, value, unit, chart in firing:
            url = chart_url(public_url, chart)
            lines.append(f"- {t_zh if zh else t_en}{f' [{dims}]' if dims else ''}: {fmt(value, unit)}, "
                         f"{'自' if zh else 'since'} {since}" + (f" {url}" if url else ""))
    title = f"数据日报 {day}" if zh else f"Daily report {day}"
    return title, "\n".join(lines)
