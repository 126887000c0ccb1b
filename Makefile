# Every target installs what it needs into the active Python first, so a fresh
# clone needs no other step. Use a virtual environment if you prefer:
#   python3 -m venv .venv && . .venv/bin/activate && make test
PYTHON ?= python3
PIP = $(PYTHON) -m pip install --quiet --disable-pip-version-check
OUT ?= kan_nb_output

.PHONY: install install-dev demo test test-nbs test-py lab docs bench export readme

install:
	$(PIP) -e .

install-dev:
	$(PIP) -e ".[dev]"

demo: install
	$(PYTHON) -m kan_nb demo --out $(OUT)

test: install-dev test-nbs test-py

test-nbs:
	nbdev-test --n_workers 2

test-py:
	$(PYTHON) -m pytest -q

lab: install-dev
	jupyter lab nbs

# Regenerate the package and README from the notebooks after editing them.
export: install-dev
	nbdev-export
	nbdev-clean
	$(PYTHON) .ci/make_readme.py

readme:
	$(PYTHON) .ci/make_readme.py
