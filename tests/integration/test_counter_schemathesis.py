"""Schemathesis over the counter API's OpenAPI document, against the running app
(`onewindow counter`, uvicorn): generated and boundary requests to every operation, with
a token of a user holding every role, and none answers 5xx (issue 13: "the API answers
422, never a 500, for any parameter out of range").

The change feed (an endless Server-Sent Events stream unless `max_seconds` is given) is
left out; its parameters are bounded like the others' and it is tested in
tests/unit/counter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.integration.counter_support import counter_process
from tests.staff_support import bearer_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    with counter_process(tmp_path_factory.mktemp("schemathesis")) as (base, db_url):
        yield base, bearer_for(db_url, "clerk", "supervisor", "auditor", "ops")


def test_no_operation_answers_5xx(running: tuple[str, dict[str, str]]) -> None:
    """Each operation in turn, as a Hypothesis test of its own (schemathesis' pytest
    plug-in does not load under this pytest: it is driven directly)."""
    base, headers = running
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json", headers=headers)
    operations = [r.ok() for r in schema.exclude(path="/api/changes").get_all_operations()]
    assert len(operations) >= 15
    failures: list[str] = []
    for op in operations:

        @given(case=op.as_strategy())
        # derandomized: the same examples every run, so CI is never red by the luck of
        # a draw (run with derandomize=False locally to search further)
        @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck),
                  database=None, derandomize=True)
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=base, headers=headers,
                                   checks=[not_a_server_error], timeout=30)

        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - all reported
            failures.append(f"{op.label}: {str(exc)[:500]}")
    assert failures == [], "\n".join(failures)
