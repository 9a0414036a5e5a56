# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench bench-peers clean systemd-tools chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/asyncflow serve --config dags/asyncflow.toml --dags-folder dags --database .asyncflow/asyncflow.db

test: $(STAMP) lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check asyncflow tests benchmarks dags
	$(BIN)/ruff format --check asyncflow

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) systemd-tools chromium
	$(BIN)/pytest -q

# systemd-analyze verifies the unit file; installed when we can (root with apt), else skipped.
systemd-tools:
	@command -v systemd-analyze >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && (apt-get update -qq && apt-get install -y -qq --no-install-recommends systemd) >/dev/null 2>&1 \
	  || echo "systemd-analyze unavailable: the unit-file test will be skipped"; }

# Debian's chromium drives the browser tests (Playwright's client, never a downloaded browser);
# installed when we can (root with apt), else those tests are skipped.
chromium:
	@command -v /usr/bin/chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium) >/dev/null 2>&1 \
	  || echo "chromium unavailable: the browser tests will be skipped"; }

bench: $(STAMP)
	$(BIN)/python -m benchmarks

bench-peers: $(STAMP)
	$(BIN)/python -m benchmarks.peers

clean:
	rm -rf $(VENV) .asyncflow .mypy_cache .pytest_cache .ruff_cache
