# Two commands on a fresh machine: `make serve` and `make test`. Both set up .venv first; `make
# test` first installs the system packages and the npm package the tests need
# (tools/test-packages: apt-get as root, npm install into tests/e2e), then runs the whole suite,
# the PostgreSQL tests on a throwaway server of their own included (tests/pg.py). `make fuzz`:
# schemathesis over the real API (tools/fuzz_api.py), as CI runs it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv serve test fuzz test-packages test-postgres postgres-tests suite-on-postgres lint check clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	# the Citation File Format schema the package test checks CITATION.cff against; cffconvert
	# pins jsonschema < 4, which frictionless cannot use, so only its files come (no deps)
	$(BIN)/pip install --quiet --no-deps cffconvert==2.0.0
	touch $(STAMP)

# The environment alone (CI makes it first, then runs the stages that use it side by side).
venv: $(STAMP)

serve: $(STAMP)
	$(BIN)/beliefgap serve

# The tests run in TEST_WORKERS processes (pytest-xdist; 2, the CI machine's cores): the tests
# of a module that share a module-scoped fixture (a server, a browser) stay on one of them.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup --durations=15
# The suite again on PostgreSQL waits mostly on the database server (no browser, no timing
# test): one more process than cores keeps both busy.
PG_WORKERS ?= 3

# The packages first: python3-venv may be among them.
test: test-packages $(STAMP)
	$(BIN)/python -m tests.pg run -- $(PYTEST)

fuzz: $(STAMP)
	$(BIN)/python tools/fuzz_api.py

test-packages:
	@tools/test-packages

# PostgreSQL: a throwaway server of its own (tests/pg.py; or the one BELIEFGAP_TEST_POSTGRES_URL
# names), the tests marked `postgres`, then again every test whose app stands on a database (the
# `settings` fixture; tests/conftest.py leaves out the rest, which ran the same on SQLite), each
# on a copy of a migrated PostgreSQL database. That run also leaves out what only SQLite has: its write lock, held from outside
# by three vote-writer tests, and a data directory that is the whole database (the command-line
# export test finds the database through it).
SQLITE_ONLY := \
	--deselect tests/test_vote_writer.py::test_close_writes_every_queued_vote_then_refuses_new_ones \
	--deselect tests/test_vote_writer.py::test_close_that_times_out_refuses_what_the_thread_has_not_taken \
	--deselect tests/test_vote_writer.py::test_a_client_that_leaves_does_not_trouble_the_writer \
	--deselect tests/test_export.py::test_the_command_line_exports_sessions_and_talks

test-postgres: test-packages $(STAMP)
	$(BIN)/python -m tests.pg run -- $(MAKE) --no-print-directory postgres-tests suite-on-postgres

postgres-tests: $(STAMP)
	$(PYTEST) -m postgres

suite-on-postgres: $(STAMP)
	BELIEFGAP_TEST_DATABASE=postgres $(PYTEST) -n $(PG_WORKERS) -m "not e2e and not postgres" \
		$(SQLITE_ONLY)

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
