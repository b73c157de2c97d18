"""Schemathesis over the gateway's OpenAPI document, against the running gateway on the
real broker: generated requests to every operation, positive (events in both content
types, built from the events' JSON Schemas, which come from the Avro schemas; material
uploads as multipart/form-data with a metadata part and a sample PDF or image) and
negative (what the document does not allow), with a department's key; none answers 5xx,
and every answer fits the document (status, content type, body)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.gateway_support import gateway_process, provisioned_topics

pytestmark = pytest.mark.integration


@schemathesis.serializer("application/x-ndjson")
def _json_lines(_ctx: schemathesis.SerializationContext, value: object) -> bytes:
    """JSON lines are text: the generated string as UTF-8 (lone surrogates escaped)."""
    return str(value).encode("utf-8", "surrogateescape") if not isinstance(value, bytes) \
        else value


@pytest.fixture(scope="module")
def running(kafka: str, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[str, dict[str, str]]]:
    prefix = provisioned_topics(kafka, "s").prefix
    with gateway_process(tmp_path_factory.mktemp("gw-schemathesis"), kafka, prefix,
                         GATEWAY_EVENTS_PER_SECOND="100000",
                         GATEWAY_BURST_EVENTS="100000") as gw:
        yield gw.base, gw.key("scjgj")


def test_no_operation_answers_5xx_or_breaks_the_schema(
        running: tuple[str, dict[str, str]]) -> None:
    """Each operation in turn, as a Hypothesis test of its own (as for the counter:
    tests/integration/test_counter_schemathesis.py)."""
    base, headers = running
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations()]
    assert {op.label for op in operations} >= {"POST /ingest/v1/events", "GET /healthz",
                                               "GET /metrics", "POST /ingest/v1/materials"}
    failures: list[str] = []
    # negative cases only where there is an input to break (the GETs take none)
    runs = [(op, mode) for op in operations for mode in GenerationMode
            if mode == GenerationMode.POSITIVE or op.method.upper() == "POST"]
    for op, mode in runs:

        @given(case=op.as_strategy(generation_mode=mode))
        # derandomized: the same examples every run (CI is never red by the luck of a draw)
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None, derandomize=True)
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=base, headers=headers, timeout=60, checks=[
                not_a_server_error, status_code_conformance, content_type_conformance,
                response_schema_conformance])

        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - all reported
            failures.append(f"{op.label} ({mode.value}): {str(exc)[:1500]}")
    assert failures == [], "\n".join(failures)
