"""Delivery: one message when an alert starts firing and one when it resolves, through apprise.

Destinations are apprise URLs from the environment only (EW_ALERT_URLS, or EW_ALERT_URLS_<TEAM> for
one team; several separated by spaces or commas): WeCom bots (wecombot://), DingTalk (dingtalk://),
Feishu (feishu://), Slack, e-mail (mailto://), a plain webhook (json://). Nothing secret lives in
the repository.

What was sent is kept in <EW_HOME>/alerts/notifications.sqlite, one row per episode (rule, group,
first firing date): a fire message is sent once per episode, a resolve message once when it ends,
and a run that finds the same state sends nothing. A message that could not be delivered is not
recorded, so the next evaluation tries again. In quiet hours (EW_ALERT_QUIET_HOURS, business time)
warnings wait for the first evaluation after them; critical rules are sent at once.
"""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Callable, Protocol
from zoneinfo import ZoneInfo

import polars as pl

from dagster_project.lib.alerts.rules import LoadedRule
from dagster_project.settings import AlertSettings

FIRE, RESOLVE = "fire", "resolve"

_UNIT_FMT = {
    "share": lambda v: f"{v * 100:.1f}%",
    "count": lambda v: f"{v:,.0f}",
    "yuan": lambda v: f"¥{v:,.0f}",
    "minutes": lambda v: f"{v:,.0f} min",
    "hours": lambda v: f"{v:,.1f} h",
    "number": lambda v: f"{v:,.4g}",
}


def fmt(value: float | None, unit: str) -> str:
    return "-" if value is None else _UNIT_FMT.get(unit, _UNIT_FMT["number"])(value)


def why(row: dict, lang: str, compare_to: str | None = None) -> str:
    """One line saying why the rule fired, from its kind and numbers (compare_to: a change rule's)."""
    unit, v, base, dev = row["unit"], row["value"], row["baseline"], row["deviation"]
    pct = f"{abs(dev) * 100:.1f}%" if dev is not None else "-"
    down = (v or 0) < (base or 0)
    if row["kind"] == "threshold":
        bound = fmt(row["threshold"], unit)
        if row["direction"] == "below":
            return f"低于下限 {bound}" if lang == "zh" else f"below the floor of {bound}"
        return f"高于上限 {bound}" if lang == "zh" else f"above the ceiling of {bound}"
    if row["kind"] == "change":
        ref_zh, ref_en = (("上周同日", "the same weekday last week") if compare_to == "same_weekday_last_week"
                          else ("前一天", "the previous day"))
        if lang == "zh":
            return f"较{ref_zh}{'下降' if down else '上升'} {pct}（{fmt(base, unit)} → {fmt(v, unit)}）"
        return f"{'down' if down else 'up'} {pct} on {ref_en} ({fmt(base, unit)} -> {fmt(v, unit)})"
    if row["kind"] == "variants":
        z = f"{abs(row['z_score'] or 0):.1f}"
        if lang == "zh":
            return (f"转化率 {fmt(v, unit)}，对照组 {fmt(base, unit)}"
                    f"（双比例z检验 z={z}，显著{'偏低' if down else '偏高'}）")
        return (f"converts at {fmt(v, unit)} against the control's {fmt(base, unit)} "
                f"(two-proportion z = {z}, significantly {'lower' if down else 'higher'})")
    z = f"{abs(row['z_score']):.1f}" if row.get("z_score") is not None else None
    if lang == "zh":
        return (f"比同星期几的基线{'低' if down else '高'} {pct}"
                + (f"（{z} 个稳健标准差；基线不含大促和节假日）" if z else "（对比去年同一促销日）"))
    return (f"{pct} {'below' if down else 'above'} its same-weekday baseline"
            + (f" ({z} robust SDs; promotion days and holidays left out of the baseline)" if z
               else " (compared with the same promotion day a year earlier)"))


def chart_url(public_url: str, chart: str | None) -> str | None:
    if not chart:
        return None
    if chart.startswith(("http://", "https://")):
        return chart
    path = chart if chart.startswith("/") else f"/superset/dashboard/{chart}/"
    return public_url.rstrip("/") + path


def render(row: dict, event: str, lang: str, public_url: str, rule: LoadedRule | None = None) -> tuple[str, str]:
    """(title, body) of a fire or resolve message in Chinese or English."""
    title = row["title_zh"] if lang == "zh" else row["title_en"]
    unit = row["unit"]
    dims = f"[{row['dims']}] " if row["dims"] else ""
    url = chart_url(public_url, row.get("chart"))
    r = rule.rule if rule else None
    line = getattr(r.why, lang) if r and r.why else why(row, lang, r.change.compare_to if r and r.change else None)
    if lang == "zh":
        head = f"【{'告警' if event == FIRE else '已恢复'}】{title}"
        body = [f"{dims}{row['metric_date']}：数值 {fmt(row['value'], unit)}，基线 {fmt(row['baseline'], unit)}，"
                f"阈值 {fmt(row['threshold'], unit)}",
                f"原因：{line}" if event == FIRE else f"自 {row['since']} 起的告警已恢复",
                f"指标：{row['metric']}（规则 {row['rule_id']}）"]
        if event == FIRE:
            body.insert(2, f"开始日期：{row['since']}")
        if url:
            body.append(f"图表：{url}")
    else:
        head = f"[{'FIRING' if event == FIRE else 'RESOLVED'}] {title}"
        body = [f"{dims}{row['metric_date']}: value {fmt(row['value'], unit)}, baseline {fmt(row['baseline'], unit)}, "
                f"threshold {fmt(row['threshold'], unit)}",
                f"Why: {line}" if event == FIRE else f"The alert firing since {row['since']} has resolved",
                f"Metric: {row['metric']} (rule {row['rule_id']})"]
        if event == FIRE:
            body.insert(2, f"Since: {row['since']}")
        if url:
            body.append(f"Chart: {url}")
    return head, "\n".join(body)


class Sender(Protocol):
    def __call__(self, urls: list[str], title: str, body: str, failed: bool) -> bool: ...


def apprise_send(urls: list[str], title: str, body: str, failed: bool) -> bool:
    """Send through apprise to every URL; True only if every destination took it."""
    import apprise

    ap = apprise.Apprise()
    for url in urls:
        if not ap.add(url):
            raise ValueError(f"apprise does not understand a destination URL starting {url.split('://')[0]}://")
    kind = apprise.NotifyType.FAILURE if failed else apprise.NotifyType.SUCCESS
    return bool(ap.notify(title=title, body=body, notify_type=kind))


def in_quiet_hours(window: str | None, now_utc: datetime, tz: str) -> bool:
    """`22:00-08:00` (may wrap midnight), in the business time zone."""
    if not window:
        return False
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", window)
    if not m:
        raise ValueError(f"EW_ALERT_QUIET_HOURS must look like 22:00-08:00, got {window!r}")
    start, end = time(int(m[1]), int(m[2])), time(int(m[3]), int(m[4]))
    local = now_utc.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(tz)).time()
    return start <= local < end if start <= end else (local >= start or local < end)


class StateStore:
    """Episodes that were notified, and one-off pipeline notifications, in one SQLite file."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as con, con:
            con.execute("create table if not exists episodes (rule_id text, dims text, since text, "
                        "fired_at text, fired_value real, resolved_at text, primary key (rule_id, dims, since))")
            con.execute("create table if not exists sent (key text primary key, sent_at text, title text)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def open_episodes(self) -> dict[tuple[str, str], list[str]]:
        with closing(self._connect()) as con:
            rows = con.execute("select rule_id, dims, since from episodes where resolved_at is null").fetchall()
        out: dict[tuple[str, str], list[str]] = {}
        for rule_id, dims, since in rows:
            out.setdefault((rule_id, dims), []).append(since)
        return out

    def known(self, rule_id: str, dims: str, since: str) -> bool:
        with closing(self._connect()) as con:
            return con.execute("select 1 from episodes where rule_id = ? and dims = ? and since = ?",
                               [rule_id, dims, since]).fetchone() is not None

    def record_fire(self, rule_id: str, dims: str, since: str, at: datetime, value: float | None) -> None:
        with closing(self._connect()) as con, con:
            con.execute("insert or ignore into episodes values (?, ?, ?, ?, ?, null)",
                        [rule_id, dims, since, at.isoformat(), value])

    def record_resolve(self, rule_id: str, dims: str, since: str, at: datetime) -> None:
        with closing(self._connect()) as con, con:
            con.execute("update episodes set resolved_at = ? where rule_id = ? and dims = ? and since = ?",
                        [at.isoformat(), rule_id, dims, since])

    def claim(self, key: str, at: datetime, title: str) -> bool:
        """True the first time `key` is claimed (a pipeline incident is announced once)."""
        with closing(self._connect()) as con, con:
            cur = con.execute("insert or ignore into sent values (?, ?, ?)", [key, at.isoformat(), title])
            return cur.rowcount == 1

    def release(self, key: str) -> None:
        with closing(self._connect()) as con, con:
            con.execute("delete from sent where key = ?", [key])


@dataclass
class Delivery:
    rule_id: str
    dims: str
    since: str
    event: str
    title: str
    body: str
    status: str               # sent, failed, held (quiet hours), no_destination
    destinations: int = 0
    extra: dict = field(default_factory=dict)


def due_events(current: pl.DataFrame, store: StateStore) -> list[tuple[dict, str, str]]:
    """(row, event, since) of every message the current states call for and the store has not
    recorded as delivered: a new episode fires, an open one that ended resolves. A message held in
    quiet hours or whose sending failed is recorded nowhere, so it is due again."""
    open_eps = store.open_episodes()
    due = []
    for row in current.iter_rows(named=True):
        current_since = str(row["since"]) if row["state"] == "firing" else None
        due += [(row, RESOLVE, s) for s in open_eps.get((row["rule_id"], row["dims"]), []) if s != current_since]
        if current_since and not store.known(row["rule_id"], row["dims"], current_since):
            due.append((row, FIRE, current_since))
    return due


def deliver(current: pl.DataFrame, cfg: AlertSettings, store: StateStore, now_utc: datetime,
            rules: dict[str, LoadedRule], send: Sender = apprise_send,
            log: Callable[[str], None] = lambda _: None) -> list[Delivery]:
    """Act on each (rule, group)'s current state (engine.current_states): fire new episodes, resolve
    ended ones. Messages are in the rule's team language unless EW_ALERT_LANGUAGE says otherwise."""
    quiet = in_quiet_hours(cfg.quiet_hours, now_utc, cfg.timezone)
    out: list[Delivery] = []
    for row, event, since in due_events(current, store):
        rule = rules.get(row["rule_id"])
        lang = cfg.language or (rule.language if rule else "zh")
        urls = cfg.urls_for(row["team"])
        shown = dict(row, since=since)
        title, body = render(shown, event, lang, cfg.public_url, rule)
        d = Delivery(row["rule_id"], row["dims"], since, event, title, body, "sent", len(urls))
        if quiet and row["severity"] != "critical":
            d.status = "held"
        elif urls:
            try:
                ok = send(urls, title, body, failed=event == FIRE)
            except Exception as exc:  # noqa: BLE001 - a bad destination must not stop the others
                log(f"alert delivery to {len(urls)} destination(s) failed: {exc}")
                ok = False
            d.status = "sent" if ok else "failed"
        else:
            d.status = "no_destination"
        if d.status in ("sent", "no_destination"):
            if event == FIRE:
                store.record_fire(row["rule_id"], row["dims"], since, now_utc, row["value"])
            else:
                store.record_resolve(row["rule_id"], row["dims"], since, now_utc)
        out.append(d)
    return out
