# Custos: `make run` for a first run on SQLite with demo data, `make test` for the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1:8000
PYTEST_ARGS ?=

.PHONY: run test install install-dev migrate demo worker bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip setuptools wheel

# Reinstall whenever the dependency list or the pinned versions change.
$(VENV)/.installed: $(VENV)/bin/python pyproject.toml constraints.txt
	$(PIP) install --quiet -c constraints.txt -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install --quiet -c constraints.txt -e '.[dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

migrate: install
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py demo --keys --url http://$(HOST)

# The demo signs a checkpoint and prints its accounts last (a re-run with nothing to do is quick).
run: demo
	$(PY) manage.py runserver $(HOST)

# The import contracts (pyproject.toml, [tool.importlinter]) first: the arrows of docs/DESIGN.md.
test: install-dev
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest $(PYTEST_ARGS)

worker: install
	$(VENV)/bin/celery -A config worker --loglevel=INFO

bench: install-dev
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache
