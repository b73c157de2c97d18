"""`accepts`, the worker's fast yes: it says yes only where `validate` finds nothing
(domain.md section 2), on valid traffic it says yes, and nothing makes it raise."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onewindow.codec import get_codec
from onewindow.departments import load_registry
from onewindow.domain.validation import accepts, validate
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from tests.examples import RESTAURANT_EVENTS
from tests.privacy_support import privacy_events
from tests.read_model_support import read_jsonl

CODEC = get_codec()
REGISTRY = load_registry()
NOW = datetime(2026, 1, 5, 4, 0, tzinfo=UTC)


def _decoded(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [CODEC.decode(CODEC.encode(e)) for e in events]


TRAFFIC = _decoded([e for c in ScenarioGenerator(ScenarioConfig(seed=21)).cases(30) for e in c]
                   + read_jsonl(RESTAURANT_EVENTS) + privacy_events())


def _both(event: Any, *, topic: str | None = "owner", size: int | None = 300,
          now: datetime = NOW) -> tuple[bool, Any]:
    """``(accepts, validate)``; validate only asked after a yes (it is not made for every
    shape: a ``type`` that is a list makes it raise, and the worker never gives it one)."""
    owner = event.get("department") if topic == "owner" and isinstance(event, dict) else topic
    args = {"topic_department": owner, "departments": REGISTRY.codes, "now": now,
            "counters": REGISTRY.counter_codes, "record_bytes": size}
    yes = accepts(event, **args)
    return yes, validate(event, **args) if yes else "not asked"


def test_valid_traffic_is_accepted_at_once() -> None:
    for event in TRAFFIC:
        assert _both(event) == (True, None), event["event_id"]
        owner = {"topic_department": event["department"], "departments": REGISTRY.codes,
                 "now": NOW, "counters": REGISTRY.counter_codes, "record_bytes": 300}
        assert validate(event, **owner) is None


def test_it_asks_validate_without_the_size_of_the_record_or_for_a_large_one() -> None:
    event = TRAFFIC[0]
    assert _both(event, size=None)[0] is False
    assert _both(event, size=70_000)[0] is False
    assert _both(event, size=60_000) == (True, None)


_NOW_PLUS = [NOW + timedelta(minutes=m) for m in (9, 10, 11)]
#: values that break (or nearly break) a rule, of the right type and of others
VALUES: list[Any] = [
    "", " ", "x", "a" * 64, "a" * 65, "b" * 256, "b" * 257, "c" * 2000, "c" * 2001,
    "d" * 4000, "d" * 4001, "C 1", "C-1_ok", "zwfw", "gaj", "nope", "Zwfw", "zw fw",
    "440106198503121237", "440106198503121230", "91440101MA5CXYW123", "91440101MA5CXYW124",
    "440106 19850312 1237", "f" * 64, "F" * 64, "g" * 64, "PENDING", "APPROVED", "OTHER",
    "HOUR", "WORKING_DAY", "PERSON", "COPY", None, 0, -1, 1, 3660, 3661, 87840, 87841,
    2**40, True, False, 1.5, [], {}, {"k": "v"}, {"k": 1}, ["x"], date(2030, 1, 1),
    datetime(2025, 1, 1, 12, 0), datetime(1999, 12, 31, 15, 59, tzinfo=UTC),
    datetime(1999, 12, 31, 16, 0, tzinfo=UTC), datetime(2025, 1, 1, 0, 0, 1, tzinfo=UTC),
    datetime(2025, 1, 1, tzinfo=timezone(timedelta(hours=8))), *_NOW_PLUS,
]
NESTED = ("applicant", "holder", "promise")


def _paths(event: dict[str, Any]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = [(k,) for k in event]
    for k in NESTED:
        if isinstance(event.get(k), dict):
            out += [(k, sub) for sub in event[k]]
    tasks = event.get("tasks")
    if isinstance(tasks, list):
        out += [("tasks", i, sub) for i, task in enumerate(tasks) if isinstance(task, dict)
                for sub in task]
    if isinstance(event.get("declared_fields"), dict):
        out += [("declared_fields", "新键"), ("declared_fields", "k" * 257)]
    return out


def _set(event: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(event)
    node: Any = out
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return out


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_yes_is_never_given_where_validate_refuses(data: Any) -> None:
    """Events from valid traffic with one or two fields set to a value that breaks a rule,
    or to a value of another type, a topic of another department, another clock: where
    `accepts` says yes, `validate` finds nothing (the worker skips it then)."""
    event = data.draw(st.sampled_from(TRAFFIC))
    for _ in range(data.draw(st.integers(0, 2))):
        event = _set(event, data.draw(st.sampled_from(_paths(event))),
                     data.draw(st.sampled_from(VALUES)))
    topic = data.draw(st.sampled_from(["owner", "owner", "owner", None, "gaj", "zwfw"]))
    now = data.draw(st.sampled_from([NOW, datetime(2025, 3, 1, tzinfo=UTC)]))
    yes, rejection = _both(event, topic=topic, now=now)
    if yes:
        assert rejection is None, (event, rejection)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["type", "event_id", "case_id", "department",
                                        "occurred_at", "task_id", "status", "x"]),
                       st.one_of(st.none(), st.text(max_size=5), st.integers(),
                                 st.sampled_from(["TaskUpdated", "zwfw", "gaj"]),
                                 st.just(NOW))))
def test_any_mapping_is_yes_or_ask_never_an_error(event: dict[str, Any]) -> None:
    yes, rejection = _both(event, topic=None)
    assert not yes or rejection is None
