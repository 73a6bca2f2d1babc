# RouteMate: the verbs. Every target installs what it needs first (Python deps in .venv,
# Redis and nginx from Debian, Kafka from Maven Central), so each works on a fresh machine.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run up down status test test-unit bench clean

install: $(STAMP)
	@bash deploy/local/install-system.sh
	@bash deploy/kafka/kafka.sh fetch
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

test: install         ## the whole suite: unit, component, and end-to-end over the real stack
	@bash deploy/local/test.sh

test-unit: install    ## only the fast tests beside each service
	$(PY) -m pytest -q services shared

bench: install        ## benchmarks, each printing a table against its named reference
	@bash bench/run.sh

clean: down
	rm -rf var
