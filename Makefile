# The two commands of the README: `make demo` and `make test`.
# Everything installs from requirements.lock (exact versions, hashes checked),
# so a fresh machine gets what the tests ran with. `make lock` upgrades it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint serve install lock bench docs clean

$(BIN)/patrol-sync: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@

install: $(BIN)/patrol-sync

# the scenario, then its server stays up with the console open (Ctrl-C to stop)
demo: install
	$(BIN)/patrol-sync demo --serve

serve: install
	$(BIN)/patrol-sync serve

lint: install
	$(BIN)/ruff check schemas sync_server client_sdk patrol_demo tests bench
	$(BIN)/mypy

# Two pytest workers where pytest-xdist is installed (the dev extra): tests/conftest.py
# keeps each test file on one worker and the heavy ones (crash, load, fuzzing, links) on
# one worker, one after another. `make test PYTEST_WORKERS=0` runs in one process.
PYTEST_WORKERS ?= 2

test: lint
	$(BIN)/python -m pytest $(shell $(BIN)/python -c "import xdist" 2>/dev/null && echo "-n $(PYTEST_WORKERS) --dist loadgroup")

# Re-resolve every dependency to its newest allowed version (needs uv, installed
# into a scratch venv), then run `make test` before committing the new lock.
lock:
	$(PYTHON) -m venv .lockvenv && .lockvenv/bin/pip install --quiet uv
	.lockvenv/bin/uv pip compile pyproject.toml --extra dev --extra postgres \
	    --python-version 3.11 --universal --generate-hashes --upgrade -o requirements.lock
	rm -rf .lockvenv

# The SDK's API reference, from its docstrings, into docs/api/ (not committed; see
# docs/GETTING_STARTED.md for the page to start from).
docs: install
	$(BIN)/python -m pdoc --docformat markdown -o docs/api client_sdk client_sdk.errors client_sdk.types client_sdk.ids schemas

bench: install
	$(BIN)/python bench/push_pull.py

clean:
	rm -rf $(VENV) build dist *.egg-info
