# relapse-risk: `make` alone lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR ?= outputs/demo
DEMO_PATIENTS ?= 3000
# A Python >= 3.12: $PYTHON if set, else the first suitable one on PATH or under pyenv.
PYTHON ?= $(shell for p in python3.13 python3.12 python3 $$HOME/.pyenv/versions/3.1[2-9]*/bin/python3 /root/.pyenv/versions/3.1[2-9]*/bin/python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { command -v $$p; break; }; done)

.PHONY: help setup demo test test-fast lint bench mlflow-ui clean

help: ## List the targets with what each does
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	@if [ -z "$(PYTHON)" ]; then echo "error: no Python >= 3.12 found; install one (e.g. 'pyenv install 3.12') or run 'make setup PYTHON=/path/to/python3.12'" >&2; exit 1; fi
	@echo "Creating $(VENV) with $(PYTHON)"
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check "uv==0.13.9"
	@$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) -c requirements.lock -e ".[dev]"
	@touch $(STAMP)

setup: $(STAMP) ## Create .venv with Python >= 3.12 and install the project from the pinned set

demo: $(STAMP) ## Simulate a cohort, train, promote, score it and write the audit report
	@DEMO_DIR=$(DEMO_DIR) DEMO_PATIENTS=$(DEMO_PATIENTS) VENV=$(VENV) bash scripts/demo.sh

# Bytecode is precompiled at install and may be cached for the project's own modules even where
# the environment sets PYTHONDONTWRITEBYTECODE: without it every run recompiles every import.
TEST_ENV := PYTHONDONTWRITEBYTECODE=

test: $(STAMP) ## Run the whole test suite (unit and slow end-to-end tests)
	$(TEST_ENV) $(VENV)/bin/pytest -n 2 --dist loadgroup -q

test-fast: $(STAMP) ## Run only the fast unit tests (skips tests marked slow)
	$(TEST_ENV) $(VENV)/bin/pytest -n 2 --dist loadgroup -q -m "not slow"

lint: $(STAMP) ## Check style and common mistakes with ruff
	$(VENV)/bin/ruff check pipeline features models tests benchmarks

bench: $(STAMP) ## Run the benchmarks (simulation, features, training, scoring) and print figures
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

mlflow-ui: $(STAMP) ## Serve the MLflow UI for the local store on http://127.0.0.1:5000
	$(VENV)/bin/mlflow ui --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///mlflow.db}" --host 127.0.0.1 --port 5000

clean: ## Remove generated outputs (keeps .venv and the MLflow store)
	rm -rf outputs .pytest_cache .ruff_cache
