# One command each. `make setup` installs everything a fresh machine needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# apt-get needs root; as another user, through sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup chromium wrk test lint bench contracts contracts-check demo clean

$(BIN)/devicemint: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

node_modules/.installed: package.json package-lock.json
	# `npm install`, not `npm ci`: npm omits the other platforms' optional anvil binaries from the
	# lock file and `npm ci` then refuses it. Versions are pinned exactly in package.json.
	npm install --no-audit --no-fund
	@touch $@

# The browser tests drive Debian's Chromium (Playwright launches it; no browser download).
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

setup: $(BIN)/devicemint node_modules/.installed chromium

test: setup
	$(BIN)/pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src

# The serving bench's load generator (Debian's wrk), on loopback.
wrk:
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk; }

bench: setup wrk
	$(BIN)/python -m bench.run

contracts: node_modules/.installed
	node scripts/build_contracts.mjs

contracts-check: node_modules/.installed
	node scripts/build_contracts.mjs --check

demo: setup
	$(BIN)/devicemint demo

clean:
	rm -rf $(VENV) node_modules .devicemint
