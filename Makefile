# lotline: the verbs. Every one installs the project into .venv first when needed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install up demo test lint bench docs

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e ".[dev]"
	touch $(INSTALLED)

install:
	rm -f $(INSTALLED)
	$(MAKE) $(INSTALLED)

up: $(INSTALLED)
	$(BIN)/lotline up

demo: $(INSTALLED)
	$(BIN)/lotline demo

test: $(INSTALLED)
	$(BIN)/python -m pytest -q

lint: $(INSTALLED)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

bench: $(INSTALLED)
	$(BIN)/lotline bench

docs: $(INSTALLED)
	$(BIN)/lotline asyncapi docs/asyncapi.json
