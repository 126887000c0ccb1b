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

# Runs both suites and fails if either fails, so one failure never hides the other's results.
test: install-dev
	@status=0; $(MAKE) --no-print-directory test-nbs || status=1; $(MAKE) --no-print-directory test-py || status=1; exit $$status

# One process per notebook, two at a time: running a chapter patches methods onto `KAN`,
# so a worker shared between notebooks would carry one chapter's definitions into the next.
test-nbs:
	ls nbs/*.ipynb | xargs -P 2 -n 1 nbdev-test

test-py:
	$(PYTHON) -m pytest -q

# Open the book in JupyterLab, with nbs/ as the file browser's root. JupyterLab refuses to
# start as root without --allow-root, so that flag is added for root only.
lab: install-dev
	jupyter lab --notebook-dir=nbs $$([ "$$(id -u)" = 0 ] && echo --allow-root) $(LAB_ARGS)

# Build the site into _docs/: nbdev-docs where quarto is on PATH, otherwise Sphinx over
# nbdev's processed notebooks (docs/build_docs.py says why). The first build installs
# MathJax with npm into ~/.cache/kan_nb; later builds need no network.
docs: install-dev
	$(PYTHON) docs/build_docs.py

# Regenerate the package and README from the notebooks after editing them.
export: install-dev
	nbdev-export
	nbdev-clean
	$(PYTHON) .ci/make_readme.py

readme:
	$(PYTHON) .ci/make_readme.py

# Time kan_nb against pykan 0.2.8 and an efficient-kan-style torch layer, on one thread each.
# pykan and torch are optional (pip install pykan==0.2.8 torch==2.13.0 scikit-learn pandas pyyaml tqdm);
# without them only kan_nb is timed.
# Results are also written to bench/results/ (git-ignored); bench/README.md records past runs.
bench: install
	$(PYTHON) bench/hellokan.py --json bench/results/hellokan.json
	$(PYTHON) bench/step.py --json bench/results/step.json
