# Every target sets itself up from a fresh clone: a virtualenv in .venv with the project installed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev run worker test check lint typecheck unit integration e2e pytest fuzz bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## make dev: the whole flow on this machine (private Redis, Stripe sandbox unless keys are set, API, worker, demo receiver)
dev: $(STAMP)
	$(BIN)/payments-service dev

## make run: the API alone with production settings, configured from the environment (or .env)
run: $(STAMP)
	$(BIN)/payments-service serve

worker: $(STAMP)
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
	$(BIN)/python -m benchmarks.replica_ack
	$(BIN)/python -m benchmarks.redis_cost

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts benchmarks/results
