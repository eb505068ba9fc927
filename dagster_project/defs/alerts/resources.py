"""The `alerts` resource: where alerts go and when (docs/alerts.md), from the EW_ALERT_* settings as
the definitions load, so a run launched from the UI may override them and a test may pass its own."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from dagster_project.lib.alerts.notify import StateStore
from dagster_project.settings import AlertSettings, alert_team_url_vars, get_alert_settings, get_settings, split_urls


class AlertsResource(dg.ConfigurableResource):
    """Destination URLs carry tokens, so they stay environment variables (EW_ALERT_URLS,
    EW_ALERT_URLS_<TEAM>): the UI shows the variable's name, never the URL."""

    state_path: str  # what was notified, so that nothing is sent twice
    urls: str = ""  # apprise URLs for every team without its own, separated by commas or spaces
    team_urls: dict[str, str] = {}  # team -> its apprise URLs
    quiet_hours: str | None = None  # e.g. 22:00-08:00, business time
    language: str | None = None  # zh / en, overriding each team file's language
    public_url: str = "http://127.0.0.1:8088"  # where readers open Superset (links in messages)
    timezone: str = "Asia/Shanghai"
    deadline: str = "07:00"  # by then (business time) yesterday's files are in

    def settings(self) -> AlertSettings:
        return AlertSettings(urls=split_urls(self.urls),
                             team_urls={team: split_urls(urls) for team, urls in self.team_urls.items()},
                             quiet_hours=self.quiet_hours, language=self.language, public_url=self.public_url,
                             timezone=self.timezone, deadline=self.deadline)

    def store(self) -> StateStore:
        return StateStore(Path(self.state_path))


def alerts_resource() -> AlertsResource:
    alert = get_alert_settings()  # a wrong EW_ALERT_LANGUAGE fails here, as the definitions load
    return AlertsResource(
        state_path=str(get_settings().alert_state_path),
        urls=dg.EnvVar("EW_ALERT_URLS") if os.environ.get("EW_ALERT_URLS") else "",
        team_urls={team: dg.EnvVar(var) for team, var in alert_team_url_vars().items()},
        quiet_hours=alert.quiet_hours, language=alert.language, public_url=alert.public_url,
        timezone=alert.timezone, deadline=alert.deadline,
    )
