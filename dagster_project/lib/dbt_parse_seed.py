"""`dbt parse` of a fresh state folder, started from another state folder's parse (EW_DBT_SHARED_DIR).

Every fresh state folder parses the dbt project once (~13 s on 2 cores), and dbt cannot reuse another
folder's parse: its partial-parse file records a hash of the profile's connection settings, and the
DuckDB path in them is the folder's own. The parse itself never opens the file, and the path is in the
manifest only through the database name (the file's stem), which is among the other settings.

So for state folders that share EW_DBT_SHARED_DIR (the test suite's worlds, built from one checkout):
- the seed is the last parse of any of them whose connection settings, the path aside, were the same
  (keyed by them and dbt's version);
- the seed's recorded profile hash is replaced by this folder's own, computed by dbt's own code from
  this folder's profile (dagster-dbt edits the same file the same way to re-parse seeds);
- dbt then checks everything else itself (its version, vars, env vars of dbt_project.yml, every file's
  checksum) and parses what changed: ~5 s instead of ~13 s.

Without EW_DBT_SHARED_DIR, or when the seed cannot be read, dbt parses from scratch as before.
`python -m dagster_project.lib.dbt_parse_seed PROJECT_DIR PROFILES_DIR TARGET_DIR SHARED_DIR`: exit status
and output are dbt's.
"""

from __future__ import annotations

import hashlib
import os
import pprint
import shutil
import sys
from pathlib import Path

PARTIAL_PARSE_FILE = "partial_parse.msgpack"


def _connection_info(project_dir: Path, profiles_dir: Path) -> list[tuple]:
    """The profile's connection settings, sorted, as dbt hashes them for its partial-parse check."""
    from dbt.adapters.factory import load_plugin
    from dbt.cli.flags import Flags
    from dbt.cli.main import cli
    from dbt.config.profile import Profile, read_profile
    from dbt.config.renderer import ProfileRenderer
    from dbt.flags import set_flags
    from dbt_common.context import set_invocation_context

    set_invocation_context(os.environ)
    set_flags(Flags(cli.make_context("dbt", ["parse"])))
    import yaml

    raw = read_profile(str(profiles_dir))
    name = yaml.safe_load((project_dir / "dbt_project.yml").read_text(encoding="utf-8"))["profile"]
    target = os.environ.get("DBT_TARGET") or raw[name].get("target", "default")
    load_plugin(raw[name]["outputs"][target]["type"])
    profile = Profile.from_raw_profiles(raw, name, ProfileRenderer({}))
    return sorted(profile.credentials.connection_info())


def profile_hash(info: list[tuple]) -> str:
    """dbt's ManifestLoader.build_manifest_state_check: sha256 of the sorted settings, pretty-printed."""
    from dbt.contracts.files import FileHash

    return FileHash.from_contents(pprint.pformat(info)).checksum


def seed_key(info: list[tuple]) -> str:
    from dbt.version import __version__

    rest = [kv for kv in info if kv[0] != "path"]
    return hashlib.sha256(f"{__version__}\n{pprint.pformat(rest)}".encode()).hexdigest()[:24]


def plant_seed(seed: Path, target: Path, own_hash: str) -> bool:
    """Copy the seed into target with this profile's hash; False if it could not be read."""
    import msgpack

    try:
        with open(seed, "rb") as f:
            data = msgpack.unpack(f, raw=False, strict_map_key=False)
        data["state_check"]["profile_hash"] = {"name": "sha256", "checksum": own_hash}
    except (OSError, ValueError, KeyError, TypeError, msgpack.UnpackException):
        return False
    tmp = target / f".{PARTIAL_PARSE_FILE}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        msgpack.pack(data, f)
    os.replace(tmp, target / PARTIAL_PARSE_FILE)
    return True


def keep_seed(target: Path, seed: Path) -> None:
    """This parse becomes the seed of the next folder (atomically: other worlds read it meanwhile)."""
    seed.parent.mkdir(parents=True, exist_ok=True)
    tmp = seed.with_name(f".{seed.name}.{os.getpid()}.tmp")
    shutil.copyfile(target / PARTIAL_PARSE_FILE, tmp)
    os.replace(tmp, seed)


def main(argv: list[str]) -> int:
    from dagster_project.lib.procs import die_with_parent

    die_with_parent()  # like ecomwh-dbt: a killed run leaves nothing working for its state folder
    project_dir, profiles_dir, target, shared = map(Path, argv)
    target.mkdir(parents=True, exist_ok=True)
    seed: Path | None = None
    try:
        info = _connection_info(project_dir, profiles_dir)
        seed = shared / "parse" / f"{seed_key(info)}.{PARTIAL_PARSE_FILE}"
        if not (target / PARTIAL_PARSE_FILE).exists() and seed.exists():
            plant_seed(seed, target, profile_hash(info))
    except Exception as e:  # noqa: BLE001 - dbt's internals moved: parse from scratch, as without the folder
        print(f"dbt_parse_seed: parsing from scratch ({type(e).__name__}: {e})", file=sys.stderr)
        seed = None

    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke(["parse", "--quiet", "--project-dir", str(project_dir), "--profiles-dir",
                                 str(profiles_dir), "--target-path", str(target)])
    if not result.success:
        return 1
    if seed is None:
        return 0
    try:
        keep_seed(target, seed)
    except OSError as e:  # the parse is done; the next folder parses from scratch
        print(f"dbt_parse_seed: could not keep the parse for other folders: {e}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
