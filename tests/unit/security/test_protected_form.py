"""The protected form of an event in Avro (`onewindow.security.protected_form`): it reads
back as it was written, it says "the same" exactly where the fingerprint of the canonical
JSON did, and a CaseActivity of any version gives the same event and the same JSON form."""

from __future__ import annotations

import json
import random
from datetime import timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onewindow.codec import get_codec
from onewindow.domain.case import bytes_fingerprint, event_fingerprint
from onewindow.errors import DecodeError
from onewindow.security.id_protection import IdProtector, event_from_json
from onewindow.security.protected_form import (
    activity_event,
    activity_event_json,
    decode_protected,
    encode_protected,
    protected_json,
)
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from tests.examples import RESTAURANT_EVENTS
from tests.privacy_support import TYPED, privacy_events
from tests.read_model_support import read_jsonl
from tests.unit.codec.helpers import events_of

CODEC = get_codec()
IDS = IdProtector("unit-test-id-hash-key-0123456789abcdef")
EVENTS = st.one_of([events_of(CODEC, name) for name in CODEC.event_types])


def _traffic() -> list[dict[str, Any]]:
    """Decoded as the worker decodes them: every field of the type present."""
    events = [e for c in ScenarioGenerator(ScenarioConfig(seed=11)).cases(25) for e in c]
    events += read_jsonl(RESTAURANT_EVENTS) + privacy_events()
    return [CODEC.decode(CODEC.encode(e)) for e in events]


def _fp(event: dict[str, Any]) -> str:
    return bytes_fingerprint(encode_protected(CODEC, IDS.protect_event(event)))


def test_the_protected_form_reads_back_as_it_was_written() -> None:
    for plain in _traffic():
        event = IDS.protect_event(plain)
        data = encode_protected(CODEC, event)
        assert decode_protected(CODEC, data) == event, plain["event_id"]
        # and no ID number of it is in those bytes (docs/privacy.md)
        assert not any(n.encode() in data for typed in TYPED.values() for n in typed)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EVENTS)
def test_any_event_of_the_schemas_reads_back_protected_or_plain(plain: dict[str, Any]) -> None:
    event = IDS.protect_event(plain)
    assert decode_protected(CODEC, encode_protected(CODEC, event)) == event
    # a caller that does not protect: the input schema, canonical all the same
    assert decode_protected(CODEC, encode_protected(CODEC, plain)) == plain


def _variants(event: dict[str, Any], rnd: random.Random) -> list[dict[str, Any]]:
    """The same event told otherwise (maps in another order, the party's number typed
    with spaces, in another time zone), and the event changed (a note, a name, a
    declared value, a number)."""
    out = []
    if event.get("declared_fields"):
        items = list(event["declared_fields"].items())
        rnd.shuffle(items)
        out.append(dict(event, declared_fields=dict(reversed(items))))
        key = items[0][0]
        out.append(dict(event, declared_fields={**event["declared_fields"], key: "另一个值 7"}))
    party = "applicant" if "applicant" in event else "holder" if "holder" in event else None
    if party is not None:
        number = event[party]["id_number"]
        out.append(dict(event, **{party: {**event[party],
                                          "id_number": f"{number[:6]} {number[6:]}"}}))
        out.append(dict(event, **{party: {**event[party], "name": "另一个人"}}))
    if "note" in event:
        out.append(dict(event, note=(event["note"] or "") + "，已补正"))
    zone = timezone(timedelta(hours=rnd.choice([-5, 8])))
    out.append(dict(event, occurred_at=event["occurred_at"].astimezone(zone)))
    return out


def test_the_same_content_is_the_same_bytes_as_the_json_fingerprint_said() -> None:
    """Duplicate or conflict (domain.md section 2, EVENT_ID_CONFLICT) is decided as
    before: two events have the same canonical bytes exactly when the fingerprint of the
    canonical JSON of their protected forms (`event_fingerprint`, what the worker stored
    before) is the same."""
    rnd = random.Random(3)
    pairs = 0
    for event in _traffic():
        for other in _variants(event, rnd):
            same_json = event_fingerprint(IDS.protect_event(event)) == \
                event_fingerprint(IDS.protect_event(other))
            assert (_fp(event) == _fp(other)) is same_json, (event, other)
            pairs += 1
    assert pairs > 500


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EVENTS, EVENTS)
def test_generated_pairs_agree_with_the_json_fingerprint(a: dict[str, Any],
                                                         b: dict[str, Any]) -> None:
    b = dict(b, type=a["type"]) if b["type"] == a["type"] else a
    same_json = event_fingerprint(IDS.protect_event(a)) == event_fingerprint(IDS.protect_event(b))
    assert (_fp(a) == _fp(b)) is same_json


def _v2_activity(plain: dict[str, Any]) -> dict[str, Any]:
    """What a worker of CaseActivity v2 wrote: the protected JSON form as text."""
    obj = IDS.protect_event(CODEC.to_json(plain))
    return {"event_json": json.dumps(obj, ensure_ascii=False, separators=(",", ":"))}


def test_an_activity_of_any_version_gives_the_same_event_and_json_form() -> None:
    for plain in _traffic():
        v3 = {"event": encode_protected(CODEC, IDS.protect_event(plain)), "event_json": None}
        v2 = _v2_activity(plain)
        assert activity_event_json(CODEC, v3) == activity_event_json(CODEC, v2) \
            == IDS.protect_event(CODEC.to_json(plain)), plain["event_id"]
        assert activity_event(CODEC, v3) == activity_event(CODEC, v2) == \
            event_from_json(CODEC, json.loads(v2["event_json"])), plain["event_id"]
        assert protected_json(CODEC, activity_event(CODEC, v3)) == \
            activity_event_json(CODEC, v2)


def test_an_activity_without_an_event_or_with_another_record_is_undecodable() -> None:
    with pytest.raises(DecodeError):
        activity_event(CODEC, {"event": None, "event_json": None})
    with pytest.raises(DecodeError):
        activity_event_json(CODEC, {"event": None, "event_json": None})
    link = CODEC.encode_record("MaterialLink", {
        "material_a": "a", "material_b": "b", "verdict": "SAME_DOCUMENT",
        "differing_fields": [], "holders_differ": False, "avoidable_material": None,
        "case_a": None, "case_b": None, "found_at": _traffic()[0]["occurred_at"],
        "source_timestamp": None})
    with pytest.raises(DecodeError):
        decode_protected(CODEC, link)
