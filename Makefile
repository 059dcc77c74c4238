# Two commands do all set-up on a fresh machine (Python >= 3.11 and make):
#   make run    simulate the default mouse IV bolus, write out/sim.csv and out/sim.png
#   make test   run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint docs bench bench-analysis calibrate examples clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,sbml,distributed]"
	touch $(STAMP)

DOCS_STAMP := $(VENV)/.docs-installed-stamp

$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test,sbml,distributed,docs]"
	touch $(DOCS_STAMP)

run: $(STAMP)
	$(BIN)/exopk simulate --species mouse --route iv_bolus --dose 1e10 --t-end 48 --dt 0.01 --out out/sim.csv --plot out/sim.png

test: $(STAMP)
	PYTHONUTF8=1 $(BIN)/python -m pytest -n 2 --dist loadfile   # both cores; one worker per test file

# Types and lint, as CI runs them.
lint: $(STAMP)
	$(BIN)/python -m mypy src/exopk
	$(BIN)/ruff check src tests examples benchmarks calibration validation docs

# Documentation site (Sphinx): runs every example, generates the diagram, parameter tables and API page.
docs: $(DOCS_STAMP)
	MPLBACKEND=Agg $(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html
	@echo "docs: docs/_build/html/index.html"

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

bench-analysis: $(STAMP)
	$(BIN)/python benchmarks/bench_analysis.py

calibrate: $(STAMP)
	$(BIN)/python calibration/calibrate.py
	$(BIN)/python calibration/calibrate_intranasal.py

examples: $(STAMP)
	for f in examples/*.py; do MPLBACKEND=Agg $(BIN)/python $$f out/$$(basename $$f .py).png || exit 1; done

clean:
	rm -rf $(VENV) out build dist docs/_build docs/_generated
