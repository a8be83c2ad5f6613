# The two set-up commands of the README: `make demo` and `make test`. Both bootstrap uv and the venv themselves.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv
RUN := $(VENV)/bin

.PHONY: demo test lint types pytest bench clean stack stack-stop

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

demo: $(VENV)/.synced
	$(RUN)/waterhub demo

test: lint types pytest

lint: $(VENV)/.synced
	$(RUN)/ruff check .
	$(RUN)/ruff format --check .

types: $(VENV)/.synced
	$(RUN)/mypy

pytest: $(VENV)/.synced
	$(RUN)/pytest

bench: $(VENV)/.synced
	$(RUN)/python benchmarks/bench_quality.py
	$(RUN)/python benchmarks/bench_publish.py
	$(RUN)/python benchmarks/bench_gateway.py
	$(RUN)/python benchmarks/bench_memory.py
	$(RUN)/python benchmarks/bench_sync.py
	$(RUN)/python benchmarks/bench_api.py
	$(RUN)/python benchmarks/bench_webhooks.py
	$(RUN)/python benchmarks/bench_sharing.py
	$(RUN)/python benchmarks/bench_stack.py

# Not a set-up command: the production-like stack on this machine (see "The production-like stack" in the README).
stack: $(VENV)/.synced
	$(RUN)/waterhub stack up

stack-stop: $(VENV)/.synced
	$(RUN)/waterhub stack down

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
