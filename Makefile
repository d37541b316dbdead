# Two commands do everything on a fresh machine: `make run` (demo on SQLite) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: install vendor run test lint typecheck unit bench clean

# Studio browser assets (bpmn-js, properties panel, axe-core) come from npm via package.json and
# package-lock.json, and are bundled by esbuild into web/static/vendor/ (gitignored, like node_modules).
NPM ?= npm
NODE ?= node
NODE_STAMP := node_modules/.ntpswf-installed
VENDOR_STAMP := web/static/vendor/.built
STUDIO_SOURCES := $(wildcard web/static/studio/*)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

$(NODE_STAMP): package.json $(wildcard package-lock.json)
	@if ! command -v $(NPM) >/dev/null 2>&1; then \
	  if [ "$$CI" = "true" ]; then echo "npm is required to build the studio's assets" >&2; exit 1; fi; \
	  echo "warning: npm not found: the studio's modeler and diagrams will not load" >&2; \
	elif [ -f package-lock.json ]; then \
	  $(NPM) ci --no-audit --no-fund --loglevel=error && touch $@; \
	else \
	  $(NPM) install --no-audit --no-fund --loglevel=error && touch $@; \
	fi

$(VENDOR_STAMP): $(NODE_STAMP) $(STUDIO_SOURCES)
	@if [ -f $(NODE_STAMP) ]; then $(NODE) web/static/studio/build.mjs && touch $@; fi

vendor: $(VENDOR_STAMP)

run: install vendor
	NTPSWF_DEMO_MODE=1 $(BIN)/ntpswf db upgrade
	NTPSWF_DEMO_MODE=1 $(BIN)/ntpswf demo
	NTPSWF_DEMO_MODE=1 $(BIN)/ntpswf serve --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

unit: install vendor
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck unit

bench: install
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache node_modules web/static/vendor
