# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip

.PHONY: demo test lint loc clean bench

# The venv is refreshed whenever pyproject.toml changes.
$(VENV)/.stamp-%: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e ".[$*]"
	@touch $@

demo: $(VENV)/.stamp-test,demo
	$(PY) examples/demo.py

test: $(VENV)/.stamp-test
	$(PY) -m pytest -n 2 tests

lint: $(VENV)/.stamp-lint
	$(VENV)/bin/ruff check tracejit tests benchmarks examples

# The benchmark suite (W1-W8, tracejit beside its peers); `make bench BENCH_ARGS=--quick`.
# Installs the peers extra first (numba, jax, torch==2.13.0 CPU, tensorflow, matplotlib).
bench: $(VENV)/.stamp-peers
	$(VENV)/bin/tracejit bench $(BENCH_ARGS)

loc:
	@find tracejit -name '*.py' | xargs wc -l | sort -n | tail -25

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

# The differential fuzzer (docs/testing.md): N random programs compiled for the CPU and
# compared with the reference interpreter in parallel workers, each program under a
# deadline; a progress line, then a summary; fails on any mismatch, error, crash or hang.
# `make fuzz N=100000 SEED=7 WORKERS=2`; rerun one: python -m tests.fuzz repro --seed S --index I
.PHONY: fuzz
N       ?= 10000
SEED    ?= 1
WORKERS ?= $(shell nproc)
fuzz: $(VENV)/.stamp-test
	$(PY) -m tests.fuzz run -n $(N) --seed $(SEED) --workers $(WORKERS)
