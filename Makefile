# RouteMate: the verbs. Every target installs what it needs first (Python deps in .venv,
# Redis and nginx from Debian, Kafka from Maven Central), so each works on a fresh machine.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run up down status test test-unit test-e2e lint format bench clean

install: $(STAMP)
	@bash deploy/local/install-system.sh
	@bash deploy/kafka/kafka.sh fetch
	@bash deploy/docs/install.sh      # Swagger UI for /docs, from npm (package-lock.json)
	@cd clients/typescript && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --ignore-scripts --no-audit --no-fund --loglevel=error; } && npm run -s build
	@$(PY) -m services.optimizer.ils   # compile the optimizer's local search once (cached by numba)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[all,dev]'
	@touch $@

run: install          ## start everything, import the example job, stay up until Ctrl-C
	@bash deploy/local/run.sh

up: install           ## start (or repair) the platform in the background; returns when healthy
	@bash deploy/local/platform.sh up

down:                 ## stop everything `up` started
	@bash deploy/local/platform.sh down

status:
	@bash deploy/local/platform.sh status

test: install         ## the whole suite: lint, then unit + component offline, then end-to-end over the real stack
	@$(MAKE) --no-print-directory lint
	@bash deploy/local/test.sh

test-unit: install    ## unit + component tests, in-process, with no network at all (a fresh network namespace)
	@bash deploy/local/offline.sh $(PY) -m pytest -q -p no:cacheprovider -m "not e2e" services shared tests

test-e2e: install     ## only the tests over the real stack (starts it)
	@E2E_ONLY=1 bash deploy/local/test.sh

lint: install         ## ruff: pyflakes, pycodestyle, import order, bugbear, pyupgrade; and the formatter's check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install       ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install        ## benchmarks, each printing a table against its named reference
	@bash bench/run.sh

clean: down
	rm -rf var
