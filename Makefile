# One command each. `make setup` installs everything a fresh machine needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: setup test lint bench contracts contracts-check demo clean

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

setup: $(BIN)/devicemint node_modules/.installed

test: setup
	$(BIN)/pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src

bench: setup
	$(BIN)/python -m bench.run

contracts: node_modules/.installed
	node scripts/build_contracts.mjs

contracts-check: node_modules/.installed
	node scripts/build_contracts.mjs --check

demo: setup
	$(BIN)/devicemint demo

clean:
	rm -rf $(VENV) node_modules .devicemint
