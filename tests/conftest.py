"""Every test gets its own EW_HOME, so nothing is written into the repo or the real state folder."""

from __future__ import annotations

import os

import pytest

from dagster_project.settings import export_env, get_settings


@pytest.fixture()
def ew_home(tmp_path, monkeypatch):
    home = tmp_path / "ew"
    for var in [v for v in os.environ if v.startswith("EW_")] + ["DAGSTER_HOME"]:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("EW_HOME", str(home))
    settings = get_settings()
    settings.ensure_dirs()
    for k, v in export_env(settings).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("EW_QUARANTINE_DIR", str(settings.quarantine_dir))
    return settings
