# dockyard — the two commands of the README: `make demo` and `make test`.
# Each does its own set-up on a fresh machine: .venv, redis-server, Node BullMQ (interop).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NODE_DIR := tests/interop
PYTEST_ARGS ?=

.PHONY: demo test lint venv redis postgres node chromium bench clean

demo: venv
	$(PY) -m dockyard demo

test: venv redis postgres node chromium lint
	$(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check src tests $(wildcard bench)
	$(VENV)/bin/mypy

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "dockyard needs Python 3.11+"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,fast,web,postgres]'
	touch $(STAMP)

# redis-server: the tests and the demo start private ones; install it when missing.
redis:
	@command -v redis-server >/dev/null 2>&1 || bash scripts/install-redis.sh

# PostgreSQL's initdb and pg_ctl: the tests start private servers; install them when missing.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 \
		|| bash scripts/install-postgres.sh

# Debian's chromium for the dashboard's browser tests (Playwright drives it).
chromium:
	@test -x /usr/bin/chromium || bash scripts/install-chromium.sh

# Node BullMQ for the interop tests, from the committed lock file.
node: $(NODE_DIR)/node_modules/.stamp

$(NODE_DIR)/node_modules/.stamp: $(NODE_DIR)/package-lock.json
	@command -v npm >/dev/null 2>&1 || bash scripts/install-node.sh
	npm ci --prefix $(NODE_DIR) --no-audit --no-fund --loglevel=error
	touch $@

bench: venv redis
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(NODE_DIR)/node_modules .pytest_cache .mypy_cache .ruff_cache
