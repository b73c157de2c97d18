"""The worked example and every record type survive Avro and JSON round trips."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from onewindow import codec
from onewindow.codec import Codec, get_codec

from .helpers import SCHEMA_DIR, example_lines, example_objects

EVENT_TYPES = {"CaseAccepted", "TaskUpdated", "MaterialSubmitted", "CertificateIssued",
               "CaseWithdrawn"}
OUTPUT_TYPES = {"CaseState", "CaseActivity", "MaterialLink", "DeadLetter",
                # the protected forms of the events with a party (CaseActivity v3 `event`)
                "ProtectedCaseAccepted", "ProtectedMaterialSubmitted",
                "ProtectedCertificateIssued"}


def test_registry_knows_every_record_and_its_namespace() -> None:
    c = Codec.load(SCHEMA_DIR)
    assert set(c.event_types) == EVENT_TYPES
    assert set(c.names) == EVENT_TYPES | OUTPUT_TYPES
    for name in c.names:
        ns = "onewindow.events" if name in EVENT_TYPES else "onewindow.output"
        assert c.latest(name).full_name == f"{ns}.{name}"
        assert c.latest(name).path.name.startswith(f"{name}.v")


def test_get_codec_is_cached_and_lazy() -> None:
    assert get_codec() is get_codec()


def test_example_covers_every_event_type() -> None:
    assert {o["type"] for o in example_objects()} == EVENT_TYPES - {"CaseWithdrawn"}


@pytest.mark.parametrize("line", example_lines(), ids=lambda s: json.loads(s)["event_id"])
def test_example_event_round_trips(line: str) -> None:
    event = codec.loads_json_line(line)
    data = codec.encode(event)
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == get_codec().latest(event["type"]).fingerprint
    assert codec.decode(data) == event
    # The JSON form written back is exactly the line's object (+08:00, absent optionals omitted).
    assert codec.to_json(codec.decode(data)) == json.loads(line)


def test_in_memory_convention() -> None:
    objs = {o["event_id"]: o for o in example_objects()}
    accepted = codec.from_json(objs["evt-0001"])
    assert accepted["type"] == "CaseAccepted"
    assert accepted["occurred_at"] == datetime(2025, 9, 30, 2, 0, tzinfo=UTC)
    assert accepted["occurred_at"].tzinfo is UTC
    assert accepted["case_kind"] == "JOINT"
    assert accepted["applicant"]["id_type"] == "USCC"
    assert accepted["promise"] == {"amount": 5, "unit": "WORKING_DAY"}
    update = codec.decode(codec.encode(codec.from_json(objs["evt-0004"])))
    assert update["officer"] is None and update["note"] is None
    cert = codec.from_json(objs["evt-0009"])
    assert cert["valid_until"] == date(2030, 10, 14)


def test_case_withdrawn_round_trips() -> None:
    event = codec.from_json({"type": "CaseWithdrawn", "event_id": "e9", "case_id": "C1",
                             "department": "zwfw",
                             "occurred_at": "2026-03-02T09:15:00.120+08:00"})
    assert event["reason"] is None
    assert codec.decode(codec.encode(event)) == event
    assert codec.to_json(event)["occurred_at"] == "2026-03-02T09:15:00.120+08:00"


def test_to_json_timestamp_formats() -> None:
    base = {"type": "CaseWithdrawn", "event_id": "e", "case_id": "c", "department": "zwfw",
            "reason": "applicant asked"}
    whole = codec.to_json({**base, "occurred_at": datetime(2026, 3, 2, 1, 15, tzinfo=UTC)})
    assert whole["occurred_at"] == "2026-03-02T09:15:00+08:00"
    millis = codec.to_json({**base, "occurred_at": datetime(2026, 3, 2, 1, 15, 0, 5000,
                                                            tzinfo=UTC)})
    assert millis["occurred_at"] == "2026-03-02T09:15:00.005+08:00"
    # Z and other offsets are accepted and mean the same instant.
    assert codec.from_json({**whole, "occurred_at": "2026-03-02T01:15:00Z"}) == codec.from_json(
        whole
    )


def _state() -> dict:
    t = datetime(2026, 3, 2, 1, 15, tzinfo=UTC)
    return {
        "case_id": "GZ1", "status": "IN_PROGRESS", "version": 4, "service_code": "S1",
        "service_name": "开办餐饮店", "case_kind": "JOINT", "channel": "COUNTER",
        "window_id": None,
        # v2: the ID number only as its keyed hash and mask (docs/privacy.md)
        "applicant": {"kind": "PERSON", "id_type": "RESIDENT_ID", "id_number": None,
                      "id_hash": "ab" * 32, "id_masked": "44**************37",
                      "name": "陈静"},
        "promise": {"amount": 5, "unit": "WORKING_DAY"}, "accepted_at": t,
        "due_date": date(2026, 3, 9), "due_at": t, "due_provisional": False,
        "paused_since": None, "closed_at": None,
        "tasks": [{"task_id": "T1", "department": "scjgj", "name": None,
                   "status": "PENDING", "updated_at": None}],
        "source_timestamp": t, "last_event_id": "evt-1",
    }


OUTPUT_SAMPLES = {
    "CaseState": _state(),
    "CaseActivity": {
        "case_id": "GZ1", "event_id": "e1", "event_type": "TaskUpdated", "department": "scjgj",
        "occurred_at": datetime(2026, 3, 2, 1, 15, tzinfo=UTC), "version": 2, "task_id": "T1",
        "status": "RECEIVED", "material_id": None, "event_json": None,
        "source_topic": "dept.scjgj.events", "source_partition": 3, "source_offset": 2**40,
        "source_timestamp": None, "out_of_role": True, "event": b"\xc3\x01\x00\xff",
    },
    "MaterialLink": {
        "material_a": "m1", "material_b": "m2", "verdict": "SAME_DOCUMENT",
        "differing_fields": ["name"], "holders_differ": False, "avoidable_material": "m2",
        "case_a": "c1", "case_b": None, "found_at": datetime(2026, 3, 2, tzinfo=UTC),
        "source_timestamp": None,
    },
    "DeadLetter": {
        "original": b"\x00\xffgarbage", "key": None, "source_topic": "dept.gaj.events",
        "source_partition": 0, "source_offset": 17, "reason": "UNDECODABLE",
        "detail": "bad magic", "department": "gaj",
        "dead_lettered_at": datetime(2026, 3, 2, tzinfo=UTC),
    },
}


@pytest.mark.parametrize("name", sorted(OUTPUT_SAMPLES))
def test_output_record_round_trips(name: str) -> None:
    record = OUTPUT_SAMPLES[name]
    data = codec.encode_record(name, record)
    assert codec.decode_record(data) == {**record, "type": name}
    assert codec.decode_record(data, name)["type"] == name
    c = get_codec()
    assert c.record_from_json(name, json.loads(json.dumps(c.record_to_json(name, record)))) == (
        record
    )


def test_output_defaults_fill_missing_fields() -> None:
    minimal = {"case_id": "GZ1", "status": "PENDING_ACCEPTANCE", "version": 1}
    decoded = codec.decode_record(codec.encode_record("CaseState", minimal))
    assert decoded["tasks"] == [] and decoded["due_provisional"] is False
    assert decoded["applicant"] is None


def test_a_case_state_v1_keeps_its_plaintext_applicant_when_read_with_v2() -> None:
    """Records written before the stream apps protected ID numbers: the sink still reads
    the number (and hashes it itself), and the new fields are null."""
    v1 = {**_state(), "applicant": {"kind": "PERSON", "id_type": "RESIDENT_ID",
                                    "id_number": "440106198503121237", "name": "陈静"}}
    decoded = codec.decode_record(get_codec().encode_record("CaseState", v1, version=1))
    assert decoded["applicant"] == {**v1["applicant"], "id_hash": None, "id_masked": None}


def test_event_json_of_activity_is_the_json_form() -> None:
    event = codec.loads_json_line(example_lines()[4])
    text = json.dumps(codec.to_json(event), ensure_ascii=False)
    assert codec.loads_json_line(text) == event
