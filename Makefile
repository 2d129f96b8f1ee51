# Two commands: `make run` starts the app, `make test` runs the whole suite.
# Each creates .venv at the repo root and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501
HOST ?=

.PHONY: run test lint bench samples clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.run-stamp: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.test-stamp: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@ $(VENV)/.run-stamp

run: $(VENV)/.run-stamp
	$(BIN)/tflite-studio serve --port $(PORT) $(if $(HOST),--host $(HOST),)

test: $(VENV)/.test-stamp lint
	$(BIN)/python -m pytest -n 2 --dist loadfile -q $(PYTEST_ARGS)

# Rooms (import contracts), lint, format and types: each fails the run.
lint: $(VENV)/.test-stamp
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(VENV)/.test-stamp
	for f in bench/bench_*.py; do $(BIN)/python $$f || exit 1; done

samples: $(VENV)/.test-stamp
	$(BIN)/python sample_models/build.py

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
