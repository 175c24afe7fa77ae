# FlowHQ: `make run` (the whole system against the simulator, with a demo
# tenant) and `make test` (ruff, the layer contract, mypy and the full suite). Each does its own set-up.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed
# whatsapp-web.js, pinned by its lock file, for the simulator's conformance test.
CONFORMANCE := tests/conformance
NODE_STAMP := $(CONFORMANCE)/node_modules/.installed
PORT ?= 8000

# The test run's own servers and names: a throwaway database (pytest-django
# creates test_<name> and drops it) and a Redis database number of its own.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/flowhq
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
# pytest-xdist workers; each gets test_<name>_gw<N> and Redis database 15 − N (tests/parallel.py).
TEST_WORKERS ?= 3

.PHONY: help run test setup system lint bench clean

help:
	@echo "make run   - set up and start FlowHQ with the simulator and a demo tenant"
	@echo "make test  - set up, then ruff, lint-imports, mypy and the whole test suite"
	@echo "make bench - run the benchmarks in bench/ and print their figures"

$(STAMP): requirements/base.txt requirements/dev.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "FlowHQ needs Python 3.11, found " + sys.version.split()[0]'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	@# The checkout on the venv's path, so pytest can load tests.parallel before Django starts.
	@$(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' | xargs -I{} sh -c 'echo "$(CURDIR)" > {}/flowhq-checkout.pth'
	@touch $@

setup: $(STAMP)

# Puppeteer's own browser download cannot work here: the system Chromium is used.
$(NODE_STAMP): $(CONFORMANCE)/package.json $(CONFORMANCE)/package-lock.json
	cd $(CONFORMANCE) && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
	@touch $@

system:
	@scripts/ensure-system.sh

.env:
	@$(BIN)/python scripts/make_dotenv.py > .env
	@echo ">> wrote .env with fresh secrets for this machine"

run: setup system .env
	@# A .env written before Flower asked for a password gets one.
	@grep -q '^FLOWER_BASIC_AUTH=' .env || { echo "FLOWER_BASIC_AUTH=flower:$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(18))')" >> .env; echo ">> added FLOWER_BASIC_AUTH to .env"; }
	@grep -q '^METRICS_TOKEN=' .env || { echo "METRICS_TOKEN=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(32))')" >> .env; echo ">> added METRICS_TOKEN to .env (Prometheus: Authorization: Bearer <it>)"; }
	@grep -q '^WEBHOOK_ALLOW_PRIVATE=' .env || { echo "WEBHOOK_ALLOW_PRIVATE=1" >> .env; echo ">> added WEBHOOK_ALLOW_PRIVATE=1 to .env (webhooks to local receivers)"; }
	@grep -q '^QR_MAX_UNSCANNED=' .env || { echo "QR_MAX_UNSCANNED=0" >> .env; echo ">> added QR_MAX_UNSCANNED=0 to .env (the demo keeps offering QR codes)"; }
	@scripts/ensure-services.sh
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py demo_setup
	PATH="$(CURDIR)/$(BIN):$$PATH" exec $(BIN)/honcho start --port $(PORT)

test: setup
	@scripts/ensure-system.sh --test
	@$(MAKE) --no-print-directory $(NODE_STAMP)
	@REDIS_URL=$(TEST_REDIS_URL) scripts/ensure-services.sh --postgres
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal

bench: setup system
	@REDIS_URL=$(TEST_REDIS_URL) scripts/ensure-services.sh --postgres
	@for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script; done

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache .import_linter_cache
