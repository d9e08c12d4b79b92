# Two commands for a newcomer: `make demo` and `make test`. Both create .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
NBOPS := $(VENV)/bin/nbops
STAMP := $(VENV)/.installed-stamp
EXAMPLE ?= example_notebooks/churn.ipynb
DEMO_PORT ?= 8000

.PHONY: setup demo test lint typecheck unit bench clean labextension browser-deps

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@# An editable install leaves install.json in nbops/labextension/, which the next one
	@# would add to the wheel a second time: start from the built sidebar only.
	rm -f nbops/labextension/install.json
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
	@echo "== nbops deploy $(EXAMPLE)  (health-gated; the stable URL is kept across versions)"
	$(NBOPS) deploy $(EXAMPLE) --port $(DEMO_PORT)
	@echo "== a prediction from the deployed service"
	@$(PY) -c 'import json, urllib.request as u; body = json.load(open("build/churn/nbops.json"))["endpoints"][0]["example"]; r = u.urlopen(u.Request("http://127.0.0.1:$(DEMO_PORT)/predict", json.dumps(body).encode(), {"Content-Type": "application/json"})); print(json.dumps(body), "->", r.read().decode())'
	@echo "== the same customer through the micro-batched route (predict_many, for high traffic)"
	@$(PY) -c 'import json, urllib.request as u; body = json.load(open("build/churn/nbops.json"))["endpoints"][1]["example"]; r = u.urlopen(u.Request("http://127.0.0.1:$(DEMO_PORT)/predict_batch", json.dumps(body).encode(), {"Content-Type": "application/json"})); print(json.dumps(body), "->", r.read().decode())'
	@echo "== nbops status"
	$(NBOPS) status
	@echo
	@echo "Where to look:"
	@echo "  http://127.0.0.1:$(DEMO_PORT)/docs   the service's typed API docs (also /metrics, /version)"
	@echo "  build/churn/                 pipeline/, service/, tests/, report.html, nbops.json, Dockerfile, k8s/"
	@echo "  $(NBOPS) runs | history churn | logs churn    runs and deployments (state in .nbops/)"
	@echo "  $(NBOPS) test $(EXAMPLE) --require 'test_accuracy>=0.7'   what CI runs"
	@echo "Still running: the churn service on port $(DEMO_PORT). Stop it with: $(NBOPS) stop churn"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The browser tests run in a pytest process of their own: Playwright's sync API drives an event
# loop in the main thread, which pytest-jupyter's server fixtures must not find there.
unit: $(STAMP) labextension browser-deps
	$(VENV)/bin/pytest --ignore=tests/browser
	$(VENV)/bin/pytest tests/browser

# The JupyterLab sidebar: built from labextension/ into nbops/labextension/ (removed first, so a
# stale build never ships), its Jest tests run, and linked into the venv's JupyterLab.
labextension: $(STAMP)
	@echo "== JupyterLab sidebar: install, build, prettier, jest"
	cd labextension && PATH="$(abspath $(VENV))/bin:$$PATH" jlpm install
	cd labextension && PATH="$(abspath $(VENV))/bin:$$PATH" jlpm build:prod
	cd labextension && PATH="$(abspath $(VENV))/bin:$$PATH" jlpm prettier:check
	cd labextension && PATH="$(abspath $(VENV))/bin:$$PATH" jlpm test
	$(VENV)/bin/jupyter-builder develop . --overwrite

# The browser tests drive Debian's Chromium (Playwright's own download cannot be fetched here).
browser-deps:
	@if ! command -v chromium >/dev/null 2>&1; then \
		echo "== installing Debian's chromium for the browser tests"; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; \
	fi

test: lint typecheck unit

bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) build .nbops .mypy_cache .ruff_cache .pytest_cache
