# Each target installs what it needs: a fresh clone runs `make repro` or `make test` directly.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# DVC stages call `python`; put the project's environment first on PATH.
RUN := PATH="$(CURDIR)/$(BIN):$$PATH"

LOCK := requirements.lock
# No index URL or find-links in the lock: those come from the machine that ran `make lock` (its pip config).
LOCK_FLAGS := --generate-hashes --allow-unsafe --extra test --strip-extras --no-emit-index-url --no-emit-find-links
# The lock pins torch's CPU build (+cpu), which is not on PyPI but on PyTorch's own wheel index.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_CPU := torch==$(shell sed -n 's/^ *"torch==\([^"]*\)".*/\1/p' pyproject.toml)+cpu
# The torch index only where pip's own configuration (a local mirror, find-links) cannot find that build: pip
# asks every index for every package and retries an unreachable one for ~8 s each, some 20 minutes for the lock.
# The probe resolves torch alone, without installing it; $(1) is the python whose pip asks.
torch_index = $$($(1) -m pip install --quiet --dry-run --no-deps "$(TORCH_CPU)" >/dev/null 2>&1 \
	|| echo --extra-index-url $(TORCH_INDEX))
# pip-tools gets a venv of its own so its dependencies never mix with the project's; this release
# supports the pip that $(PYTHON)'s venv ships (23.2), the same pip that `make setup` installs with.
LOCK_VENV := .venv-lock
PIP_TOOLS := pip-tools==7.4.1

.PHONY: setup lock repro test test-quick check bench report docs docs-check

setup: $(STAMP)

# The project goes in without dependencies: everything it needs comes from the lock, hash-checked.
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes $(call torch_index,$(BIN)/python) -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@echo "compiling librosa's numba kernels into the environment's cache (once; the first stage would wait for it)"
	$(BIN)/python -c "import librosa; librosa.resample(librosa.tone(440, sr=8000, length=800), orig_sr=8000, target_sr=16000)"
	touch $@

# Run after changing pyproject.toml's dependencies; pins already in the lock are kept where they still fit.
lock:
	test -x $(LOCK_VENV)/bin/python || $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet $(PIP_TOOLS)
	CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile $(LOCK_FLAGS) \
		$(call torch_index,$(LOCK_VENV)/bin/python) -o $(LOCK) pyproject.toml

repro: setup
	$(RUN) dvc repro

# The whole suite, one worker per core (pytest-xdist), handed out a test at a time so the long pipeline tests
# (collected first, tests/conftest.py) spread over the workers; the tiny DVC pipeline that most of
# tests/test_pipeline.py starts from is built once and copied.
test: setup
	$(RUN) python -m pytest -n auto --maxschedchunk 1

# Everything but the DVC pipeline runs: the quick loop while editing. CI runs `make test`.
test-quick: setup
	$(RUN) python -m pytest -n auto --maxschedchunk 1 --ignore=tests/test_pipeline.py

bench: setup
	$(RUN) python bench/run.py

# One self-contained page of metrics, charts and audio samples, readable offline (dvc plots show needs a CDN).
report: setup
	$(RUN) python scripts/report.py

# The README's headline table, docs/results.md's tables and docs/params.md, from the workspace's metrics files
# (after `make repro`) and params.py.
docs: setup
	$(RUN) python scripts/update_docs.py

# Writes nothing: names each generated doc that differs from the workspace's metrics and params (exit 1), such as
# after `make repro` on another CPU; `make docs` rewrites them. `make test` checks the committed docs against the
# committed metrics instead.
docs-check: setup
	$(RUN) python scripts/update_docs.py --check

# After `make repro` on any machine: the fresh metrics against the committed ones, within the tolerances of
# scripts/check_reproduction.py (docs/reproducibility.md).
check: repro
	$(RUN) python scripts/check_reproduction.py
