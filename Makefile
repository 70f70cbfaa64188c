# writegate developer commands. `make serve` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PG_URL ?= postgresql://postgres@127.0.0.1:5432/postgres

.PHONY: serve test lint test-sqlite test-postgresql bench soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $(VENV)/.installed $@

## Install and start the service on the embedded default (SQLite file, embedded worker).
serve: $(VENV)/.installed
	$(BIN)/writegate serve

## Install and run the whole test suite: linters, then every test on SQLite and on PostgreSQL.
test: $(VENV)/.installed-dev lint test-sqlite test-postgresql

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test-sqlite: $(VENV)/.installed-dev
	WRITEGATE_TEST_DB=sqlite $(BIN)/pytest

test-postgresql: $(VENV)/.installed-dev
	WRITEGATE_TEST_DB=postgresql WRITEGATE_TEST_PG_URL=$(PG_URL) $(BIN)/pytest

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $(VENV)/.installed $(VENV)/.installed-dev $@

## Benchmarks (prints figures; writes bench/results/*.json).
bench: $(VENV)/.installed-bench
	@command -v wrk >/dev/null || apt-get install -y wrk
	$(BIN)/python -m bench $(BENCH_ARGS)

## Soak: every API under a few hundred clients for minutes on both databases (prints figures).
SOAK_ARGS ?= --db both --clients 300 --seconds 90
soak: $(VENV)/.installed-dev
	WRITEGATE_TEST_PG_URL=$(PG_URL) $(BIN)/python bench/soak.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
