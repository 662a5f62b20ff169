# Every target creates or reuses the local virtual environment, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv demo test check lint typecheck bench bench-scale schemas clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,demo]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/catalogue demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check catalogue harvesters examples tests bench
	$(BIN)/ruff format --check catalogue harvesters examples tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

bench: $(STAMP)
	$(BIN)/python bench/feasibility.py
	$(BIN)/python bench/federation.py
	$(BIN)/python bench/load.py
	$(BIN)/python bench/dicom_harvest.py
	$(BIN)/python bench/harvest.py
	$(BIN)/python bench/search.py

# 10x the IDC data (about 10M series) on the embedded backends and on Elasticsearch
bench-scale: $(STAMP)
	$(BIN)/python bench/scale.py --factor 10 --es-heap 4g

schemas: $(STAMP)
	$(BIN)/catalogue schemas --out schemas

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
