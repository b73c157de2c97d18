# The two commands a newcomer needs: `make run` and `make test`.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: run test install test-unit test-integration test-e2e test-cluster lint bench clean \
	kafka-jars keycloak deps-run deps-test vendor-echarts

# Debian packages (Java, Maven; for the tests PostgreSQL, kcat, Prometheus, Chromium),
# installed when missing (as root; otherwise it names the apt-get command).
deps-run:
	@bash ops/install-system-deps.sh run

deps-test:
	@bash ops/install-system-deps.sh test

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

kafka-jars: $(STAMP)
	$(BIN)/python -c "from onewindow.config import get_settings as g; from onewindow.kafka_local import ensure_jars as e; s=g(); print(e(s.kafka_version, s.cache_dir))"

# Keycloak for the OpenID Connect tests (tests/keycloak_support.py): fetched with Maven,
# unpacked and warmed up once into the same per-user cache, before any test times it.
keycloak: deps-test $(STAMP)
	$(BIN)/python -m tests.keycloak_support fetch

## The whole local stack on the embedded default, with simulated department traffic.
run: deps-run $(STAMP)
	$(BIN)/onewindow up --simulate

## Everything CI runs: lint, import contracts, unit and integration tests on a real broker.
## Two pytest-xdist workers, a test module each at a time (each worker starts its own
## broker, PostgreSQL and Keycloak when a test asks): most integration tests wait on
## processes, so two share the 2-core machines well (docs/testing.md). The three-node
## cluster tests and the failure drills (docs/operations.md, "Failure drills") are part of
## it.
TEST_WORKERS ?= 2
test: deps-test $(STAMP) lint keycloak
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile tests

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

test-integration: deps-test $(STAMP) keycloak
	$(BIN)/python -m pytest -q tests/integration

test-e2e: deps-test $(STAMP) keycloak
	$(BIN)/python -m pytest -q tests/e2e

## The tests on three brokers alone (marker `cluster`; also part of `make test`): the
## local KRaft cluster from the jars, docker-compose.cluster.yml's nodes and the failure
## drills (docs/operations.md). `CLUSTER_TESTS=cluster_drill`: the drills only.
CLUSTER_TESTS ?= cluster
test-cluster: deps-test $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "$(CLUSTER_TESTS)" tests

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

## Apache ECharts for the supervisor view (counter/static/vendor/echarts/): the pinned
## version from the npm registry, refused unless its SHA-512 is the pinned integrity
## (ops/vendor_echarts.py; the files are committed, so only to move the pin).
vendor-echarts:
	$(PY) ops/vendor_echarts.py

bench: $(STAMP)
	$(BIN)/onewindow bench

clean:
	rm -rf var .pytest_cache .ruff_cache
