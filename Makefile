# Two commands do all set-up on a fresh machine (Python 3.11): `make demo` and `make test`.
PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := .venv
BIN := $(VENV)/bin
# Superset pins SQLAlchemy<2 and older pandas/numpy: it gets its own virtualenv and lock file.
SUPERSET_VENV := .venv-superset
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Compiled bytecode: the machine sets PYTHONDONTWRITEBYTECODE=1, and without .pyc files every
# import of dagster/dbt/GE recompiles (seconds per process).
export UV_COMPILE_BYTECODE := 1
export UV_PROJECT_ENVIRONMENT := $(VENV)

# Three workers on 2 cores: with two, the cores were busy 1.58 of 2 on average (pytest's `time`:
# 48.9 CPU-minutes in 31.0 minutes), as tests wait on runs, services and browsers; a third fills
# that (docs/performance.md). tests/conftest.py groups the tests so that a module's (and a shared
# world's) fixtures are built once.
PYTEST_WORKERS ?= -n 3 --dist loadscope --no-loadscope-reorder

.PHONY: install install-superset browser demo test check generate-contract bench generate run serve stop status sql clean

install: $(VENV)/.installed install-superset

$(VENV)/.installed: pyproject.toml uv.lock
	$(PYTHON) -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(PYTHON) -m uv sync --frozen --python $(PYTHON)
	touch $@

install-superset: $(SUPERSET_VENV)/.installed

$(SUPERSET_VENV)/.installed: superset/requirements.lock $(VENV)/.installed
	[ -x $(SUPERSET_VENV)/bin/python ] || $(PYTHON) -m uv venv --quiet --python $(PYTHON) $(SUPERSET_VENV)
	$(PYTHON) -m uv pip sync --quiet --require-hashes --python $(SUPERSET_VENV)/bin/python superset/requirements.lock
	touch $@

# The dashboard test drives Debian's chromium (Playwright cannot download browsers here); the CJK
# font is what makes the Chinese titles legible in its screenshots.
browser:
	@command -v chromium >/dev/null && fc-list :lang=zh | grep -q . || \
	  ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null)

demo: install
	$(BIN)/ecomwh generate
	$(BIN)/ecomwh run
	$(BIN)/ecomwh status
	$(BIN)/ecomwh serve

test: install browser
	$(BIN)/pytest $(PYTEST_WORKERS)

# Lint, generated files and the fast tier, in under 3 minutes; CI runs it before `make test`. The fast
# tier leaves out the tests marked e2e: they need a warehouse built by the pipeline, Superset, a
# browser or `ecomwh run`/`serve` as a subprocess.
# Nothing is written into the repository (tests/test_end_to_end.py checks): ruff runs without its cache.
check: install
	$(BIN)/ruff check --no-cache .
	$(BIN)/sqlfluff lint --processes 2 dbt/models dbt/tests
	$(BIN)/python superset/build_bundle.py --check
	$(BIN)/python -m dagster_project.lib.contract_render --check
	$(BIN)/python -m dagster_project.lib.quality_thresholds --check
	$(BIN)/pytest -m "not e2e" $(PYTEST_WORKERS)

# lib/contract.py rendered into the dbt sources, dbt's contract_enum() macro, the enum labels seed and the
# contract part of the raw GE suites, then the suites' limits into the quality_thresholds seed
# (docs/quality.md); `make check` fails while one is stale.
generate-contract: install
	$(BIN)/python -m dagster_project.lib.contract_render
	$(BIN)/python -m dagster_project.lib.quality_thresholds

# Benchmarks are not tests: they print timings and ratios measured in the same run and write
# docs/benchmarks.md. Presets S (demo) and M by default; `make bench PRESETS="S M L"` for L.
PRESETS ?= S M
bench: install
	$(BIN)/python benchmarks/bench.py --presets $(PRESETS)

generate run status stop sql: install
	$(BIN)/ecomwh $@

serve: install
	$(BIN)/ecomwh serve

clean:
	rm -rf .ew
