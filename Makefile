# The two commands of the README. Both install everything they need into .venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: up test install system-deps

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# System packages: Chromium for the browser tests, its emoji font (the status icons), poppler for PDF
# checks, a CJK fallback font for names in PDF reports, and faketime for the clock-skew race test.
# Needs root (CI runs as root).
SYSTEM_PACKAGES := chromium fonts-noto-color-emoji poppler-utils fonts-droid-fallback faketime
system-deps:
	@if ! dpkg -s $(SYSTEM_PACKAGES) >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	  else \
	    echo "Please install: sudo apt-get install $(SYSTEM_PACKAGES)"; exit 1; \
	  fi; \
	fi

## Install everything and start the web app with its worker (demo data made on first run).
up: install
	$(VENV)/bin/exporthub up

## Install everything, check types (mypy --strict) and lint (ruff), then run the whole test suite.
test: install system-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest
