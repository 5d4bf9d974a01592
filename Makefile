# The two commands a newcomer types (README): `make serve` and `make test`.
# Both create the virtual environment in .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: serve test test-fast lint venv

$(BIN)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed

serve: venv
	$(BIN)/python manage.py serve $(ARGS)

test: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --no-incremental
	$(BIN)/python manage.py makemigrations --check --dry-run >/dev/null
	$(BIN)/pytest $(PYTEST_ARGS)

# The edit-test loop: everything but the suites bound to slow tools (browser, Airflow, Docker,
# js-ipfs, WASM toolchains, schemathesis). `make test` stays the whole suite.
FAST_SKIP := --ignore=tests/e2e --ignore=tests/airflow \
	--ignore=tests/executor/test_docker_engine.py --ignore=tests/executor/test_kubo.py \
	--ignore=tests/executor/test_wasm_build.py --ignore=tests/dashboard/test_schemathesis.py

test-fast: venv
	$(BIN)/ruff check .
	$(BIN)/pytest -q $(FAST_SKIP) $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
