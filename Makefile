# perago's task runner. `make help` lists the targets; the README's two commands are
# `make demo` and `make test`.

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
export PYO3_PYTHON := $(abspath $(PY))
export PIP_CONSTRAINT := $(abspath constraints.txt)

.DEFAULT_GOAL := help
.PHONY: help dev demo test test-rust test-python bench wheel clean peers

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip 'maturin>=1.7,<2'

dev: $(PY) ## build the Rust core (optimised, incremental) into .venv with the test extras
	$(VENV)/bin/maturin develop --release --quiet --extras test

demo: dev ## run perago's main job on the embedded emulators
	$(VENV)/bin/perago demo

test: dev peers test-rust test-python ## build, then run every Rust and Python test

test-rust: $(PY) ## cargo test for the Rust core
	cargo test --quiet

test-python: ## pytest for everything (needs `make dev` first)
	$(PY) -m pytest

PEER_PERAGO061 := .peers/perago061/bin/perago

peers: $(PEER_PERAGO061) ## cached venvs of the peers tests run against (upstream perago 0.6.1)

$(PEER_PERAGO061):
	$(PYTHON) -m venv .peers/perago061
	.peers/perago061/bin/pip install --quiet perago==0.6.1

bench: dev ## run the benchmarks in benches/ (slow; prints ratios against peers)
	@for bench in benches/*.py; do echo "== $$bench"; $(PY) $$bench || exit 1; done

wheel: $(PY) ## build a release wheel into dist/
	$(VENV)/bin/maturin build --release --out dist

clean: ## remove build outputs and the virtual environment
	rm -rf target dist $(VENV) python/perago/_core*.so
