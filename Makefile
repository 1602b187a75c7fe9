# Two commands on a fresh machine: `make serve` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/beliefgap serve

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	@tmp=$$(mktemp -d) && \
	  BELIEFGAP_DATABASE_URL=sqlite:///$$tmp/check.db $(BIN)/alembic upgrade head && \
	  BELIEFGAP_DATABASE_URL=sqlite:///$$tmp/check.db $(BIN)/alembic check; \
	  status=$$?; rm -rf $$tmp; exit $$status

check: lint test

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
