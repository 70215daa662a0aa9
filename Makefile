# Diquis: `make demo` runs it, `make test` checks it. Both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo jobs-demo test lint typecheck pytest bench clean browser nginx web webtest wheel bench-jobs bench-hub bench-idle bench-e2e chaos

$(STAMP): pyproject.toml requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.lock  # the [app] and [dev] extras, pinned
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

NODE_DIRS := $(patsubst %/package.json,%,$(wildcard tests/*/node/package.json))
NODE_STAMPS := $(addsuffix /node_modules/.installed,$(NODE_DIRS))

%/node_modules/.installed: %/package.json %/package-lock.json
	cd $* && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The web app (web/): installed from its lock file, built into web/dist for diquis serve.
WEB_STAMP := web/node_modules/.installed
WEB_DIST := web/dist/index.html
WEB_SOURCES := $(shell find web/src web/public -type f 2>/dev/null) $(wildcard web/index.html web/*.ts web/*.json)

$(WEB_STAMP): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(WEB_DIST): $(WEB_STAMP) $(WEB_SOURCES)
	cd web && npm run build
	touch $@

web: $(WEB_DIST)

# The wheel, with the built web app inside (diquis/_web, by hatch_build.py): what to deploy.
wheel: $(STAMP) $(WEB_DIST)
	rm -rf dist
	$(BIN)/python -m pip wheel -q --no-deps -w dist .

webtest: $(WEB_STAMP)
	cd web && npm test

DEMO_EMAIL := admin@diquis.local
DEMO_PASSWORD := diquis-demo-2026
DEMO_ENV := DIQUIS_DEV=1 DIQUIS_DEMO_STEP_DELAY=$${DIQUIS_DEMO_STEP_DELAY:-1.5}

demo: $(STAMP) $(WEB_DIST)
	@$(DEMO_ENV) $(BIN)/diquis --log-level WARNING create-superadmin \
	  --email $(DEMO_EMAIL) --password $(DEMO_PASSWORD) >/dev/null
	@echo ""
	@echo "  Diquis is starting on http://127.0.0.1:8000"
	@echo "  Log in as $(DEMO_EMAIL) / $(DEMO_PASSWORD)"
	@echo "  Jobs dashboard: http://127.0.0.1:8000/hangfire   E-mails: the Mailbox page"
	@echo "  (embedded SQLite under ./.diquis; Ctrl-C stops it)"
	@echo ""
	@$(DEMO_ENV) $(BIN)/diquis --log-level WARNING serve --host 127.0.0.1 --port 8000

jobs-demo: $(STAMP)
	$(BIN)/python examples/jobs_demo.py

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# End-to-end tests drive Debian's chromium (Playwright cannot download browsers here).
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -q chromium >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)); \
	  else echo "chromium is missing and cannot be installed here: browser tests will skip"; fi; }

# tests/deploy runs Debian's nginx (its own config, prefix and port under the test's tmp dir)
# in front of two `diquis serve`: installed like chromium, after it (one apt-get at a time).
# Where services may start (not in Docker images), the package also starts its own nginx
# on port 80; the tests do not use it.
NGINX_BIN := /usr/sbin/nginx
nginx: browser
	@test -x $(NGINX_BIN) || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -q nginx >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null && apt-get install -y -q nginx >/dev/null)); \
	  else echo "nginx is missing and cannot be installed here: tests/deploy will skip"; fi; }

# Two test processes (pytest-xdist), each taking whole files: about half of the suite's time
# is spent waiting on servers, browsers and deadlines, so two halve it on a 2-core machine.
# `make pytest PYTEST_WORKERS=0` runs in one process (easier to read when debugging).
PYTEST_WORKERS ?= 2

pytest: $(STAMP) $(NODE_STAMPS) $(WEB_DIST) browser nginx
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

test: lint typecheck webtest pytest

# The long chaos suite (tests/chaos with DIQUIS_CHAOS=full): 100 tenants, 40 s of kill -9,
# 10,000 engine jobs, 200 clients x 2,000 creates, on a private PostgreSQL and Redis it
# starts itself. Not part of .ci/run; `make test` runs the short version (tests/chaos).
chaos: $(STAMP)
	DIQUIS_CHAOS=full $(BIN)/pytest tests/chaos -s -q $(PYTEST_ARGS)

# The peers pin versions of their own (e.g. websockets), so benchmarks get their own venv.
BENCH_VENV := .venv-bench
$(BENCH_VENV)/.installed: pyproject.toml requirements-bench.lock
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q -r requirements-bench.lock
	$(BENCH_VENV)/bin/python -m pip install -q --no-deps -e .
	touch $@

HUB_NODE := bench/hub_node/node_modules/.installed
HUB_BENCH_ARGS ?= --pin

bench: $(BENCH_VENV)/.installed $(HUB_NODE)
	$(BENCH_VENV)/bin/python bench/jobs.py $(BENCH_ARGS)
	$(BENCH_VENV)/bin/python bench/idle.py --peers --what pickup $(IDLE_BENCH_ARGS)
	$(BENCH_VENV)/bin/python bench/hub.py $(HUB_BENCH_ARGS)
	$(BENCH_VENV)/bin/python bench/e2e.py $(E2E_BENCH_ARGS)

bench-jobs: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python bench/jobs.py $(BENCH_ARGS)

bench-idle: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python bench/idle.py --peers $(IDLE_BENCH_ARGS)

bench-hub: $(BENCH_VENV)/.installed $(HUB_NODE)
	$(BENCH_VENV)/bin/python bench/hub.py $(HUB_BENCH_ARGS)

# serve --no-worker + 1 worker on PostgreSQL: POST /api/tenants under load, Active -> hub
bench-e2e: $(BENCH_VENV)/.installed $(HUB_NODE)
	$(BENCH_VENV)/bin/python bench/e2e.py $(E2E_BENCH_ARGS)

clean:
	rm -rf $(VENV) $(BENCH_VENV) dist .diquis .pytest_cache .mypy_cache .ruff_cache
