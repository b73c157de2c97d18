"""gateway.openapi: the events' JSON Schemas are derived from the Avro schemas, so the
worked example's events (every type) validate, and what the codec refuses by shape does
not; the request examples, in Chinese and English, are valid events."""

from __future__ import annotations

import json

import jsonschema_rs
import pytest

from gateway.openapi import EVENT_EXAMPLES, event_schemas, events_request_body
from onewindow.codec import get_codec
from tests.examples import RESTAURANT_EVENTS

SCHEMAS = event_schemas(get_codec())


def _valid(event: dict) -> bool:  # type: ignore[type-arg]
    return jsonschema_rs.validator_for(SCHEMAS[event["type"]]).is_valid(event)


def test_every_event_of_the_worked_example_validates() -> None:
    events = [json.loads(line) for line in RESTAURANT_EVENTS.read_text("utf-8").splitlines()
              if line.strip()]
    assert {e["type"] for e in events} >= {"CaseAccepted", "TaskUpdated", "MaterialSubmitted"}
    assert all(_valid(e) for e in events)
    assert set(SCHEMAS) == {*get_codec().event_types, "Event"}


@pytest.mark.parametrize("change", [
    {"colour": "red"}, {"status": "DONE"}, {"event_id": 5}, {"occurred_at": 1700000000000},
])
def test_what_the_codec_refuses_by_shape_does_not_validate(change: dict) -> None:  # type: ignore[type-arg]
    _summary, events = EVENT_EXAMPLES["en"]
    assert _valid(events[0])
    assert not _valid(events[0] | change)
    missing = dict(events[0])
    del missing["task_id"]
    assert not _valid(missing)


def test_the_examples_are_in_chinese_and_english_in_both_forms() -> None:
    body = events_request_body()["content"]
    for media in ("application/json", "application/x-ndjson"):
        assert set(body[media]["examples"]) == {"zh", "en"}
    zh = body["application/x-ndjson"]["examples"]["zh"]
    assert "审查" in zh["value"] and "市场监督管理局" in zh["summary"]
    for _summary, events in EVENT_EXAMPLES.values():
        assert all(get_codec().from_json(e) for e in events)
