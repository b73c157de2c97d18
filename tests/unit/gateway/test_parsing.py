"""gateway.parsing: a request body split into its events, by content type."""

from __future__ import annotations

import json

import pytest

from gateway.parsing import (
    JSON,
    JSONL,
    MAX_EVENTS,
    BodyError,
    body_kind,
    read_body,
    split_body,
)


@pytest.mark.parametrize(("header", "kind"), [
    ("application/json", JSON), ("Application/JSON; charset=utf-8", JSON),
    ("application/x-ndjson", JSONL), ("application/jsonl", JSONL),
    ("application/x-jsonlines; charset=\"UTF-8\"", JSONL),
])
def test_content_types_choose_the_form(header: str, kind: str) -> None:
    assert body_kind(header) == kind


@pytest.mark.parametrize("header", [None, "", "text/plain", "application/xml",
                                    "multipart/form-data; boundary=x",
                                    "application/json; charset=gbk"])
def test_other_content_types_are_415(header: str | None) -> None:
    with pytest.raises(BodyError) as exc:
        body_kind(header)
    assert exc.value.status == 415 and exc.value.code == "unsupported_media_type"


def test_a_json_array_gives_one_raw_event_per_item_with_a_bom_ignored() -> None:
    body = b"\xef\xbb\xbf" + json.dumps([{"a": 1}, "x", None]).encode()
    raws = split_body(body, JSON)
    assert [(r.index, r.value, r.error, r.line) for r in raws] == [
        (0, {"a": 1}, None, None), (1, "x", None, None), (2, None, None, None)]
    assert split_body(b"[]", JSON) == []


@pytest.mark.parametrize(("body", "status", "needle"), [
    (b"", 400, "empty"), (b"  \n", 400, "empty"), (b"{\"type\": 1}", 400, "array"),
    (b"[1, 2", 400, "not valid JSON"), (b"\xff[]", 400, "not UTF-8"),
    (b"[" * 100_000, 400, "nested too deeply"),
    (json.dumps([{}] * (MAX_EVENTS + 1)).encode(), 413, "501 events"),
])
def test_a_json_body_that_cannot_be_read_is_refused_whole(body: bytes, status: int,
                                                          needle: str) -> None:
    with pytest.raises(BodyError) as exc:
        split_body(body, JSON)
    assert exc.value.status == status and needle in exc.value.detail
    with pytest.raises(BodyError) as counted:  # read_body refuses it the same way
        read_body(body, JSON)
    assert (counted.value.status, counted.value.detail) == (status, exc.value.detail)


@pytest.mark.parametrize(("kind", "body", "count"), [
    (JSON, b'\xef\xbb\xbf[{"a": 1}, "x", null, {"e": "\\ud800"}]', 4), (JSON, b"[]", 0),
    (JSONL, b'{"a": 1}\r\n\n  \n{oops\n\xff\xfe\n[1]\n{"e": "\\udc00"}', 5),
    (JSONL, b"", 0),
])
def test_a_body_read_counts_its_events_and_splits_as_split_body(kind: str, body: bytes,
                                                                count: int) -> None:
    batch = read_body(body, kind)  # type: ignore[arg-type]
    assert batch.count == count
    assert batch.split() == split_body(body, kind)  # type: ignore[arg-type]


def test_json_lines_answer_a_bad_line_alone_and_skip_blank_ones() -> None:
    body = b'\xef\xbb\xbf{"a": 1}\r\n\n  \n{oops\n\xff\xfe\n[1]\n'
    raws = split_body(body, JSONL)
    assert [(r.index, r.line) for r in raws] == [(0, 1), (1, 4), (2, 5), (3, 6)]
    assert raws[0].value == {"a": 1} and raws[0].error is None
    assert raws[1].error is not None and raws[1].error.reason == "UNDECODABLE"
    assert raws[1].error.detail.startswith("line 4: not valid JSON")
    assert raws[2].error is not None and "line 5: not UTF-8 (byte 0xff" in raws[2].error.detail
    assert raws[3].value == [1]
    assert split_body(b"", JSONL) == []


def test_more_than_500_lines_are_refused_whole() -> None:
    with pytest.raises(BodyError) as exc:
        split_body(b"{}\n" * (MAX_EVENTS + 1), JSONL)
    assert exc.value.status == 413 and exc.value.code == "too_many_events"
    with pytest.raises(BodyError):
        read_body(b"{}\n" * (MAX_EVENTS + 1), JSONL)
    assert len(split_body(b"{}\n" * MAX_EVENTS, JSONL)) == MAX_EVENTS


def test_a_lone_surrogate_is_that_events_invalid_field_in_both_forms() -> None:
    """JSON lets "\\ud800" through; it is no character (it could be neither encoded nor
    echoed in an answer). A proper pair (an emoji) is fine."""
    good = '{"event_id": "e1", "note": "\\ud83d\\ude00"}'
    bad = '{"event_id": "e\\ud800", "holder": {"names": ["x", "\\udc01"]}}'
    raws = split_body(f"[{good}, {bad}]".encode(), JSON)
    assert raws[0].error is None and raws[0].value["note"] == "\U0001f600"
    assert raws[1].error is not None and raws[1].value is None
    assert (raws[1].error.reason, raws[1].error.detail.split(":")[0]) == \
        ("INVALID_FIELD", "event_id")
    [line] = split_body(b'{"a": {"\\udfff": 1}}\n', JSONL)
    assert line.error is not None and line.error.detail.startswith("a.(key):")


def test_an_answer_that_cannot_be_utf8_is_sent_with_ascii_escapes() -> None:
    from gateway.api import JsonAnswer  # noqa: PLC0415 - the one web piece tested here

    assert JsonAnswer({"d": "审\ud800"}).body == b'{"d":"\\u5ba1\\ud800"}'
    assert JsonAnswer({"d": "审"}).body == '{"d":"审"}'.encode()
