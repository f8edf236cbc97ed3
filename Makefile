# Two commands do all the set-up: `make run` (train the tutorial network) and `make test`.
# Each creates .venv on first use. TORCH_SPEC is installed first: the pinned CPU wheel our machines
# keep on disk. Elsewhere, `make run TORCH_SPEC=` lets pip pick your platform's build (torch>=2.3).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: run test lint bench clean

$(BIN)/mlplab: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(if $(TORCH_SPEC),$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)")
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

run: $(BIN)/mlplab
	$(BIN)/mlplab train

test: $(BIN)/mlplab
	$(BIN)/python -m pytest

lint: $(BIN)/mlplab
	$(BIN)/ruff check src tests benchmarks

bench: $(BIN)/mlplab
	$(BIN)/mlplab bench --out bench-results/results.json

clean:
	rm -rf $(VENV) runs .pytest_cache
