# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test serve install bench clean

$(BIN)/patrol-sync: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/patrol-sync

demo: install
	$(BIN)/patrol-sync demo

serve: install
	$(BIN)/patrol-sync serve

test: install
	$(BIN)/mypy
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/push_pull.py

clean:
	rm -rf $(VENV) build dist *.egg-info
