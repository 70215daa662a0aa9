# Diquis: `make demo` runs it, `make test` checks it. Both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench clean

$(STAMP): pyproject.toml requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

NODE_DIRS := $(patsubst %/package.json,%,$(wildcard tests/*/node/package.json))
NODE_STAMPS := $(addsuffix /node_modules/.installed,$(NODE_DIRS))

%/node_modules/.installed: %/package.json %/package-lock.json
	cd $* && npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: $(STAMP)
	$(BIN)/python -m diquis.jobs.demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) $(NODE_STAMPS)
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

bench: $(STAMP)
	test -f $(VENV)/.bench || ($(BIN)/python -m pip install -q -r requirements-bench.lock && touch $(VENV)/.bench)
	$(BIN)/python bench/jobs.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .diquis .pytest_cache .mypy_cache .ruff_cache
