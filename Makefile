# The few verbs a newcomer needs. `make run` and `make test` work on a fresh clone.
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
SAMPLE := data/sample_sales.csv

.PHONY: install lock browser java postgres run train test lint sample bench clean

# Installs exactly the versions in requirements.lock (every dependency, pinned), then the project.
$(BIN)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e '.[dev]'
	touch $@

install: $(BIN)/.installed

lock:  ## re-resolve pyproject.toml's dependencies (dev extra included) into requirements.lock
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install -q --upgrade pip
	.lock-venv/bin/python -m pip install -q -e '.[dev]'
	.lock-venv/bin/python -m pip freeze --exclude-editable > requirements.lock
	rm -rf .lock-venv

train: install  ## train on the committed sample unless a champion is registered
	$(BIN)/valuation train --data $(SAMPLE) --if-no-champion

run: train  ## set up, train when needed, serve the API and the quote page on 127.0.0.1:8000
	$(BIN)/valuation record upgrade
	$(BIN)/valuation serve --host 127.0.0.1 --port 8000

browser:  ## Debian's chromium, for the quote page's browser tests
	@command -v chromium >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

java:  ## a Java runtime, for the Spark interop test (Debian's default-jre-headless)
	@command -v java >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null; }

postgres:  ## the machine's PostgreSQL, which the quote record's tests use: started when it is down
	@pg_isready -q -h 127.0.0.1 -p 5432 || \
		pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start

test: lint browser java postgres
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

sample: install  ## rewrite the committed simulated sample
	$(BIN)/valuation generate --rows 3000 --seed 2026 --out $(SAMPLE)

bench: install  ## accuracy and serving benchmarks (serving needs wrk: apt-get install wrk)
	$(BIN)/python benchmarks/accuracy.py
	$(BIN)/python benchmarks/serving.py

clean:
	rm -rf $(VENV) mlflow.db records.db* mlartifacts models/*-v*
