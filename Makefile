# The few verbs a newcomer needs. `make run` and `make test` work on a fresh clone.
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
SAMPLE := data/sample_sales.csv

.PHONY: install run train test lint sample clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/.installed

train: install  ## train on the committed sample unless a champion is registered
	$(BIN)/valuation train --data $(SAMPLE) --if-no-champion

run: train  ## set up, train when needed, quote the example listing
	$(BIN)/valuation quote --fans 13.13W --violations 有违规 --live-permission 未开通 --verified 已认证 --category 自媒体

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

sample: install  ## rewrite the committed simulated sample
	$(BIN)/valuation generate --rows 3000 --seed 2026 --out $(SAMPLE)

clean:
	rm -rf $(VENV) mlflow.db mlartifacts models/*-v*
