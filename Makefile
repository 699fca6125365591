# Quick start: `make serve` runs the service, `make test` runs the suite. Both set up .venv first.
PYTHON ?= python3
PORT ?= 8000
VENV ?= .venv
BIN := $(VENV)/bin
SHARED_DATA := $(abspath ../shared/datasets)
# The real data sets beside the checkout, when present; otherwise Keras's cache or download.
ifneq ($(wildcard $(SHARED_DATA)/mnist.npz),)
export MNISTLAB_DATA_DIR ?= $(SHARED_DATA)
endif

.PHONY: install serve test lint bench
install: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

serve: install
	$(BIN)/mnistlab serve --port $(PORT)

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
