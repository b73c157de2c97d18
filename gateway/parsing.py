"""A request body of ``POST /ingest/v1/events`` split into its events (pure: no I/O).

Two forms, chosen by the ``Content-Type`` (parameters other than ``charset=utf-8`` are
refused with the type):

* ``application/json``: one JSON array of events in the JSON form (interfaces.md). A body
  that is not UTF-8, not JSON, or not an array is refused whole (400): there is no event
  to answer for.
* ``application/x-ndjson``, ``application/jsonl``, ``application/x-jsonlines``,
  ``application/jsonlines``: JSON lines, one event per line. Blank lines are skipped, a
  line may end in CRLF, a UTF-8 byte-order mark before the first line is ignored (as
  ``onewindow produce`` reads files). A line that is not UTF-8 or not JSON is that event's
  answer (``rejected`` ``UNDECODABLE``); the others go on.

At most :data:`MAX_EVENTS` events per request (interfaces.md): more is refused whole
(413 ``too_many_events``) before any event is looked at. Each event becomes a
:class:`RawEvent`: its position and the parsed JSON value, or the reason it could not be
read. Turning the JSON value into an event (``codec.from_json``) and the rules come next
(``gateway.answers``).

:func:`read_body` refuses a body whole and counts its events without making them
(:class:`Batch`): the gateway needs the count (the 413, the rate) before it checks the
events, and a large request is split again where it is checked, in a checking process
(``gateway.checking``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from onewindow.domain.validation import INVALID_FIELD, UNDECODABLE, Rejection

__all__ = ["JSON", "JSONL", "JSONL_TYPES", "MAX_EVENTS", "Batch", "BodyError", "BodyKind",
           "RawEvent", "body_kind", "one_event", "read_body", "split_body"]

#: at most this many events in one request (interfaces.md, HTTP ingestion gateway)
MAX_EVENTS = 500
JSON: Literal["json"] = "json"
JSONL: Literal["jsonl"] = "jsonl"
#: the two forms of a body
BodyKind = Literal["json", "jsonl"]
#: the media types of JSON lines (none is registered; these are the ones in use)
JSONL_TYPES = frozenset({"application/x-ndjson", "application/jsonl",
                         "application/x-jsonlines", "application/jsonlines"})
_BOM = b"\xef\xbb\xbf"
#: a JSON escape of a UTF-16 surrogate: a lone one decodes to no character at all
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE_ESCAPE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]")


class BodyError(Exception):  # noqa: N818 - it is an answer, not a failure of ours
    """The whole request is refused: ``status`` (400, 413, 415), an error code and a
    detail for the JSON error body."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


@dataclass(frozen=True, slots=True)
class RawEvent:
    """One event of the request: ``index`` (0-based, in request order), ``line`` (1-based,
    JSON lines only), and either ``value`` (the parsed JSON) or ``error``."""

    index: int
    value: Any = None
    error: Rejection | None = None
    line: int | None = None

    def __reduce__(self) -> tuple[type[RawEvent], tuple[Any, ...]]:
        # pickled as its fields (gateway.checking: the default of a frozen dataclass with
        # slots looks its fields up on every pickling)
        return RawEvent, (self.index, self.value, self.error, self.line)


def body_kind(content_type: str | None) -> BodyKind:
    """``json`` or ``jsonl`` for a ``Content-Type`` header; :class:`BodyError` 415 for any
    other type, or a charset other than UTF-8."""
    if not content_type:
        raise BodyError(415, "unsupported_media_type",
                        "Content-Type missing: application/json (an array of events) or "
                        "application/x-ndjson (JSON lines)")
    media, *params = (p.strip() for p in content_type.split(";"))
    media = media.lower()
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and \
                value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise BodyError(415, "unsupported_media_type",
                            f"charset {value.strip()!r}: events are UTF-8 only")
    if media == "application/json":
        return JSON
    if media in JSONL_TYPES:
        return JSONL
    raise BodyError(415, "unsupported_media_type",
                    f"{media!r} is not accepted: application/json (an array of events) or "
                    "application/x-ndjson (JSON lines)")


def _too_many(n: int) -> BodyError:
    return BodyError(413, "too_many_events",
                     f"{n} events in one request, over {MAX_EVENTS}: split the batch")


def _loads(text: str | bytes) -> Any:
    """``json.loads``; ValueError for anything it cannot read (a nesting too deep for the
    parser is a ValueError here, not a RecursionError)."""
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise ValueError("nested too deeply") from exc


def split_body(body: bytes, kind: BodyKind) -> list[RawEvent]:
    """The events of a body of ``kind`` (:func:`body_kind`), in order; :class:`BodyError`
    when the whole body is refused (module docstring)."""
    if kind == JSON:
        return _events_of_array(_array(body), body)
    return _split_lines(body)


@dataclass(frozen=True, slots=True)
class Batch:
    """A request's body, refused whole or not (:func:`read_body`), its events counted but
    not made yet: ``split()`` gives what :func:`split_body` gives."""

    kind: BodyKind
    data: bytes
    count: int
    #: a JSON array's parsed items (not parsed again by ``split``)
    items: list[Any] | None = None

    def split(self) -> list[RawEvent]:
        if self.items is not None:
            return _events_of_array(self.items, self.data)
        return split_body(self.data, self.kind)


def read_body(body: bytes, kind: BodyKind) -> Batch:
    """``body`` as a :class:`Batch`, with the refusals of the whole body that
    :func:`split_body` raises (:class:`BodyError`), without making its events: a JSON
    array is parsed (its length is its count), JSON lines are only counted (a line that
    is not JSON is that event's answer, not a refusal)."""
    if kind == JSON:
        items = _array(body)
        return Batch(kind, body, len(items), items)
    return Batch(kind, body, len(_lines(body)))


def _array(body: bytes) -> list[Any]:
    """A JSON array body's items; :class:`BodyError` when it is refused whole."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BodyError(400, "bad_request",
                        f"body: not UTF-8 (byte 0x{body[exc.start]:02x} at offset {exc.start})"
                        ) from exc
    if not text.strip():
        raise BodyError(400, "bad_request", "body: empty; expected a JSON array of events")
    try:
        value = _loads(text)
    except ValueError as exc:
        raise BodyError(400, "bad_request", f"body: not valid JSON: {exc}") from exc
    if not isinstance(value, list):
        raise BodyError(400, "bad_request",
                        "body: expected a JSON array of events ([{...}, ...]), got "
                        f"{_kind(value)}")
    if len(value) > MAX_EVENTS:
        raise _too_many(len(value))
    return value


def _events_of_array(items: list[Any], body: bytes) -> list[RawEvent]:
    # a lone surrogate can only come from an escape of one (a UTF-8 body holds none)
    check = _SURROGATE_ESCAPE_BYTES.search(body) is not None
    return [_checked(RawEvent(i, value=v), check) for i, v in enumerate(items)]


def _lines(body: bytes) -> list[tuple[int, bytes]]:
    """The non-blank lines of a JSON lines body with their numbers (from 1);
    :class:`BodyError` 413 over :data:`MAX_EVENTS`."""
    if body.startswith(_BOM):
        body = body[len(_BOM):]
    lines = [(n, raw) for n, raw in enumerate(body.split(b"\n"), 1) if raw.strip()]
    if len(lines) > MAX_EVENTS:
        raise _too_many(len(lines))
    return lines


def _split_lines(body: bytes) -> list[RawEvent]:
    lines = _lines(body)
    out: list[RawEvent] = []
    for index, (n, raw) in enumerate(lines):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            out.append(RawEvent(index, line=n, error=Rejection(
                UNDECODABLE, f"line {n}: not UTF-8 (byte 0x{raw[exc.start]:02x} at column "
                             f"{exc.start + 1})")))
            continue
        try:
            out.append(_checked(RawEvent(index, line=n, value=_loads(text)),
                                _SURROGATE_ESCAPE.search(text) is not None))
        except ValueError as exc:
            out.append(RawEvent(index, line=n,
                                error=Rejection(UNDECODABLE, f"line {n}: not valid JSON: {exc}")))
    return out


def one_event(value: Any) -> RawEvent:
    """``value`` (parsed JSON) as the only event of a request (the materials upload's),
    with the check every event of a batch gets: a lone surrogate is ``INVALID_FIELD``."""
    return _checked(RawEvent(0, value=value), True)


def _checked(raw: RawEvent, check: bool) -> RawEvent:
    """``raw``, or its ``INVALID_FIELD`` when a string in it holds a lone surrogate (JSON
    lets ``"\\ud800"`` through; it is no character, can be neither encoded nor echoed).
    ``check``: whether the text had a surrogate escape at all (the walk is skipped
    otherwise)."""
    path = _lone_surrogate(raw.value, "") if check else None
    if path is None:
        return raw
    return RawEvent(raw.index, line=raw.line, error=Rejection(
        INVALID_FIELD, f"{path or '(event)'}: a lone UTF-16 surrogate is not a character"))


def _lone_surrogate(value: Any, path: str) -> str | None:
    """The path of the first string (or key) in ``value`` with a lone surrogate."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            sub = f"{path}.{k}" if path else str(k)
            if _lone_surrogate(k, "") is not None:
                return (path + ".(key)") if path else "(key)"
            found = _lone_surrogate(v, sub)
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = _lone_surrogate(v, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", str: "a string", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)
