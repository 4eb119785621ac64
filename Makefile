# The README's commands. Everything runs from the project's own .venv; state stays in the tree.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)/dagster_home

.PHONY: install run test dev mlflow-ui check bench lock clean

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

install: $(VENV)/.installed

## Materialise the whole asset graph on the embedded default and print the summary.
run: install
	$(BIN)/python -m pipelines.run $(ARGS)

## Install, then run the test suite.
test: install
	$(BIN)/python -m pytest $(ARGS)

## Dagster UI + daemon on the same instance, bound to loopback.
dev: install
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

mlflow-ui: install
	$(BIN)/mlflow ui --backend-store-uri sqlite:///data/mlflow/mlflow.db --host 127.0.0.1 --port 5000

check: install
	$(BIN)/dg check defs

bench: install
	$(BIN)/python -m bench.run_all

## Re-resolve the lock from pyproject.toml's direct pins.
lock:
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv && .lockvenv/bin/pip install --quiet -e '.[test]'
	{ echo "# Full pinned lock of the Python stack (pip freeze format, no download addresses)."; echo "# Regenerate: make lock"; \
	  .lockvenv/bin/pip freeze --exclude-editable | grep -v -i '^governed-risk-scoring'; } > requirements.lock
	rm -rf .lockvenv

## Forget all runtime state of the embedded default (data, registry, Dagster runs).
clean:
	rm -rf data dagster_home/storage dagster_home/history dagster_home/schedules dagster_home/logs dagster_home/.telemetry dagster_home/.nux
