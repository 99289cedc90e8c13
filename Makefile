# Two commands do all set-up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install index run test lint unit integration bench bench-quick eval clean browser eval-gate

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch==2.13.0 first: the CPU wheel; anything newer pulls GBs of CUDA packages.
$(STAMP): pyproject.toml requirements/pinned.txt | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[model,dev]'
	$(BIN)/pip install --quiet --no-deps --require-hashes -r requirements/pinned.txt
	$(BIN)/python -m assistant.onnx_export || echo "The ONNX export failed (see above): answers embed with sentence-transformers instead."
	touch $@

install: $(STAMP)

index: install
	$(BIN)/assistant ingest seeds/

run: index
	$(BIN)/assistant serve

lint: install
	$(BIN)/ruff check assistant tests benchmarks
	$(BIN)/ruff format --check assistant tests benchmarks
	$(BIN)/mypy assistant

unit: install
	$(BIN)/pytest tests/unit -q

# The browser tests drive Debian's chromium (Playwright's own browser download does not work offline).
browser:
	@test -x /usr/bin/chromium || { echo "Installing Debian's chromium for the browser tests..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Every test, the eval gate included (tests/eval: the 72 questions through the real model, ~12-30 min on 2
# cores; its reports go to test-artifacts/eval/).
test: lint browser
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) vectorstore/* .pytest_cache .mypy_cache .ruff_cache

# Latency and each stage's cost, `make run` to a usable page, retrieval at scale, ingestion, memory and concurrent
# load (~25-30 min on 2 cores; run it on a quiet machine). Throw-away stores in a temp folder; writes
# benchmarks/results.json and benchmarks/RESULTS.md (each row beside the previous run's median).
bench: install
	$(BIN)/python benchmarks/bench.py

# The same at small sizes with few repeats (~6 min): a smoke run, written to benchmarks/results/quick/.
bench-quick: install
	$(BIN)/python benchmarks/bench.py --quick

eval: index
	$(BIN)/assistant eval --baseline

# The eval gate alone (also part of `make test`).
eval-gate: install
	$(BIN)/pytest -q -m eval -s
