# Two commands do all set-up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install index run test lint unit integration bench eval clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch==2.13.0 first: the CPU wheel; anything newer pulls GBs of CUDA packages.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[model,dev]'
	touch $@

install: $(STAMP)

index: install
	$(BIN)/assistant ingest seeds/

run: index
	@echo "The index is ready. The chat UI is not built yet; ask from the terminal meanwhile:"
	@echo "  $(BIN)/assistant ingest seeds/   (re-index after editing seeds/)"

lint: install
	$(BIN)/ruff check assistant tests
	$(BIN)/ruff format --check assistant tests
	$(BIN)/mypy assistant

unit: install
	$(BIN)/pytest tests/unit -q

test: lint
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) vectorstore/* .pytest_cache .mypy_cache .ruff_cache

bench: index
	$(BIN)/python benchmarks/bench.py

eval: index
	$(BIN)/assistant eval --baseline
