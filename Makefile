# Two commands on a fresh machine: `make serve` and `make test`. Both set up .venv first; `make
# test` also installs the system packages the tests need (tools/test-packages) and runs the whole
# suite, the PostgreSQL tests on a throwaway server of their own included (tests/pg.py).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test test-packages test-postgres postgres-tests suite-on-postgres lint check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/beliefgap serve

test: $(STAMP) test-packages
	$(BIN)/python -m tests.pg run -- $(BIN)/pytest

test-packages:
	@tools/test-packages

# PostgreSQL: a throwaway server of its own (tests/pg.py; or the one BELIEFGAP_TEST_POSTGRES_URL
# names), the tests marked `postgres`, then the suite again with every test's app on a fresh
# PostgreSQL database. That run leaves out what only SQLite has: its write lock, held from outside
# by three vote-writer tests, and a data directory that is the whole database (the command-line
# export test finds the database through it).
SQLITE_ONLY := \
	--deselect tests/test_vote_writer.py::test_close_writes_every_queued_vote_then_refuses_new_ones \
	--deselect tests/test_vote_writer.py::test_close_that_times_out_refuses_what_the_thread_has_not_taken \
	--deselect tests/test_vote_writer.py::test_a_client_that_leaves_does_not_trouble_the_writer \
	--deselect tests/test_export.py::test_the_command_line_exports_sessions_and_talks

test-postgres: $(STAMP) test-packages
	$(BIN)/python -m tests.pg run -- $(MAKE) --no-print-directory postgres-tests suite-on-postgres

postgres-tests: $(STAMP)
	$(BIN)/pytest -m postgres

suite-on-postgres: $(STAMP)
	BELIEFGAP_TEST_DATABASE=postgres $(BIN)/pytest -m "not e2e and not postgres" $(SQLITE_ONLY)

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
