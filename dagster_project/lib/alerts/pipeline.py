"""Pipeline notifications: a failed run (its failed steps, critical checks and the files they name)
and a missed delivery deadline, sent to the same destinations as metric alerts (team `pipeline`:
EW_ALERT_URLS_PIPELINE, else EW_ALERT_URLS), each announced once (StateStore.claim)."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from dagster_project.lib.alerts.notify import Sender, StateStore, apprise_send
from dagster_project.settings import AlertSettings

TEAM = "pipeline"
# A landed file's name as the contract spells it: <source>_<YYYYMMDD>[_<anything>].<ext>
FILE_NAME = re.compile(r"\b[a-z_]+_\d{8}(?:_[\w.-]*)?\.(?:csv\.gz|csv|jsonl|parquet)\b")
DAILY_SHARE = 5 / 7  # a source with files on 5 of the last 7 days is expected every day


def dagster_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('EW_DAGSTER_PORT', '3000')}"


@dataclass
class FailedRun:
    run_id: str
    job: str
    steps: list[tuple[str, str]] = field(default_factory=list)      # (step key, first error line)
    checks: list[tuple[str, str, str]] = field(default_factory=list)  # (check, asset, summary)
    files: list[str] = field(default_factory=list)


def describe_failed_run(instance, run_id: str) -> FailedRun:
    """What failed in a run, from its event log: steps, ERROR-severity checks and the files named."""
    import dagster as dg

    run = instance.get_run_by_id(run_id)
    out = FailedRun(run_id, run.job_name if run else "?")
    texts = []
    for rec in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        err = rec.dagster_event.event_specific_data.error
        messages = []
        while err is not None:
            messages.append((err.message or "").strip())
            err = err.cause
        texts += messages
        # the root cause says what went wrong; Dagster's wrappers only say where
        root = next((m for m in reversed(messages) if m), "failed")
        out.steps.append((rec.dagster_event.step_key, root.splitlines()[-1]))
    for rec in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        ev = rec.dagster_event.event_specific_data
        if not ev.passed and ev.severity == dg.AssetCheckSeverity.ERROR:
            meta = {k: getattr(v, "value", v) for k, v in (ev.metadata or {}).items()}
            summary = str(meta.get("summary") or ev.description or "failed")
            texts.append(summary + " " + str(meta.get("failures", "")))
            out.checks.append((ev.check_name, ev.asset_key.to_user_string(), summary.splitlines()[0][:300]))
    out.files = sorted({m.group(0) for t in texts for m in FILE_NAME.finditer(t)})
    return out


def render_failed_run(run: FailedRun, lang: str, dagster_url: str) -> tuple[str, str]:
    link = f"{dagster_url.rstrip('/')}/runs/{run.run_id}"
    if lang == "zh":
        lines = [f"运行 {run.run_id[:8]}（作业 {run.job}）失败。"]
        lines += [f"失败步骤：{s} — {m}" for s, m in run.steps]
        lines += [f"关键检查未通过：{c}（{a}）— {m}" for c, a, m in run.checks]
        if run.files:
            lines.append("涉及文件：" + "、".join(run.files))
        lines.append(f"运行日志：{link}")
        return "【管道失败】数据仓库运行失败", "\n".join(lines)
    lines = [f"Run {run.run_id[:8]} of job {run.job} failed."]
    lines += [f"Failed step: {s} - {m}" for s, m in run.steps]
    lines += [f"Critical check failed: {c} on {a} - {m}" for c, a, m in run.checks]
    if run.files:
        lines.append("Files: " + ", ".join(run.files))
    lines.append(f"Run log: {link}")
    return "[PIPELINE FAILED] The warehouse run failed", "\n".join(lines)


def notify(cfg: AlertSettings, store: StateStore, key: str, title: str, body: str, now_utc: datetime,
           send: Sender = apprise_send) -> str:
    """Send a pipeline message once per key; returns sent / already_sent / no_destination / failed.
    Pipeline incidents are critical: quiet hours do not hold them."""
    urls = cfg.urls_for(TEAM)
    if not store.claim(key, now_utc, title):
        return "already_sent"
    if not urls:
        return "no_destination"
    try:
        ok = send(urls, title, body, failed=True)
    except Exception:  # noqa: BLE001 - release the claim so the next tick retries
        ok = False
    if not ok:
        store.release(key)
        return "failed"
    return "sent"


def notify_failed_run(instance, run_id: str, cfg: AlertSettings, store: StateStore, now_utc: datetime,
                      dagster_url: str, send: Sender = apprise_send) -> str:
    title, body = render_failed_run(describe_failed_run(instance, run_id), cfg.language or "zh", dagster_url)
    return notify(cfg, store, f"run:{run_id}", title, body, now_utc, send)


@dataclass
class MissedDelivery:
    source: str
    expected_date: date
    newest_file: str | None


def missed_deliveries(landing_dir: Path, now_utc: datetime, tz: str, deadline: str) -> list[MissedDelivery]:
    """After `deadline` (HH:MM business time) on day T, every source the contract says is exported
    daily, and that this shop does send (files on at least 5 of the 7 days before T-1), must have a file
    dated T-1. Sources with rows only when someone acts (campaign touches, experiments) are never
    expected: their quiet days are not missed deliveries."""
    from dagster_project.lib import landing
    from dagster_project.lib.contract import SOURCES

    local = now_utc.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(tz))
    hh, mm = (int(x) for x in deadline.split(":"))
    if local.time() < time(hh, mm):
        return []
    expected = local.date() - timedelta(days=1)
    out = []
    for source in [name for name, src in SOURCES.items() if src.delivers_daily]:
        files, _ = landing.discover(landing_dir, source)
        days = {f.file_date for f in files}
        recent = sum((expected - timedelta(days=k)) in days for k in range(1, 8))
        if recent / 7 >= DAILY_SHARE and expected not in days:
            out.append(MissedDelivery(source, expected, files[-1].name if files else None))
    return out


def render_missed(missed: MissedDelivery, deadline: str, lang: str) -> tuple[str, str]:
    if lang == "zh":
        return (f"【数据未送达】{missed.source} 未在 {deadline} 前送达 {missed.expected_date} 的文件",
                f"数据源 {missed.source} 每天送达，但截至 {deadline}（业务时间）还没有 {missed.expected_date} 的文件。"
                f"\n最新文件：{missed.newest_file or '无'}")
    return (f"[DELIVERY MISSED] {missed.source}: no file for {missed.expected_date} by {deadline}",
            f"Source {missed.source} delivers every day, but by {deadline} (business time) no file for "
            f"{missed.expected_date} has landed.\nNewest file: {missed.newest_file or 'none'}")


def notify_missed_deliveries(landing_dir: Path, cfg: AlertSettings, store: StateStore, now_utc: datetime,
                             send: Sender = apprise_send) -> list[tuple[MissedDelivery, str]]:
    out = []
    for m in missed_deliveries(landing_dir, now_utc, cfg.timezone, cfg.deadline):
        title, body = render_missed(m, cfg.deadline, cfg.language or "zh")
        out.append((m, notify(cfg, store, f"deadline:{m.source}:{m.expected_date}", title, body, now_utc, send)))
    return out



def notify_last_failed_run() -> str:
    """For `ecomwh run`, which runs in process with no sensor daemon: announce its failed run (the
    run-failure sensor of `ecomwh serve` then finds it already announced)."""
    import dagster as dg

    from dagster_project.settings import get_alert_settings, get_settings

    try:
        with dg.DagsterInstance.get() as instance:
            records = instance.get_run_records(
                filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]), limit=1)
            if not records:
                return "no failed run"
            store = StateStore(get_settings().alert_state_path)
            return notify_failed_run(instance, records[0].dagster_run.run_id, get_alert_settings(), store,
                                     datetime.now(UTC).replace(tzinfo=None), dagster_url())
    except Exception as exc:  # noqa: BLE001 - the run already failed; say why no message followed
        print(f"  failure notification not sent: {exc!r}", file=sys.stderr)
        return "failed"
