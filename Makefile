# Two commands do all set-up on a fresh machine (Python 3.11): `make demo` and `make test`.
PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := .venv
BIN := $(VENV)/bin
# Compiled bytecode: the machine sets PYTHONDONTWRITEBYTECODE=1, and without .pyc files every
# import of dagster/dbt/GE recompiles (seconds per process).
export UV_COMPILE_BYTECODE := 1
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install demo test bench generate run serve stop status clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml uv.lock
	$(PYTHON) -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(PYTHON) -m uv sync --frozen --python $(PYTHON)
	touch $@

demo: install
	$(BIN)/ecomwh generate
	$(BIN)/ecomwh run
	$(BIN)/ecomwh status
	$(BIN)/ecomwh serve

test: install
	$(BIN)/pytest

# Benchmarks are not tests: they print timings and ratios measured in the same run.
bench: install
	$(BIN)/python benchmarks/bench_clv.py

generate run status stop: install
	$(BIN)/ecomwh $@

serve: install
	$(BIN)/ecomwh serve

clean:
	rm -rf .ew
