# Two entry points for a newcomer: `make demo` runs the product, `make test` runs every test.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin

.PHONY: setup demo test lint

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/install-system-deps
	./scripts/install-system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e ".[test]"
	# The IVR prompts are rendered now so the first call does not wait for espeak-ng.
	$(BIN)/dialer prompts build
	touch $@

demo: setup
	$(BIN)/dialer serve --demo

test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check .
