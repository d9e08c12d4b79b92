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
	@echo "== nbops run $(EXAMPLE)  (a second run is all cache hits)"
	$(NBOPS) run $(EXAMPLE)
	$(NBOPS) run $(EXAMPLE)
	@echo "== nbops build $(EXAMPLE)"
	$(NBOPS) build $(EXAMPLE)
	@echo
	@echo "Where to look:"
	@echo "  build/churn/pipeline/      the generated package (python -m pipeline, run in build/churn)"
	@echo "  build/churn/report.html    the run's report;  build/churn/nbops.json  the manifest"
	@echo "  $(NBOPS) runs              the recorded runs (state in .nbops/)"
	@echo "  $(NBOPS) test $(EXAMPLE) --require 'test_accuracy>=0.7'   what CI runs"
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
