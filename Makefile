# Two commands for a newcomer: `make demo` and `make test`. Both create .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
NBOPS := $(VENV)/bin/nbops
STAMP := $(VENV)/.installed-stamp
EXAMPLE ?= example_notebooks/churn.ipynb

.PHONY: setup demo test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	@echo "== nbops check $(EXAMPLE)"
	$(NBOPS) check $(EXAMPLE)
	@echo "== nbops lineage $(EXAMPLE)"
	$(NBOPS) lineage $(EXAMPLE)
	@echo
	@echo "Also try: $(NBOPS) lineage $(EXAMPLE) --format json | mermaid | dot"
	@echo "Nothing was left running."

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(VENV)/bin/pytest

test: lint typecheck unit

bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) build .nbops .mypy_cache .ruff_cache .pytest_cache
