# Two commands do all the set-up: `make demo` and `make test` both create .venv and install
# everything into it first (torch>=2.14 from PyPI; the CPU-only 2.13 wheel breaks torchvision).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean lock

install: $(STAMP)

# constraints.txt pins the whole dependency set: the same versions here, in CI and in the image.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# After a change to pyproject.toml's dependencies: install unpinned, then pin what resolved.
lock:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade -e '.[dev]'
	{ sed -n '/^#/p' constraints.txt; \
	  $(BIN)/pip freeze --exclude-editable | grep -v '^nonbinary'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

# The quickstart sweep end to end (analysis, search, final runs, report). Run again, it
# resumes the sweep in runs/quickstart (a finished one is only re-reported, nothing re-runs);
# `rm -rf runs/quickstart` starts over.
demo: $(STAMP)
	@if [ -f runs/quickstart/search/tuner.pkl ]; then resume=--resume; fi; \
	$(BIN)/nbft sweep sweeps/quickstart.yaml $$resume

lint: $(STAMP)
	$(BIN)/ruff check nonbinary_ft tests benchmarks

test: lint browser
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m benchmarks.throughput

clean:
	rm -rf $(VENV) runs .nbft-cache .pytest_cache

# Headless Chromium for tests/reporting/test_report_browser.py (required when CI is set).
# Debian's package, installed only when /usr/bin/chromium is missing; sudo unless root.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: browser
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		$(SUDO) apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	else \
		echo "chromium already installed: /usr/bin/chromium"; \
	fi
