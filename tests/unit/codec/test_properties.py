"""Property tests: both wire forms round-trip any valid event."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from onewindow import codec
from onewindow.codec import get_codec

from .helpers import events_of

EVENTS = st.one_of([events_of(get_codec(), name) for name in get_codec().event_types])
OUTPUTS = st.sampled_from(
    [n for n in get_codec().names if n not in get_codec().event_types]
).flatmap(lambda n: events_of(get_codec(), n))


@settings(max_examples=300)
@given(EVENTS)
def test_avro_round_trip(event: dict) -> None:
    assert codec.decode(codec.encode(event)) == event


@settings(max_examples=300)
@given(EVENTS)
def test_json_round_trip(event: dict) -> None:
    obj = codec.to_json(event)
    assert codec.from_json(obj) == event
    # through text too, as on the command line and the HTTP gateway
    assert codec.loads_json_line(json.dumps(obj, ensure_ascii=False)) == event


@settings(max_examples=200)
@given(OUTPUTS)
def test_output_records_round_trip(record: dict) -> None:
    name = record["type"]
    body = {k: v for k, v in record.items() if k != "type"}
    assert codec.decode_record(codec.encode_record(name, body)) == record
    c = get_codec()
    assert c.record_from_json(name, json.loads(json.dumps(c.record_to_json(name, body)))) == body
