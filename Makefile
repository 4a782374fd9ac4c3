# Every target sets itself up from a fresh clone: a virtualenv in .venv with the project installed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The service alone (make dev, run, worker): a newcomer's first command skips the test tools.
APP_STAMP := $(VENV)/.installed-app
PIP := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: dev run worker test check lint typecheck unit integration e2e pytest fuzz bench clean

# One line per step; pip's own output goes to $(VENV)/pip.log, and its end is shown if a step fails.
# --no-compile: Python compiles the modules it imports when it first imports them, not all of them now.
define install
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "make: $(PYTHON) is older than Python 3.11; run make PYTHON=python3.11 (or newer)"; exit 1; }
	@[ -x $(BIN)/python ] || { echo "make: creating the virtualenv $(VENV) and updating its pip"; \
		$(PYTHON) -m venv $(VENV) && $(PIP) install --upgrade pip >$(VENV)/pip.log 2>&1 || \
		{ tail -n 20 $(VENV)/pip.log; echo "make: failed; pip's whole output is in $(VENV)/pip.log"; exit 1; }; }
	@echo "make: installing $(2) into $(VENV) (pip's output: $(VENV)/pip.log)"
	@start=$$(date +%s); $(PIP) install --no-compile -e '$(1)' >>$(VENV)/pip.log 2>&1 || \
		{ tail -n 20 $(VENV)/pip.log; echo "make: failed; pip's whole output is in $(VENV)/pip.log"; exit 1; }; \
		echo "make: installed in $$(( $$(date +%s) - start ))s"
endef

$(APP_STAMP): pyproject.toml
	$(call install,.,payments-service and its dependencies)
	@touch $@

$(STAMP): pyproject.toml
	$(call install,.[dev],payments-service with its test and lint tools)
	@touch $@ $(APP_STAMP)

## make dev: the whole flow on this machine (private Redis, Stripe sandbox unless keys are set, API, worker, demo receiver)
dev: $(APP_STAMP)
	@$(BIN)/payments-service dev

## make run: the API alone with production settings, configured from the environment (or .env)
run: $(APP_STAMP)
	$(BIN)/payments-service serve

worker: $(APP_STAMP)
	$(BIN)/payments-service worker

## make test: lint, strict typing, the OpenAPI fuzz, then the whole test suite (unit, integration, end-to-end); pytest runs last so its summary ends the output
test: lint typecheck fuzz pytest

## make check: the fast loop while coding (about a minute): lint, strict typing, unit and integration tests
check: lint typecheck
	$(BIN)/pytest -q tests/unit tests/integration

lint: $(STAMP)
	$(BIN)/ruff check payments_service tests benchmarks
	$(BIN)/ruff format --check payments_service tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/pytest -q tests/integration

e2e: $(STAMP)
	$(BIN)/pytest -q -m e2e

fuzz: $(STAMP)
	$(BIN)/python -m tests.fuzz.run_schemathesis

## make bench: throughput, latency and memory against a 300 ms Stripe stand-in; CPU per Stripe call; a 10,000-payment reconcile pass
bench: $(STAMP)
	@command -v wrk >/dev/null || { s=""; [ "$$(id -u)" -eq 0 ] || s=sudo; \
		$$s apt-get install -y -qq wrk || { $$s apt-get update -qq && $$s apt-get install -y -qq wrk; }; }
	$(BIN)/python -m benchmarks.run
	$(BIN)/python -m benchmarks.stripe_transport
	$(BIN)/python -m benchmarks.reconcile_pass
	$(BIN)/python -m benchmarks.footprint
	$(BIN)/python -m benchmarks.replica_ack
	$(BIN)/python -m benchmarks.flash_sale --stampede
	$(BIN)/python -m benchmarks.redis_cost

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts benchmarks/results
