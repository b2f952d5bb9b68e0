# Two commands do all the set-up: `make demo` and `make test` both create .venv and install
# everything into it first (torch>=2.14 from PyPI; the CPU-only 2.13 wheel breaks torchvision).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/nbft finetune sweeps/quickstart.yaml --out runs/quickstart

lint: $(STAMP)
	$(BIN)/ruff check nonbinary_ft tests benchmarks

test: lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m benchmarks.throughput

clean:
	rm -rf $(VENV) runs .nbft-cache .pytest_cache
