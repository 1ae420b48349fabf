# Two entry points, both idempotent: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup test-tools demo test test-slow lint ui clean

setup: $(VENV)/.installed .tools/bin/ipfs

test-tools: .tools/bin/versitygw

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

.tools/bin/ipfs:
	scripts/install-kubo

.tools/bin/versitygw:
	scripts/install-versitygw

demo: setup
	scripts/demo

test: setup test-tools
	$(BIN)/ruff check .
	$(BIN)/pytest

test-slow: setup test-tools
	$(BIN)/pytest -m slow

ui: setup
	scripts/kubo-node start
	mkdir -p .arke/dagster_home && cp deploy/dagster.local.yaml .arke/dagster_home/dagster.yaml
	# the pool exists before the daemon's first pass, or two runs queued at once both start
	DAGSTER_HOME=$(CURDIR)/.arke/dagster_home $(BIN)/dagster instance concurrency set arke_dr 1 >/dev/null
	@$(BIN)/python -c 'from arke_dr_pipeline.defs.automation import automations_line; print(automations_line())'
	DAGSTER_HOME=$(CURDIR)/.arke/dagster_home IPFS_API_URL=http://127.0.0.1:$${ARKE_NODE_PORT:-5101}/api/v0 \
	  BACKUPS_DIR=$(CURDIR)/.arke/backups SNAPSHOTS_DIR=$(CURDIR)/.arke/snapshots \
	  VIRTUAL_ENV=$(CURDIR)/$(VENV) PATH=$(CURDIR)/$(BIN):$$PATH \
	  dg dev -h 127.0.0.1 -p $${ARKE_UI_PORT:-3000}

clean:
	-scripts/kubo-node stop
	rm -rf $(VENV) .arke
