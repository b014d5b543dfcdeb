# Two commands on a fresh machine: `make run` and `make test`. Everything else is set up by them.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-requirements
MANAGE := $(BIN)/python manage.py

.PHONY: run test setup install lint format check bench screenshots clean

$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $(STAMP)

install: $(STAMP)

setup: install
	@mkdir -p var
	$(MANAGE) migrate --noinput
	$(MANAGE) collectstatic --noinput --verbosity 0
	$(MANAGE) seed_demo

## The whole portal (web, Celery worker, Celery beat) with demo data. Ctrl-C stops it all.
run: setup
	$(MANAGE) run_portal

## The whole test suite.
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

check: install
	$(MANAGE) check
	$(MANAGE) makemigrations --check --dry-run

## Benchmarks (figures into docs/performance.md). The ingest bench drives load with wrk (C), installed
## from Debian's packages when missing and possible; without it the bench falls back to a Python client.
bench: install
	@command -v wrk >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; } || \
	  echo "wrk not installed: the ingest bench uses its Python client"
	$(BIN)/python bench/run_all.py $(BENCH)

## The README's pictures (docs/img/*.png), taken by the browser tests marked `screenshots`.
screenshots: install
	SCREENSHOTS_DIR=docs/img $(BIN)/python -m pytest -m screenshots -q $(PYTEST_ARGS)

clean:
	rm -rf var staticfiles
