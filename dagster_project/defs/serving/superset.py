"""Superset: bring-up in its own virtualenv, and provisioning of the dashboard bundle as code.

Superset pins SQLAlchemy < 2 and older pandas/numpy, so it runs from `.venv-superset` (installed by
`make install-superset` from superset/requirements.lock) and this module only drives it: CLI
commands for the one-time set-up, gunicorn for the web server, and the REST API for everything
else (bundle import, the analyst role and user). All of Superset's state is in $EW_HOME/superset.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import subprocess
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import requests

from dagster_project.settings import REPO_ROOT, Settings

BUNDLE_DIR = REPO_ROOT / "superset" / "bundle"
CONFIG_PATH = REPO_ROOT / "superset" / "superset_config.py"
DATABASE_NAME = "ecom_warehouse"
SERVING_PLACEHOLDER = "${EW_SERVING_PATH}"
ANALYST_ROLE = "ew_analyst"
ADMIN_USER = "admin"
ANALYST_USER = "analyst"
# Objects an analyst may read but not change; everything else Gamma and sql_lab allow is kept
# (SQL Lab needs its own tab state and saved queries).
_READ_ONLY_VIEWS = {"Dashboard", "Chart", "Dataset", "Database", "Annotation", "AnnotationLayerRestApi",
                    "CssTemplate", "Tag", "ReportSchedule", "RowLevelSecurity", "Theme"}
_WRITE_PERMS = {"can_write", "can_delete", "can_add", "can_edit", "can_import", "can_copy_dash",
                "can_save_dash", "can_overwrite", "can_import_dashboards"}


def venv_dir() -> Path:
    return Path(os.environ.get("EW_SUPERSET_VENV", REPO_ROOT / ".venv-superset"))


def home_dir(settings: Settings) -> Path:
    return settings.home / "superset"


@dataclass(frozen=True)
class Credentials:
    admin_password: str
    analyst_password: str


def ensure_state(settings: Settings) -> Credentials:
    """Create Superset's state folder, a secret key and both passwords, once; later calls reuse them."""
    home = home_dir(settings)
    (home / "data").mkdir(parents=True, exist_ok=True)
    key = home / "secret_key"
    if not key.exists():
        _write_private(key, secrets.token_urlsafe(48))
    creds = home / "credentials.json"
    if not creds.exists():
        _write_private(creds, json.dumps({
            "admin_password": secrets.token_urlsafe(12), "analyst_password": secrets.token_urlsafe(12),
        }, indent=2))
    data = json.loads(creds.read_text())
    return Credentials(data["admin_password"], data["analyst_password"])


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def superset_env(settings: Settings) -> dict[str, str]:
    env = os.environ.copy()
    env.update({
        "SUPERSET_CONFIG_PATH": str(CONFIG_PATH),
        "EW_SUPERSET_HOME": str(home_dir(settings)),
        "FLASK_APP": "superset.app:create_app()",
        "PYTHONWARNINGS": "ignore",
        "SUPERSET_LOG_LEVEL": "warning",
    })
    # the pipeline's virtualenv must not leak into Superset's interpreter
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    return env


def _bin(name: str) -> str:
    path = venv_dir() / "bin" / name
    if not path.exists():
        raise RuntimeError(f"{path} is missing: run `make install-superset` (Superset's own virtualenv)")
    return str(path)


def initialize(settings: Settings, log) -> float:
    """db upgrade, admin user, roles: only when this state folder has not seen this Superset version."""
    creds = ensure_state(settings)
    home = home_dir(settings)
    stamp = home / "initialized"
    version = _superset_version()
    if stamp.exists() and stamp.read_text() == version:
        return 0.0
    started = time.perf_counter()
    env = superset_env(settings)
    # The password goes through the environment (click reads FLASK_<GROUP>_<COMMAND>_<OPTION>), which
    # only this user can read, never through the command line, which every local user can (`ps`).
    admin_env = {**env, "FLASK_FAB_CREATE_ADMIN_PASSWORD": creds.admin_password}
    steps = [
        ([_bin("superset"), "db", "upgrade"], env),
        ([_bin("superset"), "fab", "create-admin", "--username", ADMIN_USER, "--firstname", "Warehouse",
          "--lastname", "Admin", "--email", "admin@ecom-warehouse.local"], admin_env),
        ([_bin("superset"), "init"], env),
    ]
    for cmd, step_env in steps:
        shown = " ".join(cmd[1:3])
        proc = subprocess.run(cmd, env=step_env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              cwd=home)
        if proc.returncode != 0:
            raise RuntimeError(f"`superset {shown}` failed with exit code {proc.returncode}; see {log.name}")
    stamp.write_text(version)
    return time.perf_counter() - started


def _superset_version() -> str:
    dist = list((venv_dir() / "lib").glob("python3*/site-packages/apache_superset-*.dist-info"))
    if not dist:
        raise RuntimeError(f"Superset is not installed in {venv_dir()}: run `make install-superset`")
    return dist[0].name


def start_command(port: int) -> list[str]:
    return [
        _bin("gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2", "--worker-class", "gthread",
        "--threads", "4", "--timeout", "150", "--no-control-socket", "--limit-request-line", "0",
        "--limit-request-field_size", "0", "superset.app:create_app()",
    ]


def wait_healthy(base_url: str, proc: subprocess.Popen, timeout_s: float, log_name: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Superset exited with {proc.returncode}; see {log_name}")
        try:
            if requests.get(f"{base_url}/health", timeout=3).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise RuntimeError(f"Superset not healthy after {timeout_s:.0f} s; see {log_name}")


# ---------------------------------------------------------------------------------------------
class SupersetClient:
    """A logged-in REST session (JWT for the API, the session cookie and CSRF token for writes)."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        resp = self.session.post(f"{self.base_url}/api/v1/security/login", json={
            "username": username, "password": password, "provider": "db", "refresh": False}, timeout=30)
        if resp.status_code != 200:
            raise RuntimeError(f"Superset login as {username} failed: {resp.status_code} {resp.text[:200]}")
        self.session.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"
        self.session.headers["Referer"] = self.base_url
        csrf = self.session.get(f"{self.base_url}/api/v1/security/csrf_token/", timeout=30)
        csrf.raise_for_status()
        self.session.headers["X-CSRFToken"] = csrf.json()["result"]

    def request(self, method: str, path: str, expect: tuple[int, ...] = (200,), **kw) -> requests.Response:
        resp = self.session.request(method, f"{self.base_url}{path}", timeout=120, **kw)
        if resp.status_code not in expect:
            raise RuntimeError(f"Superset {method} {path}: {resp.status_code} {resp.text[:500]}")
        return resp

    def get_all(self, path: str) -> list[dict]:
        """Every row of a list endpoint (Superset pages at 100)."""
        rows, page = [], 0
        while True:
            q = f"(page:{page},page_size:100)"
            body = self.request("GET", path, params={"q": q}).json()
            rows.extend(body["result"])
            if len(body["result"]) < 100:
                return rows
            page += 1


def bundle_zip(serving_path: Path, bundle_dir: Path = BUNDLE_DIR) -> bytes:
    """The bundle as Superset's import ZIP, pointing its one database at this state folder's copy."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(bundle_dir.rglob("*.yaml")):
            text = path.read_text(encoding="utf-8")
            if path.parent.name == "databases":
                text = text.replace(SERVING_PLACEHOLDER, str(serving_path))
            zf.writestr(f"bundle/{path.relative_to(bundle_dir).as_posix()}", text)
    return buf.getvalue()


def import_bundle(client: SupersetClient, serving_path: Path) -> None:
    client.request(
        "POST", "/api/v1/assets/import/",
        files={"bundle": ("ecom_warehouse.zip", bundle_zip(serving_path), "application/zip")},
        data={"passwords": "{}"},
    )


def _find(rows: list[dict], key: str, value: str) -> dict | None:
    return next((r for r in rows if r.get(key) == value), None)


def ensure_analyst(client: SupersetClient, password: str) -> dict:
    """A read-only role (Gamma's and sql_lab's reads, SQL Lab, the warehouse database) and its user."""
    roles = client.get_all("/api/v1/security/roles/")
    role = _find(roles, "name", ANALYST_ROLE)
    if role is None:
        role = {"id": client.request("POST", "/api/v1/security/roles/", json={"name": ANALYST_ROLE},
                                     expect=(200, 201)).json()["id"], "name": ANALYST_ROLE}
    pvms = client.get_all("/api/v1/security/permissions-resources/")
    wanted: set[int] = set()
    for base in ("Gamma", "sql_lab"):
        base_role = _find(roles, "name", base)
        if base_role is None:
            raise RuntimeError(f"Superset has no {base} role: did `superset init` run?")
        for p in client.request("GET", f"/api/v1/security/roles/{base_role['id']}/permissions/").json()["result"]:
            if p["view_menu_name"] in _READ_ONLY_VIEWS and p["permission_name"] in _WRITE_PERMS:
                continue
            wanted.add(p["id"])
    db_perm = next((p for p in pvms if p["permission"]["name"] == "database_access"
                    and p["view_menu"]["name"].startswith(f"[{DATABASE_NAME}]")), None)
    if db_perm is None:
        raise RuntimeError(f"no database_access permission for {DATABASE_NAME}: import the bundle first")
    wanted.add(db_perm["id"])
    client.request("POST", f"/api/v1/security/roles/{role['id']}/permissions",
                   json={"permission_view_menu_ids": sorted(wanted)})
    users = client.get_all("/api/v1/security/users/")
    user = _find(users, "username", ANALYST_USER)
    body = {"first_name": "Warehouse", "last_name": "Analyst", "email": "analyst@ecom-warehouse.local",
            "active": True, "roles": [role["id"]], "password": password}
    if user is None:
        client.request("POST", "/api/v1/security/users/", json={"username": ANALYST_USER, **body},
                       expect=(200, 201))
    else:
        client.request("PUT", f"/api/v1/security/users/{user['id']}", json=body)
    return {"role": ANALYST_ROLE, "permissions": len(wanted)}


def provision(settings: Settings, base_url: str) -> dict:
    """Import the bundle (overwrites by UUID: running it twice changes nothing) and the analyst role."""
    creds = ensure_state(settings)
    started = time.perf_counter()
    client = SupersetClient(base_url, ADMIN_USER, creds.admin_password)
    import_bundle(client, settings.serving_path)
    analyst = ensure_analyst(client, creds.analyst_password)
    dashboards = client.get_all("/api/v1/dashboard/")
    charts = client.get_all("/api/v1/chart/")
    return {"dashboards": len(dashboards), "charts": len(charts), "seconds": time.perf_counter() - started,
            **analyst}
