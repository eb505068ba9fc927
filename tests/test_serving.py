"""Serving as a user meets it: `ecomwh serve` brings up Dagster, Superset (provisioned from the bundle)
and the dbt docs page on the published read-only copy; `ecomwh stop` ends them.

One `serve` per module on the session's generated warehouse (tests/conftest.py::truth_warehouse).
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest
import requests
import yaml

from dagster_project.defs.serving import superset
from dagster_project.lib.publish import publish
from dagster_project.settings import REPO_ROOT
from test_sensor_and_serve import _free_port  # tests/ is on sys.path (pytest rootdir conftest)

pytestmark = pytest.mark.e2e
BUNDLE = REPO_ROOT / "superset" / "bundle"


def _bundle(kind: str) -> list[dict]:
    return [yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted((BUNDLE / kind).rglob("*.yaml"))]


@pytest.fixture(scope="module")
def served(truth_warehouse):
    home = truth_warehouse.home
    ports = {"dagster": _free_port(), "superset": _free_port(), "docs": _free_port()}
    env = {"EW_HOME": str(home), "PATH": "/usr/bin:/bin", "HOME": str(home.parent)}
    exe = [sys.executable, "-m", "dagster_project.cli"]
    started = time.perf_counter()
    proc = subprocess.run(exe + ["serve", "--detach", "--dagster-port", str(ports["dagster"]),
                                 "--superset-port", str(ports["superset"]), "--docs-port", str(ports["docs"])],
                          env=env, capture_output=True, text=True, timeout=600)
    took = time.perf_counter() - started
    creds = json.loads((home / "superset" / "credentials.json").read_text())
    ns = SimpleNamespace(home=home, env=env, exe=exe, ports=ports, stdout=proc.stdout, seconds=took,
                         base=f"http://127.0.0.1:{ports['superset']}", creds=creds,
                         serving=home / "serving" / "warehouse.duckdb", db=truth_warehouse.db)
    try:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        print(f"ecomwh serve ready in {took:.1f} s")
        yield ns
    finally:
        stopped = subprocess.run(exe + ["stop"], env=env, capture_output=True, text=True, timeout=120)
        ns.stopped = stopped.stdout


def _admin(served) -> superset.SupersetClient:
    return superset.SupersetClient(served.base, "admin", served.creds["admin_password"])


def _analyst(served) -> superset.SupersetClient:
    return superset.SupersetClient(served.base, "analyst", served.creds["analyst_password"])


def test_serve_prints_urls_and_generated_credentials(served):
    out = served.stdout
    assert f"http://127.0.0.1:{served.ports['dagster']}" in out
    assert f"http://127.0.0.1:{served.ports['superset']}" in out
    assert f"http://127.0.0.1:{served.ports['docs']}" in out
    assert served.creds["admin_password"] in out and served.creds["analyst_password"] in out
    assert served.creds["admin_password"] not in ("admin", "") and len(served.creds["admin_password"]) >= 12
    sdir = served.home / "superset"
    for secret in ("credentials.json", "secret_key"):
        assert stat.S_IMODE((sdir / secret).stat().st_mode) == 0o600
    assert len((sdir / "secret_key").read_text().strip()) >= 40
    assert (sdir / "superset.db").exists()  # SQLite metadata inside the state folder
    # the well-known default password does not log in
    r = requests.post(f"{served.base}/api/v1/security/login", json={
        "username": "admin", "password": "admin", "provider": "db"}, timeout=30)
    assert r.status_code == 401


def test_dagster_ui_lists_the_serving_assets(served):
    query = {"query": "{ assetNodes { assetKey { path } } }"}
    req = urllib.request.Request(f"http://127.0.0.1:{served.ports['dagster']}/graphql",
                                 data=json.dumps(query).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        keys = {"/".join(n["assetKey"]["path"]) for n in json.loads(resp.read())["data"]["assetNodes"]}
    assert {"raw/orders", "marts/fct_orders", "serving/warehouse", "serving/dbt_docs"} <= keys


def test_dbt_docs_site_is_served(served):
    r = requests.get(f"http://127.0.0.1:{served.ports['docs']}/", timeout=30)
    assert r.status_code == 200
    # the static page embeds the manifest and the catalog: lineage and columns work offline
    assert "mart_repurchase_cohort" in r.text and "repurchase_rate_30d" in r.text


def _snapshot(client: superset.SupersetClient) -> dict:
    return {kind: sorted((o["id"], o.get("uuid") or "", o.get(field) or "")
                         for o in client.get_all(f"/api/v1/{kind}/"))
            for kind, field in (("dashboard", "dashboard_title"), ("chart", "slice_name"),
                                ("dataset", "table_name"), ("database", "database_name"))}


def test_provisioning_is_idempotent_and_matches_the_bundle(served):
    client = _admin(served)
    before = _snapshot(client)
    again = superset.provision(SimpleNamespace(home=served.home, serving_path=served.serving), served.base)
    after = _snapshot(client)
    assert after == before
    assert again["dashboards"] == len(_bundle("dashboards")) >= 7
    assert again["charts"] == len(_bundle("charts"))
    assert len(before["dataset"]) == len(_bundle("datasets"))
    assert [d[2] for d in before["database"]] == ["ecom_warehouse"]
    # the objects are the bundle's, by their fixed UUIDs
    assert {d[1] for d in before["dashboard"]} == {d["uuid"] for d in _bundle("dashboards")}
    assert {c[1] for c in before["chart"]} == {c["uuid"] for c in _bundle("charts")}


def test_every_chart_returns_rows_on_the_published_copy(served):
    client = _admin(served)
    empty, failed = [], []
    for chart in client.get_all("/api/v1/chart/"):
        r = client.session.get(f"{served.base}/api/v1/chart/{chart['id']}/data/", timeout=120)
        if r.status_code != 200:
            failed.append((chart["slice_name"], r.status_code, r.text[:300]))
            continue
        results = r.json()["result"]
        if not results or any(q.get("rowcount", 0) == 0 for q in results):
            empty.append(chart["slice_name"])
    assert not failed, failed
    assert not empty, f"charts without rows: {empty}"


def _sqllab(client: superset.SupersetClient, database_id: int, sql: str) -> requests.Response:
    return client.session.post(f"{client.base_url}/api/v1/sqllab/execute/", json={
        "database_id": database_id, "sql": sql, "runAsync": False, "schema": "marts",
        "client_id": os.urandom(5).hex(), "tab": "test"}, timeout=120)


def test_sql_lab_reads_marts_but_cannot_write_or_read_server_files(served):
    client = _analyst(served)
    db_id = _admin(served).get_all("/api/v1/database/")[0]["id"]
    ok = _sqllab(client, db_id, "select count(*) as n from marts.fct_orders")
    assert ok.status_code == 200, ok.text
    assert ok.json()["data"][0]["n"] > 0
    # Superset refuses DML itself; DuckDB refuses anything touching files (external access off)
    attempts = {
        "create table marts.hack as select 1": "DML_NOT_ALLOWED",
        "insert into marts.dim_date select * from marts.dim_date": "DML_NOT_ALLOWED",
        "copy marts.fct_orders to '/tmp/ew_leak.csv'": "file system operations are disabled",
        "select * from read_csv('/etc/passwd')": "file system operations are disabled",
        "select * from read_text('/etc/hostname')": "file system operations are disabled",
        "attach '/tmp/ew_other.duckdb' as other": "file system operations are disabled",
    }
    for sql, refusal in attempts.items():
        r = _sqllab(client, db_id, sql)
        assert r.status_code >= 400 and refusal in r.text, (sql, r.status_code, r.text[:300])
    assert not Path("/tmp/ew_leak.csv").exists() and not Path("/tmp/ew_other.duckdb").exists()
    # the file itself refuses writers other than the pipeline's publish (read-only open)
    con = duckdb.connect(str(served.serving), read_only=True, config={"enable_external_access": False})
    with pytest.raises(duckdb.Error):
        con.execute("create table marts.x as select 1")
    con.close()


def test_analyst_role_is_read_only(served):
    client = _analyst(served)
    dashboards = client.get_all("/api/v1/dashboard/")
    assert len(dashboards) == len(_bundle("dashboards"))
    charts = client.get_all("/api/v1/chart/")
    r = client.session.get(f"{served.base}/api/v1/chart/{charts[0]['id']}/data/", timeout=120)
    assert r.status_code == 200
    r = client.session.put(f"{served.base}/api/v1/dashboard/{dashboards[0]['id']}",
                           json={"dashboard_title": "changed"}, timeout=30)
    assert r.status_code in (401, 403), r.text[:200]
    r = client.session.delete(f"{served.base}/api/v1/chart/{charts[0]['id']}", timeout=30)
    assert r.status_code in (401, 403), r.text[:200]
    r = client.session.post(f"{served.base}/api/v1/database/", json={
        "database_name": "x", "sqlalchemy_uri": "duckdb:///:memory:"}, timeout=30)
    assert r.status_code in (401, 403), r.text[:200]


def test_ten_publishes_while_dashboards_are_queried_fail_no_query(served):
    client = _admin(served)
    charts = client.get_all("/api/v1/chart/")[:6]
    stop = threading.Event()
    outcomes: list[tuple[int, str]] = []

    def query_loop() -> None:
        session = requests.Session()
        session.headers.update(client.session.headers)
        session.cookies.update(client.session.cookies)
        i = 0
        while not stop.is_set():
            chart = charts[i % len(charts)]
            i += 1
            try:
                r = session.get(f"{served.base}/api/v1/chart/{chart['id']}/data/", timeout=120)
                outcomes.append((r.status_code, "" if r.status_code == 200 else r.text[:300]))
            except requests.RequestException as exc:
                outcomes.append((-1, str(exc)))

    threads = [threading.Thread(target=query_loop) for _ in range(3)]
    for t in threads:
        t.start()
    published = set()
    try:
        for _ in range(10):
            published.add(publish(served.db, served.serving)["published_at"])
            time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=180)
    failures = [o for o in outcomes if o[0] != 200]
    assert len(published) == 10
    assert len(outcomes) >= 20
    assert not failures, failures[:5]


def test_superset_opens_the_file_with_the_pipelines_duckdb_version(served):
    out = subprocess.run([str(superset.venv_dir() / "bin" / "python"), "-c",
                          "import duckdb; print(duckdb.__version__)"], capture_output=True, text=True)
    assert out.stdout.strip() == duckdb.__version__


CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
# Superset's own UI text, to know the language switch took effect
UI_TEXT = {"en": "Dashboards", "zh": "看板"}


def _dashboard_charts() -> dict[str, int]:
    """slug -> number of charts placed on it, from the bundle."""
    out = {}
    for d in _bundle("dashboards"):
        out[d["slug"]] = sum(1 for v in d["position"].values() if isinstance(v, dict) and v.get("type") == "CHART")
    return out


def test_every_dashboard_renders_every_chart_in_both_languages(served, tmp_path):
    """A person's view: log in, switch language, open each dashboard, wait for each chart; no errors."""
    from playwright.sync_api import sync_playwright

    shots = Path(os.environ.get("EW_SCREENSHOT_DIR") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    expected = _dashboard_charts()
    problems: list[str] = []
    taken: list[Path] = []
    scratch = tmp_path / "browser-home"
    scratch.mkdir()
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(scratch / "profile"), executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS,
            headless=True, viewport={"width": 1600, "height": 1000}, env={**os.environ, "HOME": str(scratch)})
        page = browser.pages[0] if browser.pages else browser.new_page()
        bad_responses: list[str] = []

        def on_response(r) -> None:
            # Superset's frontend tries to store a dashboard's label colours on first view; the
            # read-only analyst may not (403), which is the point of the role, not a chart error.
            if "/api/v1/" in r.url and r.status >= 400 and not (r.status == 403 and "/colors" in r.url):
                bad_responses.append(f"{r.status} {r.url}")

        page.on("response", on_response)
        page.goto(f"{served.base}/login/")
        page.wait_for_selector("input[type=password]", timeout=60_000)  # the login form is rendered by JS
        page.locator("input:not([type=hidden]):not([type=password])").first.fill("analyst")
        page.locator("input[type=password]").fill(served.creds["analyst_password"])
        page.keyboard.press("Enter")
        page.wait_for_url(lambda url: "/login" not in url, timeout=60_000)
        for lang in ("en", "zh"):
            page.goto(f"{served.base}/lang/{lang}")
            for slug, n_charts in expected.items():
                bad_responses.clear()
                page.goto(f"{served.base}/superset/dashboard/{slug}/?standalone=0")
                # chart holders carry the chart id; markdown notes share the holder class without it
                holders = page.locator("[data-test-chart-id]")
                try:
                    page.wait_for_function(
                        """n => {
                          const hs = document.querySelectorAll("[data-test-chart-id]");
                          if (hs.length < n) return false;
                          return [...hs].every(h => !h.querySelector('.loading, [data-test=loading-indicator]')
                                                  && h.querySelector('[data-test=chart-container] *, .chart-container *, canvas, svg, table'));
                        }""", arg=n_charts, timeout=90_000)
                except Exception as exc:  # noqa: BLE001 - reported below with the dashboard's name
                    problems.append(f"{lang}/{slug}: charts did not finish rendering ({exc.__class__.__name__})")
                page.wait_for_timeout(800)  # let the charts' animations settle for the screenshot
                count = holders.count()
                if count != n_charts:
                    problems.append(f"{lang}/{slug}: {count} charts on the page, bundle has {n_charts}")
                errors = page.locator("[data-test='dashboard-component-chart-holder'] "
                                      ":is([role=alert], .alert-danger, [data-test=error-message])")
                if errors.count():
                    problems.append(f"{lang}/{slug}: chart error: {errors.first.inner_text()[:200]}")
                if bad_responses:
                    problems.append(f"{lang}/{slug}: failed API calls: {bad_responses[:3]}")
                if UI_TEXT[lang] not in page.content():
                    problems.append(f"{lang}/{slug}: Superset UI not in {lang}")
                shot = shots / f"{slug}-{lang}.png"
                page.screenshot(path=str(shot), full_page=True)
                taken.append(shot)
        browser.close()
    assert not problems, "\n".join(problems)
    assert len(taken) == 2 * len(expected) and all(p.stat().st_size > 20_000 for p in taken)


def test_stop_ends_every_service(served, request):
    # runs last in this module (pytest keeps file order): stop, then check the ports
    stopped = subprocess.run(served.exe + ["stop"], env=served.env, capture_output=True, text=True, timeout=120)
    assert {"dagster", "superset", "dbt-docs"} <= set(stopped.stdout.replace("stopped:", "").replace(",", " ").split())
    for port in served.ports.values():
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0
