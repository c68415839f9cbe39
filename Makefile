# The two commands of the README: `make run` (the main job) and `make test` (the whole suite).
# Both create the virtual environment in .venv on first use and install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.grimsim-deps

.PHONY: run test install lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# build backend in the venv, so rebuilds of the C++ extension are incremental
	$(BIN)/python -m pip install --quiet "scikit-build-core>=0.10" "pybind11>=2.13"
	$(BIN)/python -m pip install --quiet --no-build-isolation -e ".[test]"
	touch $(STAMP)

install: $(STAMP)
	# re-run the (incremental) C++ build so kernel changes are always picked up
	flock $(VENV)/.build-lock $(BIN)/python -m pip install --quiet --no-build-isolation --no-deps -e .
	# plotly.js's smaller cartesian bundle (npm) for a faster first explorer page; optional
	$(BIN)/python -m grimsim.explorer.plotly_bundle --optional

run: install
	$(BIN)/grimsim explore

lint: install
	$(BIN)/ruff check grimsim tests benchmarks scripts dashboards
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf build $(VENV)
