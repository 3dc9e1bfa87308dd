# Each target installs what it needs: a fresh clone runs `make repro` or `make test` directly.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# DVC stages call `python`; put the project's environment first on PATH.
RUN := PATH="$(CURDIR)/$(BIN):$$PATH"

.PHONY: setup repro test bench report docs

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

repro: setup
	$(RUN) dvc repro

test: setup
	$(RUN) python -m pytest

bench: setup
	$(RUN) python bench/run.py

# One self-contained page of metrics, charts and audio samples, readable offline (dvc plots show needs a CDN).
report: setup
	$(RUN) python scripts/report.py

# The README's headline table, docs/results.md's tables and docs/params.md, from the committed metrics and params.py.
docs: setup
	$(RUN) python scripts/update_docs.py
