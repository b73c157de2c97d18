"""Dead-letter reasons from the codec, and JSON-form errors that name the field."""

from __future__ import annotations

import copy
import random
from datetime import datetime

import pytest

from onewindow import codec
from onewindow.codec import EncodeError, get_codec
from onewindow.errors import DecodeError

from .helpers import example_objects


def _objects() -> dict[str, dict]:
    return {o["event_id"]: o for o in example_objects()}


def _valid_bytes() -> bytes:
    return codec.encode(codec.from_json(_objects()["evt-0001"]))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc3",
        b"\xc3\x01\x00",
        b"garbage-garbage-garbage",
        b"\x00\x01" + b"\x00" * 20,
        b'{"type": "TaskUpdated"}',
    ],
)
def test_bad_header_is_undecodable(data: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        codec.decode(data)
    assert info.value.reason == "UNDECODABLE"


def test_truncated_body_is_undecodable() -> None:
    data = _valid_bytes()
    for cut in (11, 20, len(data) // 2, len(data) - 1):
        with pytest.raises(DecodeError) as info:
            codec.decode(data[:cut])
        assert info.value.reason == "UNDECODABLE"
        assert info.value.__cause__ is not None


def test_garbage_body_is_undecodable() -> None:
    header = _valid_bytes()[:10]
    for body in (b"\xff" * 40, b"\x01", b"\x7f\x7f\x7f\x7f", bytes(range(256))):
        with pytest.raises(DecodeError) as info:
            codec.decode(header + body)
        assert info.value.reason == "UNDECODABLE"


def test_trailing_bytes_are_undecodable() -> None:
    with pytest.raises(DecodeError) as info:
        codec.decode(_valid_bytes() + b"\x00")
    assert info.value.reason == "UNDECODABLE"
    assert "trailing" in str(info.value)


def test_unknown_fingerprint() -> None:
    data = bytearray(_valid_bytes())
    data[2:10] = b"\x01\x02\x03\x04\x05\x06\x07\x08"
    with pytest.raises(DecodeError) as info:
        codec.decode(bytes(data))
    assert info.value.reason == "UNKNOWN_SCHEMA"
    assert "0102030405060708" in str(info.value)


def test_output_record_on_an_input_topic_is_unknown_schema() -> None:
    data = codec.encode_record("CaseState", {"case_id": "c", "status": "ACCEPTED", "version": 1})
    with pytest.raises(DecodeError) as info:
        codec.decode(data)
    assert info.value.reason == "UNKNOWN_SCHEMA"
    with pytest.raises(DecodeError):
        codec.decode_record(data, "DeadLetter")


def test_random_bytes_never_escape_as_other_exceptions() -> None:

    rng = random.Random(7)
    header = _valid_bytes()[:10]
    for _ in range(2000):
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 60)))
        try:
            codec.decode(header + body)
        except DecodeError as exc:
            assert exc.reason == "UNDECODABLE"


def _invalid(obj: dict) -> str:
    with pytest.raises(DecodeError) as info:
        codec.from_json(obj)
    assert info.value.reason == "INVALID_FIELD"
    return str(info.value)


def test_from_json_names_the_field() -> None:
    objs = _objects()
    accepted = objs["evt-0001"]

    def variant(path: list, value: object = ..., *, delete: bool = False) -> dict:
        obj = copy.deepcopy(accepted)
        target = obj
        for key in path[:-1]:
            target = target[key]
        if delete:
            del target[path[-1]]
        else:
            target[path[-1]] = value
        return obj

    assert _invalid({**accepted, "type": "CaseOpened"}).startswith("type: unknown event type")
    assert _invalid(variant(["type"], delete=True)) == "type: missing required field"
    assert _invalid(variant(["case_id"], delete=True)) == "case_id: missing required field"
    assert _invalid(variant(["occurred_at"], "2025-09-30T10:00:00")).startswith(
        "occurred_at: timestamp without a UTC offset"
    )
    assert _invalid(variant(["occurred_at"], 1759197600000)).startswith("occurred_at: expected")
    assert _invalid(variant(["occurred_at"], "2025-09-30T10:00:00.123456+08:00")).startswith(
        "occurred_at: sub-millisecond"
    )
    assert _invalid(variant(["occurred_at"], "2025-13-30T10:00:00+08:00")).startswith(
        "occurred_at: invalid timestamp"
    )
    assert _invalid(variant(["case_kind"], "SOMETIMES")).startswith(
        "case_kind: expected one of IMMEDIATE|PROMISED|JOINT|REPORTED"
    )
    assert _invalid(variant(["applicant", "id_type"], "DRIVING_LICENCE")).startswith(
        "applicant.id_type:"
    )
    assert _invalid(variant(["applicant", "name"], delete=True)) == (
        "applicant.name: missing required field"
    )
    assert _invalid(variant(["promise", "amount"], "5")).startswith("promise.amount: expected")
    assert _invalid(variant(["promise", "amount"], True)).startswith("promise.amount: expected")
    assert _invalid(variant(["promise", "amount"], 2**40)).startswith(
        "promise.amount: 1099511627776 is out of range"
    )
    assert _invalid(variant(["tasks", 1, "department"], None)).startswith(
        "tasks[1].department: expected a string"
    )
    assert _invalid(variant(["tasks"], {"task_id": "x"})).startswith("tasks: expected an array")
    assert _invalid(variant(["windowId"], "W1")) == "windowId: unknown field"
    assert _invalid(variant(["applicant", "gender"], "F")) == "applicant.gender: unknown field"

    material = objs["evt-0002"]
    assert _invalid({**material, "declared_fields": {"name": 3}}).startswith(
        "declared_fields['name']: expected a string"
    )
    assert _invalid({**material, "size_bytes": 1.5}).startswith("size_bytes: expected an integer")
    cert = objs["evt-0009"]
    assert _invalid({**cert, "valid_until": "2030/10/14"}).startswith("valid_until: not a")
    assert _invalid({**cert, "valid_until": "2030-02-30"}).startswith("valid_until: invalid date")
    # null for an optional field is fine; for a required one it is named.
    assert codec.from_json({**cert, "valid_until": None})["valid_until"] is None
    assert _invalid({**cert, "sha256": None}).startswith("sha256: expected a string, got null")


def test_from_json_rejects_non_objects() -> None:
    for obj in ([], "x", None, 3):
        with pytest.raises(DecodeError) as info:
            codec.from_json(obj)  # type: ignore[arg-type]
        assert info.value.reason == "INVALID_FIELD"


def test_loads_json_line_wraps_syntax_errors() -> None:
    with pytest.raises(DecodeError) as info:
        codec.loads_json_line('{"type": "TaskUpdated",')
    assert info.value.reason == "UNDECODABLE"
    assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(DecodeError) as info:
        codec.loads_json_line('{"type": "TaskUpdated"}')
    assert info.value.reason == "INVALID_FIELD"


def test_encode_rejects_bad_events() -> None:
    event = codec.from_json(_objects()["evt-0004"])
    with pytest.raises(EncodeError, match="occurred_at: naive datetime"):
        codec.encode({**event, "occurred_at": datetime(2025, 9, 30, 14, 0)})
    with pytest.raises(EncodeError):
        codec.encode({**event, "status": "FINISHED"})
    with pytest.raises(EncodeError):
        codec.encode({k: v for k, v in event.items() if k != "task_id"})
    with pytest.raises(EncodeError, match="not an input event"):
        codec.encode({**event, "type": "CaseState"})
    with pytest.raises(EncodeError, match="tasks\\[0\\].updated_at: naive"):
        get_codec().encode_record(
            "CaseState",
            {"case_id": "c", "status": "s", "version": 1, "tasks": [
                {"task_id": "t", "department": "d", "status": "s",
                 "updated_at": datetime(2026, 1, 1)}]},
        )
