# The two commands a newcomer needs: `make run` and `make test`.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: run test install test-unit test-integration lint bench clean kafka-jars

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

kafka-jars: $(STAMP)
	$(BIN)/python -c "from onewindow.config import get_settings as g; from onewindow.kafka_local import ensure_jars as e; s=g(); print(e(s.kafka_version, s.cache_dir))"

## The whole local stack on the embedded default, with simulated department traffic.
run: $(STAMP)
	$(BIN)/onewindow up --simulate

## Everything CI runs: lint, import contracts, unit and integration tests on a real broker.
test: $(STAMP) lint
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

test-integration: $(STAMP)
	$(BIN)/python -m pytest -q tests/integration

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/onewindow bench

clean:
	rm -rf var .pytest_cache .ruff_cache
