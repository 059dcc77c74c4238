# Two commands do all set-up on a fresh machine (Python >= 3.11 and make):
#   make run    simulate the default mouse IV bolus, write out/sim.csv and out/sim.png
#   make test   run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test bench bench-analysis calibrate examples clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,distributed]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/exopk simulate --species mouse --route iv_bolus --dose 1e10 --t-end 48 --dt 0.01 --out out/sim.csv --plot out/sim.png

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_core.py
	$(BIN)/python benchmarks/bench_analysis.py

bench-analysis: $(STAMP)
	$(BIN)/python benchmarks/bench_analysis.py

calibrate: $(STAMP)
	$(BIN)/python calibration/calibrate_mouse_iv.py

examples: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python examples/01_iv_bolus_organ_curves.py
	MPLBACKEND=Agg $(BIN)/python examples/06_population_and_sensitivity.py

clean:
	rm -rf $(VENV) out build dist
