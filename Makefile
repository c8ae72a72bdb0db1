# The two commands of the quickstart: `make demo` and `make test`.
# Each creates .venv when missing and installs hlg into it first.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hlg-installed

.PHONY: demo test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV) || { $(PYTHON) -m pip install --user virtualenv && $(PYTHON) -m virtualenv $(VENV); }

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,progress,distributed]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m hlg demo

test: $(STAMP)
	$(PY) -m pytest -q
	$(PY) -m pytest -q --doctest-modules hlg
	$(PY) -m ruff check hlg tests examples benchmarks
	$(PY) -m ruff format --check hlg tests examples benchmarks
	$(PY) -m mypy --strict hlg

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench,distributed]'
	$(PY) benchmarks/bench_packing.py
	$(PY) benchmarks/bench_blockwise.py
	$(PY) benchmarks/bench_order.py
	$(PY) benchmarks/bench_scheduler.py
	$(PY) benchmarks/bench_distributed.py
	$(PY) benchmarks/bench_shuffle.py
	$(PY) benchmarks/bench_dask_collections.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
