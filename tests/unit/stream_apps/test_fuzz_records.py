"""Fuzz (issue 13): over 100,000 generated and mutated records through decode, validation
and the fold of the real `CaseProcessor`, and what it makes through the materials step.

For every record: no exception escapes, and it ends exactly once as applied, duplicate or
dead-lettered with a reason of domain.md section 2 (its tally, its one activity record or
its one dead letter, found by its source offset). Where a mutation decides the outcome
(a truncated body is ``UNDECODABLE``, a re-send is a duplicate ...) that outcome is
required. Every output and every table value fits ``MAX_OUTPUT_BYTES``, and no derived
record or state holds a resident ID number of the inputs in plaintext (docs/privacy.md).

The inputs are valid cases of the scenario generator, the worked example and the privacy
case, each sent as is and then mutated:

* at the byte level: bit flips, truncation, insertion, deletion, splices, trailing bytes,
  a broken magic, a random / an output's / another event's schema fingerprint, corrupt
  varints, oversize padding, a tombstone, JSON instead of Avro;
* at the field level: text drawn by hypothesis (NUL, zero-width and direction marks,
  astral and combining characters, huge repetitions), bad and boundary dates, timestamps
  in the JSON dialects of domain.md, out-of-range numbers (written past Avro's int as a
  careless encoder would), bad check characters, retyped ID numbers, wrong departments,
  tasks and declared fields at and over the limits;
* at the record level: wrong key, partition, topic and record timestamp; exact and
  conflicting re-sends.

Hypothesis draws each round's seed and its pools of text, instants and numbers
(``derandomize``: the same rounds in every run, so a failure is reproducible from its
message); a seeded ``random.Random`` builds and mutates the records of the round.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from io import BytesIO
from typing import Any

from fastavro import parse_schema, schemaless_writer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from onewindow.calendar_source import load_calendar
from onewindow.codec import HEADER_LEN, EncodeError, get_codec
from onewindow.departments import load_registry
from onewindow.domain.identifiers import (
    is_valid_resident_id,
    resident_id_check_char,
    uscc_check_char,
)
from onewindow.domain.limits import (
    EARLIEST_OCCURRED_AT,
    MAX_CODE_CHARS,
    MAX_DECLARED_FIELDS,
    MAX_DECLARED_VALUE_CHARS,
    MAX_PROMISE,
    MAX_RECORD_BYTES,
    MAX_TASKS,
    MAX_TEXT_CHARS,
)
from onewindow.domain.normalise import SEPARATOR, normalise_number, number_view
from onewindow.domain.protection import VERBATIM
from onewindow.domain.validation import (
    ALL_REASONS,
    DEPARTMENT_MISMATCH,
    EVENT_ID_CONFLICT,
    FUTURE_TIMESTAMP,
    FUTURE_TOLERANCE,
    INVALID_FIELD,
    INVALID_ID_NUMBER,
    OUTPUT_FAILED,
    TOO_LARGE,
    UNAUTHORISED,
    UNDECODABLE,
    UNKNOWN_DEPARTMENT,
    UNKNOWN_SCHEMA,
    WRONG_PARTITION,
)
from onewindow.security.id_protection import IdProtector
from onewindow.security.protected_form import activity_event_json
from onewindow.topics import Topics, partition_for
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from stream_apps.case_processor import APPLIED, DEAD_LETTERED, DUPLICATE, CaseProcessor
from stream_apps.materials_processor import MaterialIndexer, MaterialRouter
from stream_apps.records import MAX_OUTPUT_BYTES, InRecord, OutRecord
from tests.examples import RESTAURANT_EVENTS
from tests.privacy_support import RID_A, RID_B, privacy_events
from tests.read_model_support import read_jsonl

#: Records through the case-state step, at least (issue 13, "Done when").
REQUIRED = 100_000
ROUNDS = 100
PER_ROUND = 1_000

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
PARTITIONS = 3
CODEC = get_codec()
TOPICS = Topics("fz.")
INDEX_TOPIC = "fz.onewindow-materials-index"
IDS = IdProtector("unit-test-id-hash-key-0123456789abcdef")
REGISTRY = load_registry()
CALENDAR = load_calendar()
DEPARTMENTS = sorted(REGISTRY.codes)
NON_COUNTERS = sorted(REGISTRY.codes - REGISTRY.counter_codes)

D = DEAD_LETTERED
Outcome = tuple[str, str | None]


def _dead(*reasons: str) -> frozenset[Outcome]:
    return frozenset((D, r) for r in reasons)


IS_APPLIED = frozenset({(APPLIED, None)})
IS_DUPLICATE = frozenset({(DUPLICATE, None)})

#: enum fields: a string there cannot be encoded (a byte mutation reaches them)
_ENUMS = frozenset({"case_kind", "channel", "kind", "id_type", "unit", "status", "form"})
#: free text bounded by MAX_TEXT_CHARS (section 2), per event type
_TEXT = {"CaseAccepted": ("service_name",), "TaskUpdated": ("note", "officer"),
         "MaterialSubmitted": ("name",), "CertificateIssued": (),
         "CaseWithdrawn": ("reason",)}
_PARTY = {"CaseAccepted": "applicant", "MaterialSubmitted": "holder",
          "CertificateIssued": "holder"}
#: characters that fuzz worst: controls, format characters, dashes, wide and astral ones
_NASTY = ["\0", "\x1f", "\x7f", "\r\n", "\u200b", "\u200d", "\ufeff", "\u202e", "\u2066",
          "\u2014", "\u2212", "\u3000", "\u0301", "😀", "名", "é", "０", "Ⅻ", '"', "\\",
          "\u0085", "\u2028", "{", "</script>"]


# ----------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class Fuzz:
    """One record fed to the processor: what was done to it, and the outcomes allowed
    (``None``: any outcome of section 2; the invariants still hold)."""

    rec: InRecord
    what: str
    expect: frozenset[Outcome] | None

    def describe(self) -> str:
        value = self.rec.value
        shown = "None" if value is None else f"{len(value)} bytes {value[:160]!r}"
        return (f"{self.what} on {self.rec.topic}[{self.rec.partition}]@{self.rec.offset} "
                f"key={(self.rec.key or b'')[:80]!r} ts={self.rec.timestamp_ms} value={shown}")


def _lenient_schema(node: Any) -> Any:
    """A schema whose plain ``int`` fields are ``long``: the same bytes for values in
    range, and what a careless encoder writes for values past 32 bits."""
    if node == "int":
        return "long"
    if isinstance(node, list):
        return [_lenient_schema(n) for n in node]
    if isinstance(node, dict):
        if node.get("type") == "int" and "logicalType" not in node:
            return {**node, "type": "long"}
        return {k: _lenient_schema(v) for k, v in node.items()}
    return node


_LENIENT = {name: (sv.header, parse_schema(_lenient_schema(sv.schema), named_schemas={}))
            for name in CODEC.event_types for sv in [CODEC.latest(name)]}


def _encode(event: dict[str, Any]) -> bytes | None:
    """The Avro record of an event, past the schema's int range where it must be; None
    when even a careless producer could not write it."""
    try:
        return CODEC.encode(event)
    except EncodeError:
        header, schema = _LENIENT[event["type"]]
        out = BytesIO(header)
        out.seek(len(header))
        try:
            schemaless_writer(out, schema, event)
        except Exception:  # any refusal of the writer: not a record
            return None
        return out.getvalue()


def _rid(r: random.Random) -> str:
    body = f"{r.choice(['440106', '440103', '110105', '310115'])}" \
           f"{r.randrange(1950, 2010)}{r.randrange(1, 13):02d}{r.randrange(1, 29):02d}" \
           f"{r.randrange(0, 1000):03d}"
    return body + resident_id_check_char(body)


def _typed(number: str, r: random.Random) -> str:
    """A number as a person or a careless system types it (domain.md section 5)."""
    roll = r.randrange(7)
    if roll == 0:
        return number
    if roll == 1:
        return f"{number[:6]} {number[6:14]} {number[14:]}"
    if roll == 2:
        return f"{number[:6]}\u2014{number[6:14]}\u2014{number[14:]}"
    if roll == 3:
        return "\u200b".join(number)
    if roll == 4:
        return "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else c for c in number)
    if roll == 5:
        return number.lower() if number.endswith("X") else f"\ufeff{number}\u3000"
    return "\0".join(number[i:i + 4] for i in range(0, len(number), 4))


def _bad_check(number: str) -> str:
    """The number with a wrong check character."""
    body, check = number[:17], number[17]
    for c in "0123456789X":
        if c != check:
            return body + c
    raise AssertionError(number)


def _strings(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], str]]:
    """``(path, value)`` of every string field of an event, enums left out."""
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(v, str) and k not in _ENUMS and k != "type":
                yield (*path, k), v
            elif isinstance(v, dict | list):
                yield from _strings(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _strings(v, (*path, i))


def _set(event: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    node: Any = event
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value


def _dialect(instant: datetime, r: random.Random) -> str:
    """The same instant in one of the timestamp dialects of domain.md (any offset form, a
    space separator, any number of fractional digits, truncated to milliseconds)."""
    offset = timedelta(minutes=r.choice([0, 480, -330, 840, -720, 345]))
    local = instant.astimezone(timezone(offset))
    text = local.strftime("%Y-%m-%d") + r.choice("T ") + local.strftime("%H:%M:%S")
    ms = local.microsecond // 1000
    if ms or r.random() < 0.5:
        text += f".{ms:03d}" + "".join(r.choice("0123456789") for _ in range(r.randrange(7)))
    minutes = int(offset.total_seconds()) // 60
    if minutes == 0 and r.random() < 0.5:
        return text + "Z"
    sign, minutes = ("+" if minutes >= 0 else "-"), abs(minutes)
    return text + f"{sign}{minutes // 60:02d}{r.choice(['', ':'])}{minutes % 60:02d}"


@dataclass
class Pools:
    """What hypothesis drew for a round."""

    atoms: list[str]
    instants: list[datetime]
    numbers: list[int]


class RoundBuilder:
    """The records of one round: each case's events sent as they are, then mutated."""

    def __init__(self, seed: int, pools: Pools) -> None:
        self.r = random.Random(seed)
        self.pools = pools
        self.gen = ScenarioGenerator(ScenarioConfig(seed=seed % 10_000))
        self.offset = 0
        self.fresh = 0
        self.rids = [RID_A, RID_B] + [_rid(self.r) for _ in range(6)]
        self.values: list[bytes] = []  # valid values of the round, for splices
        self.headers = [sv.header for n in CODEC.names for sv in CODEC.versions(n)]
        self.output_headers = [sv.header for n in CODEC.names for sv in CODEC.versions(n)
                               if not sv.is_event]

    # ---- records ---------------------------------------------------------------------

    def _rec(self, event: dict[str, Any], value: bytes | None, *, key: bytes | None = None,
             topic: str | None = None, partition: int | None = None,
             timestamp_ms: int | None = 1_700_000_000_000) -> InRecord:
        key = event["case_id"].encode() if key is None else key
        self.offset += 1
        if partition is None:
            partition = partition_for(event["case_id"].encode(), PARTITIONS)
        return InRecord(topic or TOPICS.input(event["department"]), partition, self.offset,
                        key, value, timestamp_ms)

    def _fresh_id(self, event_id: str) -> str:
        self.fresh += 1
        return f"{event_id[:48]}.f{self.fresh}"

    def cases(self) -> Iterator[list[dict[str, Any]]]:
        yield read_jsonl(RESTAURANT_EVENTS)
        yield privacy_events()
        while True:
            yield self.gen.case()

    def records(self, count: int) -> list[Fuzz]:
        """``count`` records: a few cases at a time, interleaved, each case's events sent
        first as they are (applied) and then mutated in a random order."""
        out: list[Fuzz] = []
        active: list[Iterator[Fuzz]] = []
        cases = self.cases()
        while len(out) < count:
            while len(active) < 4:
                active.append(iter(self._case_records(next(cases))))
            i = self.r.randrange(len(active))
            item = next(active[i], None)
            if item is None:
                active.pop(i)
            else:  # offsets in the order the records are fed (the dead letters name them)
                out.append(Fuzz(self._renumber(item.rec), item.what, item.expect))
        return out

    def _case_records(self, events: list[dict[str, Any]]) -> list[Fuzz]:
        decoded = [CODEC.decode(CODEC.encode(e)) for e in events]  # as the wire has them
        originals = []
        for e in decoded:
            value = CODEC.encode(e)
            self.values.append(value)
            originals.append(Fuzz(self._rec(e, value), "original", IS_APPLIED))
        mutations: list[Fuzz] = []
        for e, orig in zip(decoded, originals, strict=True):
            for _ in range(self.r.choice([2, 3, 4, 5, 6])):
                made = self._mutate(e, orig.rec)
                if made is not None:
                    mutations.append(made)
        self.r.shuffle(mutations)
        return originals + mutations

    def _renumber(self, rec: InRecord) -> InRecord:
        self.offset += 1
        return InRecord(rec.topic, rec.partition, self.offset, rec.key, rec.value,
                        rec.timestamp_ms)

    def _mutate(self, e: dict[str, Any], orig: InRecord) -> Fuzz | None:
        name = self.r.choices(_NAMES, _WEIGHTS)[0]
        # a field-level mutation changes its own copy of the event (decoded afresh)
        event = CODEC.decode(orig.value) if name in _FIELD_LEVEL else e  # type: ignore[arg-type]
        made = _MUTATIONS[name][1](self, event, orig)
        if made is None:
            return None
        rec, expect = made
        return Fuzz(rec, name, expect)

    # ---- record level ------------------------------------------------------------------

    def m_resend(self, e: dict[str, Any], orig: InRecord) -> tuple[InRecord, Any]:
        return orig, IS_DUPLICATE

    def m_record_timestamp(self, e: dict[str, Any], orig: InRecord) -> tuple[InRecord, Any]:
        """A re-send whose Kafka timestamp is absent, negative, microseconds by mistake,
        or past year 9999 (the broker accepts any by default)."""
        ms = self.r.choice([None, -1, 0, 1_700_000_000_000_000, 2**63 - 1, -(2**63),
                            253_402_300_800_000, *self.pools.numbers])
        return InRecord(orig.topic, orig.partition, 0, orig.key, orig.value, ms), IS_DUPLICATE

    def m_wrong_partition(self, e: dict[str, Any], orig: InRecord) -> tuple[InRecord, Any]:
        wrong = (orig.partition + self.r.randrange(1, PARTITIONS)) % PARTITIONS
        rec = InRecord(orig.topic, wrong, 0, orig.key, orig.value, orig.timestamp_ms)
        return rec, _dead(WRONG_PARTITION)

    def m_wrong_key(self, e: dict[str, Any], orig: InRecord) -> tuple[InRecord, Any]:
        key = orig.key or b""
        bad = self.r.choice([None, b"", key + b" ", key.lower(), b"\xff\xfe" + key,
                             key + b"\0", "名".encode() + key, b"C-other"])
        return (InRecord(orig.topic, orig.partition, 0, bad, orig.value, orig.timestamp_ms),
                _dead(INVALID_FIELD))

    def m_huge_key(self, e: dict[str, Any], orig: InRecord) -> tuple[InRecord, Any]:
        key = (orig.key or b"") * (MAX_RECORD_BYTES // max(1, len(orig.key or b"x")) + 1)
        return (InRecord(orig.topic, orig.partition, 0, key, orig.value, orig.timestamp_ms),
                _dead(TOO_LARGE))

    def m_wrong_topic(self, e: dict[str, Any], orig: InRecord) -> tuple[InRecord, Any]:
        others = [d for d in DEPARTMENTS if d != e["department"]]
        topic = self.r.choice([TOPICS.input(self.r.choice(others)), TOPICS.case_state,
                               TOPICS.input("nobody"), "fz.dept..events", "other"])
        rec = InRecord(topic, orig.partition, 0, orig.key, orig.value, orig.timestamp_ms)
        return rec, _dead(DEPARTMENT_MISMATCH)

    # ---- byte level --------------------------------------------------------------------

    def _with(self, orig: InRecord, value: bytes | None) -> InRecord:
        return InRecord(orig.topic, orig.partition, 0, orig.key, value, orig.timestamp_ms)

    def m_bitflip(self, e: dict[str, Any], orig: InRecord) -> tuple[InRecord, Any]:
        v = bytearray(orig.value or b"")
        start = 0 if self.r.random() < 0.2 else HEADER_LEN
        for _ in range(self.r.choice([1, 1, 1, 2, 3, 8])):
            v[self.r.randrange(start, len(v))] ^= 1 << self.r.randrange(8)
        return self._with(orig, bytes(v)), None

    def m_truncate(self, e: dict[str, Any], orig: InRecord) -> tuple[InRecord, Any]:
        v = orig.value or b""
        return self._with(orig, v[:self.r.randrange(len(v))]), _dead(UNDECODABLE)

    def m_trailing(self, e: dict[str, Any], orig: InRecord) -> tuple[InRecord, Any]:
        extra = self.r.randbytes(self.r.randrange(1, 24))
        return self._with(orig, (orig.value or b"") + extra), _dead(UNDECODABLE)

    def m_insert(self, e: dict[str, Any], orig: InRecord) -> tuple[InRecord, Any]:
        v = orig.value or b""
        at = self.r.randrange(HEADER_LEN, len(v) + 1)
        junk = self.r.choice([self.r.randbytes(self.r.randrange(1, 16)), b"\0",
                              b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "\u200b".encode()])
        return self._with(orig, v[:at] + junk + v[at:]), None

    def m_delete(self, e: dict[str, Any], orig: InRecord) -> tuple[InRecord, Any]:
        v = orig.value or b""
        at = self.r.randrange(HEADER_LEN, len(v))
        return self._with(orig, v[:at] + v[at + self.r.randrange(1, 12):]), None

    def m_splice(self, e: dict[str, Any], orig: InRecord) -> tuple[InRecord, Any]:
        v, other = orig.value or b"", self.r.choice(self.values)
        at = self.r.randrange(HEADER_LEN, len(v))
        o = self.r.randrange(HEADER_LEN, len(other))
        return self._with(orig, v[:at] + other[o:o + self.r.randrange(1, 64)]
                          + v[at + self.r.randrange(0, 64):]), None

    def m_varint(self, e: dict[str, Any], orig: InRecord) -> tuple[InRecord, Any]:
        """A length or count prefix overwritten: huge, negative, overlong."""
        v = orig.value or b""
        at = self.r.randrange(HEADER_LEN, len(v))
        junk = self.r.choice([b"\xfe\xff\xff\xff\x0f", b"\x01", b"\x7f", b"\x80\x80\x80\x80\x80"
                              b"\x80\x80\x80\x80\x80\x01", b"\xff\xff\xff\xff\xff\xff\xff\xff\x7f"])
        return self._with(orig, v[:at] + junk + v[at + len(junk):]), None

    def m_magic(self, e: dict[str, Any], orig: InRecord) -> tuple[InRecord, Any]:
        v = orig.value or b""
        magic = self.r.choice([b"\xc3\x00", b"\x00\x01", b"\xc2\x01", b"{\""])
        return self._with(orig, magic + v[2:]), _dead(UNDECODABLE)

    def m_fingerprint(self, e: dict[str, Any], orig: InRecord) -> tuple[InRecord, Any]:
        v = orig.value or b""
        roll = self.r.randrange(3)
        if roll == 0:  # unknown to the project
            fp = self.r.randbytes(8)
            while CODEC.by_fingerprint(fp) is not None:
                fp = self.r.randbytes(8)
            return self._with(orig, v[:2] + fp + v[HEADER_LEN:]), _dead(UNKNOWN_SCHEMA)
        if roll == 1:  # an output record's: not an input event
            head = self.r.choice(self.output_headers)
            return self._with(orig, head + v[HEADER_LEN:]), _dead(UNKNOWN_SCHEMA)
        head = self.r.choice(self.headers)  # another event's: the body read the wrong way
        return self._with(orig, head + v[HEADER_LEN:]), None

    def m_alias_fingerprint(self, e: dict[str, Any], orig: InRecord) -> tuple[InRecord, Any]:
        """The fingerprint Apache Avro's Python library computes for the same schema: the
        same event, so a duplicate."""
        sv = CODEC.latest(e["type"])
        if not sv.alias_fingerprints:
            return orig, IS_DUPLICATE
        v = orig.value or b""
        return self._with(orig, v[:2] + sv.alias_fingerprints[0] + v[HEADER_LEN:]), IS_DUPLICATE

    def m_oversize(self, e: dict[str, Any], orig: InRecord) -> tuple[InRecord, Any]:
        v = orig.value or b""
        pad = MAX_RECORD_BYTES - len(v) - len(orig.key or b"") + self.r.choice(
            [1, 2, 1000, 800_000])
        return self._with(orig, v + self.r.choice([b"\0", b"x", b"\xff"]) * pad), \
            _dead(TOO_LARGE)

    def m_nothing(self, e: dict[str, Any], orig: InRecord) -> tuple[InRecord, Any]:
        value = self.r.choice([None, b"", b"\xc3", b"\xc3\x01", orig.value[:HEADER_LEN]])  # type: ignore[index]
        return self._with(orig, value), _dead(UNDECODABLE)

    def m_garbage(self, e: dict[str, Any], orig: InRecord) -> tuple[InRecord, Any]:
        junk = self.r.randbytes(self.r.randrange(0, 300))
        if self.r.random() < 0.5:
            junk = b"\xc3\x01" + junk
        return self._with(orig, junk), _dead(UNDECODABLE, UNKNOWN_SCHEMA)

    def m_json_instead(self, e: dict[str, Any], orig: InRecord) -> tuple[InRecord, Any]:
        """A department that sends its JSON-lines file instead of Avro (BOM, CRLF)."""
        text = json.dumps(CODEC.to_json(e), ensure_ascii=self.r.random() < 0.5)
        raw = self.r.choice(["", "\ufeff"]) + text + self.r.choice(["", "\n", "\r\n"])
        return self._with(orig, raw.encode("utf-8")), _dead(UNDECODABLE)

    # ---- the JSON form -----------------------------------------------------------------

    def m_dialect(self, e: dict[str, Any], orig: InRecord) -> tuple[InRecord, Any]:
        """The event's JSON form with its timestamp in another dialect, read by the codec
        as the SDK reads a file. Read: the same event, so a duplicate. Refused: the raw
        line as a department would send it, undecodable."""
        obj = CODEC.to_json(e)
        obj["occurred_at"] = _dialect(e["occurred_at"], self.r)
        line = json.dumps(obj, ensure_ascii=False)
        try:
            value = CODEC.encode(CODEC.loads_json_line(line))
        except Exception:  # refused by the producer's reader: sent raw
            return self._with(orig, line.encode()), _dead(UNDECODABLE)
        return self._with(orig, value), IS_DUPLICATE

    # ---- field level -------------------------------------------------------------------

    def _event(self, e: dict[str, Any], orig: InRecord, expect: Any, *,
               fresh: bool | None = None, **rec: Any) -> tuple[InRecord, Any] | None:
        """The record of a field-mutated event. ``fresh=None``: with a fresh event id (then
        a valid one is applied) or its own (then a valid one is a conflict), at random;
        ``False``: its event id as the mutation left it."""
        if fresh is None:
            fresh = self.r.random() < 0.5
            if not fresh and expect == IS_APPLIED:
                expect = _dead(EVENT_ID_CONFLICT)
        if fresh:
            e["event_id"] = self._fresh_id(e["event_id"])
        value = _encode(e)
        if value is None:
            return None
        rec.setdefault("partition", orig.partition)
        rec.setdefault("topic", orig.topic)
        if value == orig.value and "key" not in rec and (rec["topic"], rec["partition"]) == (
                orig.topic, orig.partition):
            expect = IS_DUPLICATE  # the mutation changed nothing (a number set to itself)
        return self._rec(e, value, key=rec.pop("key", orig.key), **rec), expect

    def m_conflict(self, e: dict[str, Any], orig: InRecord) -> Any:
        e["occurred_at"] -= timedelta(minutes=self.r.randrange(1, 600))
        return self._event(e, orig, _dead(EVENT_ID_CONFLICT), fresh=False)

    def m_retyped_id(self, e: dict[str, Any], orig: InRecord) -> Any:
        """The party's number typed another way: the same holder, the same protected
        event, so a duplicate (normalisation of section 5)."""
        party = e.get(_PARTY.get(e["type"], ""))
        if party is None:
            return None
        party["id_number"] = _typed(normalise_number(party["id_number"]), self.r)
        return self._event(e, orig, IS_DUPLICATE, fresh=False)

    def m_bad_check(self, e: dict[str, Any], orig: InRecord) -> Any:
        party = e.get(_PARTY.get(e["type"], ""))
        if party is None or party["id_type"] not in ("RESIDENT_ID", "USCC"):
            return None
        number = normalise_number(party["id_number"])
        if party["id_type"] == "USCC":
            wrong = next(c for c in "0123456789ABCDEFGHJKLMNPQRTUWXY"
                         if c != uscc_check_char(number[:17]))
            party["id_number"] = number[:17] + wrong
        else:
            party["id_number"] = _typed(_bad_check(number), self.r)
        return self._event(e, orig, _dead(INVALID_ID_NUMBER))

    def m_case_id(self, e: dict[str, Any], orig: InRecord) -> Any:
        roll = self.r.randrange(3)
        if roll == 0:  # valid, new: a case that has no acceptance yet (or this one)
            self.fresh += 1
            e["case_id"] = f"{e['case_id'][:50]}-N{self.fresh}"
            return self._event(e, orig, IS_APPLIED, fresh=False, key=e["case_id"].encode(),
                               partition=partition_for(e["case_id"].encode(), PARTITIONS))
        bad = self.r.choice(["", "x" * 65, "GZ 1", "GZ\u200b1", "名", "GZ\x001", "a/b",
                             *self.pools.atoms[:3]])
        if re.fullmatch(r"[0-9A-Za-z_-]{1,64}", bad):
            return None
        e["case_id"] = bad
        return self._event(e, orig, _dead(INVALID_FIELD), key=bad.encode())

    def m_event_id(self, e: dict[str, Any], orig: InRecord) -> Any:
        roll = self.r.randrange(3)
        if roll == 0:
            e["event_id"] = self.r.choice(["", "e" * 65])
            return self._event(e, orig, _dead(INVALID_FIELD), fresh=False)
        self.fresh += 1
        e["event_id"] = (self.r.choice(self.pools.atoms) + f"#{self.fresh}")[-64:] \
            if roll == 1 else f"{self.fresh}".rjust(64, "\u200b")
        return self._event(e, orig, IS_APPLIED, fresh=False)

    def m_department(self, e: dict[str, Any], orig: InRecord) -> Any:
        roll = self.r.randrange(4)
        if roll == 0:
            e["department"] = self.r.choice(["nobody", "ZWFW", "zwfw\0", "zw fw", "gaj\u200b",
                                             *self.pools.atoms[:2]])
            if e["department"] in REGISTRY.codes:
                return None
            return self._event(e, orig, _dead(INVALID_FIELD) if not e["department"]
                               else _dead(UNKNOWN_DEPARTMENT))
        if roll == 1:  # another registered department, on this one's topic: spoofing
            e["department"] = self.r.choice([d for d in DEPARTMENTS if d != e["department"]])
            return self._event(e, orig, _dead(DEPARTMENT_MISMATCH))
        if e["type"] in ("CaseAccepted", "CaseWithdrawn"):  # on its own topic
            e["department"] = self.r.choice(NON_COUNTERS)
            return self._event(e, orig, _dead(UNAUTHORISED), topic=TOPICS.input(e["department"]))
        if e["type"] == "TaskUpdated":  # another department's task: out of role, applied
            e["department"] = self.r.choice([d for d in NON_COUNTERS if d != e["department"]])
            return self._event(e, orig, IS_APPLIED, topic=TOPICS.input(e["department"]))
        return None

    def m_occurred_at(self, e: dict[str, Any], orig: InRecord) -> Any:
        earliest, latest = EARLIEST_OCCURRED_AT, NOW + FUTURE_TOLERANCE
        ms = timedelta(milliseconds=1)
        at, expect = self.r.choice([
            (earliest - ms, _dead(INVALID_FIELD)), (earliest, IS_APPLIED),
            (datetime(1, 1, 1, tzinfo=UTC), _dead(INVALID_FIELD)),
            (datetime(1970, 1, 1, tzinfo=UTC), _dead(INVALID_FIELD)),
            (latest, IS_APPLIED), (latest + ms, _dead(FUTURE_TIMESTAMP)),
            (datetime(9999, 12, 31, 23, 59, tzinfo=UTC), _dead(FUTURE_TIMESTAMP)),
            (self.r.choice(self.pools.instants), None),
        ])
        e["occurred_at"] = at
        return self._event(e, orig, expect)

    def m_numbers(self, e: dict[str, Any], orig: InRecord) -> Any:
        n = self.r.choice([-1, 0, 1, 2**31 - 1, 2**31, -(2**31) - 1, 2**62,
                           *self.pools.numbers])
        if e["type"] == "CaseAccepted":
            unit = self.r.choice(sorted(MAX_PROMISE))
            n = self.r.choice([n, MAX_PROMISE[unit], MAX_PROMISE[unit] + 1])
            e["promise"] = {"amount": n, "unit": unit}
            ok = 0 <= n <= MAX_PROMISE[unit]
            return self._event(e, orig, IS_APPLIED if ok else _dead(INVALID_FIELD))
        if e["type"] == "MaterialSubmitted":
            e[self.r.choice(["pages", "size_bytes"])] = n
            return self._event(e, orig, IS_APPLIED if n >= 0 else _dead(INVALID_FIELD))
        if e["type"] == "CertificateIssued":
            e["valid_until"] = self.r.choice([date(1, 1, 1), date(9999, 12, 31),
                                              date(2000, 2, 29)])
            return self._event(e, orig, IS_APPLIED)
        return None

    def m_tasks(self, e: dict[str, Any], orig: InRecord) -> Any:
        if e["type"] != "CaseAccepted":
            return None
        n = self.r.choice([0, 1, MAX_TASKS, MAX_TASKS + 1])
        tasks = [{"task_id": f"T{i}", "department": self.r.choice(DEPARTMENTS),
                  "name": self.r.choice(self.pools.atoms)[:MAX_TEXT_CHARS]} for i in range(n)]
        expect = IS_APPLIED if n <= MAX_TASKS else _dead(TOO_LARGE)
        if n and expect == IS_APPLIED:
            roll = self.r.randrange(4)
            if roll == 0 and n > 1:
                tasks[-1]["task_id"] = tasks[0]["task_id"]
                expect = _dead(INVALID_FIELD)
            elif roll == 1:
                tasks[-1]["department"] = "nobody"
                expect = _dead(UNKNOWN_DEPARTMENT)
            elif roll == 2:
                tasks[-1]["task_id"] = "t" * (MAX_CODE_CHARS + 1)
                expect = _dead(TOO_LARGE)
        e["tasks"] = tasks
        return self._event(e, orig, expect)

    def m_declared(self, e: dict[str, Any], orig: InRecord) -> Any:
        if "declared_fields" not in e:
            return None
        atoms = self.pools.atoms
        roll = self.r.randrange(4)
        if roll == 0:
            n = self.r.choice([MAX_DECLARED_FIELDS, MAX_DECLARED_FIELDS + 1])
            e["declared_fields"] = {f"k{i}:{self.r.choice(atoms)[:8]}": self.r.choice(atoms)
                                    for i in range(n)}
            return self._event(e, orig, IS_APPLIED if n <= MAX_DECLARED_FIELDS
                               else _dead(TOO_LARGE))
        if roll == 1:
            n = self.r.choice([MAX_DECLARED_VALUE_CHARS, MAX_DECLARED_VALUE_CHARS + 1])
            e["declared_fields"] = {"v": (self.r.choice(_NASTY) * n)[:n]}
            return self._event(e, orig, IS_APPLIED if n <= MAX_DECLARED_VALUE_CHARS
                               else _dead(TOO_LARGE))
        if roll == 2:
            e["sha256"] = self.r.choice(["A" * 64, "a" * 63, "g" * 64, "", "ａ" * 64])
            return self._event(e, orig, _dead(INVALID_FIELD))
        e["declared_fields"] = {self.r.choice(atoms): self.r.choice(atoms) for _ in range(3)}
        return self._event(e, orig, None)

    def m_huge_text(self, e: dict[str, Any], orig: InRecord) -> Any:
        fields = _TEXT[e["type"]]
        if not fields:
            return None
        field = self.r.choice(fields)
        atom = self.r.choice(self.pools.atoms + _NASTY) or "\0"
        n = self.r.choice([MAX_TEXT_CHARS, MAX_TEXT_CHARS + 1, 100_000, 300_000])
        e[field] = (atom * (n // len(atom) + 1))[:n]
        return self._event(e, orig, IS_APPLIED if n <= MAX_TEXT_CHARS else _dead(TOO_LARGE))

    def m_text(self, e: dict[str, Any], orig: InRecord) -> Any:
        """Any string field set to text hypothesis drew, now and then repeated."""
        path, _ = self.r.choice(list(_strings(e)))
        text = self.r.choice(self.pools.atoms + _NASTY)
        if self.r.random() < 0.1:
            text *= self.r.randrange(2, 2_000)
        if path[-1] in VERBATIM or isinstance(path[-1], int):
            _set(e, path, text)
        elif len(path) > 1 and path[-2] == "declared_fields" and self.r.random() < 0.5:
            fields = e["declared_fields"]
            fields[text] = fields.pop(path[-1])  # the key
        else:
            _set(e, path, text)
        return self._event(e, orig, None)

    def m_inject_id(self, e: dict[str, Any], orig: InRecord) -> Any:
        """A resident ID number typed into free text or a party (privacy: never derived
        in plaintext)."""
        rid = _typed(self.r.choice(self.rids), self.r)
        candidates = [p for p, _ in _strings(e) if not any(
            k in VERBATIM for k in p if isinstance(k, str))]
        if not candidates:
            return None
        path = self.r.choice(candidates)
        # a token of its own (protection.scrub masks an 18-character token): what comes
        # before is not a letter or digit glued to it, separators may be
        around = self.r.choice([" ", "：", "身份证号", "（", "no.", "\u200b", "\n", "\0 "])
        _set(e, path, f"{self.r.choice(self.pools.atoms)[:20]}{around}{rid}{around[::-1]}")
        return self._event(e, orig, None, fresh=True)


_MUTATIONS: dict[str, tuple[float, Callable[..., Any]]] = {
    # record level
    "resend": (4, RoundBuilder.m_resend),
    "record_timestamp": (2, RoundBuilder.m_record_timestamp),
    "wrong_partition": (3, RoundBuilder.m_wrong_partition),
    "wrong_key": (3, RoundBuilder.m_wrong_key),
    "huge_key": (0.3, RoundBuilder.m_huge_key),
    "wrong_topic": (3, RoundBuilder.m_wrong_topic),
    # byte level
    "bitflip": (12, RoundBuilder.m_bitflip),
    "truncate": (5, RoundBuilder.m_truncate),
    "trailing": (3, RoundBuilder.m_trailing),
    "insert": (5, RoundBuilder.m_insert),
    "delete": (5, RoundBuilder.m_delete),
    "splice": (4, RoundBuilder.m_splice),
    "varint": (5, RoundBuilder.m_varint),
    "magic": (1, RoundBuilder.m_magic),
    "fingerprint": (4, RoundBuilder.m_fingerprint),
    "alias_fingerprint": (1, RoundBuilder.m_alias_fingerprint),
    "oversize": (0.3, RoundBuilder.m_oversize),
    "nothing": (1, RoundBuilder.m_nothing),
    "garbage": (2, RoundBuilder.m_garbage),
    "json_instead": (1, RoundBuilder.m_json_instead),
    "dialect": (3, RoundBuilder.m_dialect),
    # field level
    "conflict": (3, RoundBuilder.m_conflict),
    "retyped_id": (3, RoundBuilder.m_retyped_id),
    "bad_check": (2, RoundBuilder.m_bad_check),
    "case_id": (3, RoundBuilder.m_case_id),
    "event_id": (2, RoundBuilder.m_event_id),
    "department": (3, RoundBuilder.m_department),
    "occurred_at": (3, RoundBuilder.m_occurred_at),
    "numbers": (3, RoundBuilder.m_numbers),
    "tasks": (1, RoundBuilder.m_tasks),
    "declared": (2, RoundBuilder.m_declared),
    "huge_text": (0.5, RoundBuilder.m_huge_text),
    "text": (10, RoundBuilder.m_text),
    "inject_id": (4, RoundBuilder.m_inject_id),
}
_NAMES = list(_MUTATIONS)
_WEIGHTS = [w for w, _ in _MUTATIONS.values()]
_FIELD_LEVEL = frozenset({"conflict", "retyped_id", "bad_check", "case_id", "event_id",
                          "department", "occurred_at", "numbers", "tasks", "declared",
                          "huge_text", "text", "inject_id"})


# ---------------------------------------------------------------------------- checks

_RID_RUN = re.compile(r"(?=([0-9]{17}[0-9X]))")
_DIGIT = re.compile(r"\d")


#: keyed hashes and digests: hexadecimal by construction, never a plaintext number
_HASHES = frozenset({"id_hash", "document_number_hash", "declared_fields_hash", "sha256"})


def _all_strings(node: Any) -> list[str]:
    """Every string in a decoded record or JSON document (mapping keys included), but for
    the values of :data:`_HASHES`."""
    out: list[str] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, str):
            out.append(n)
        elif isinstance(n, dict):
            out.extend(k for k in n if isinstance(k, str))
            stack.extend(v for k, v in n.items() if k not in _HASHES)
        elif isinstance(n, list | tuple):
            stack.extend(n)
        elif isinstance(n, bytes):
            out.append(n.decode("utf-8", "replace"))
    return out


def _json_strings(line: bytes) -> list[str]:
    """The strings of a JSON document (escapes read), or its text when it is none."""
    try:
        return _all_strings(json.loads(line))
    except ValueError:
        return [line.decode("utf-8", "replace")]


def _ids_in(strings: Iterator[str] | list[str], pool: set[str]) -> set[str]:
    """The numbers of ``pool`` written in the strings, however typed (the normalisation
    of domain.md section 5, separators dropped)."""
    found = set()
    for s in strings:
        if len(s) < 18 or len(_DIGIT.findall(s)) < 17:
            continue
        flat = number_view(s).replace(SEPARATOR, "")
        found.update(m.group(1) for m in _RID_RUN.finditer(flat) if m.group(1) in pool)
    return found


class Verbatim:
    """The pool's numbers typed into VERBATIM fields of applied records, which keep them as
    typed by design (docs/privacy.md); read only when a scan finds a number."""

    def __init__(self, pool: set[str]) -> None:
        self.pool = pool
        self.pending: list[bytes] = []
        self.found: set[str] = set()

    def add(self, value: bytes) -> None:
        self.pending.append(value)

    def allowed(self) -> set[str]:
        for value in self.pending:
            self.found |= _ids_in(list(_verbatim_strings(CODEC.decode(value))), self.pool)
        self.pending.clear()
        return self.found


def _assert_no_leak(strings: list[str], pool: set[str], verbatim: Verbatim,
                    where: str) -> None:
    leaked = _ids_in(strings, pool)
    if leaked:
        leaked -= verbatim.allowed()
    if leaked:
        shown = [s[:300] for s in strings if _ids_in([s], leaked)]
        raise AssertionError(f"plaintext resident ID numbers in {where}: {leaked} in {shown}")


def _verbatim_strings(node: Any, inside: bool = False) -> Iterator[str]:
    """Strings of VERBATIM fields (kept as typed, docs/privacy.md) at any depth."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _verbatim_strings(v, inside or k in VERBATIM)
    elif isinstance(node, list | tuple):
        for v in node:
            yield from _verbatim_strings(v, inside)
    elif isinstance(node, str) and inside:
        yield node


def _pool_of(events: list[dict[str, Any]], extra: list[str]) -> set[str]:
    pool = {normalise_number(x) for x in extra}
    for e in events:
        for s in _all_strings(e):
            n = normalise_number(s)
            if len(n) == 18 and is_valid_resident_id(n):
                pool.add(n)
    return {p for p in pool if len(p) == 18}


@dataclass
class RoundResult:
    records: int = 0
    outcomes: Counter[tuple[str, str, str | None]] | None = None
    materials: int = 0
    index_records: int = 0


def _fail(fuzz: Fuzz, why: str) -> AssertionError:
    return AssertionError(f"{why}\n  record: {fuzz.describe()}")


def _first_crash(proc: CaseProcessor, batch: list[Fuzz],
                 store: dict[str, bytes]) -> tuple[Fuzz, BaseException] | None:
    """The record that makes ``process`` raise, fed one at a time from ``store``."""
    for f in batch:
        try:
            res = proc.process([f.rec], lambda c, _r: store.get(c))
        except Exception as exc:  # reported by the caller
            return f, exc
        for cid, (state, _r) in res.states.items():
            store[cid] = state
    return None


def _check_batch(batch: list[Fuzz], res: Any, pool: set[str], verbatim: Verbatim,
                 outcomes: Counter[tuple[str, str, str | None]]) -> list[OutRecord]:
    """Every invariant of one batch; returns its activity records."""
    assert len(res.tallies) == len(batch), (len(res.tallies), len(batch))
    by_offset = {f.rec.offset: f for f in batch}
    tally_of: dict[int, tuple[str, str | None]] = {}
    for f, tally in zip(batch, res.tallies, strict=True):
        got = (tally.result, tally.reason)
        outcomes[(f.what, *got)] += 1
        if tally.result in (APPLIED, DUPLICATE):
            if tally.reason is not None:
                raise _fail(f, f"{tally.result} with a reason {tally.reason}")
        elif tally.result == DEAD_LETTERED:
            if tally.reason not in ALL_REASONS:
                raise _fail(f, f"dead-lettered with no reason of section 2: {tally.reason}")
        else:
            raise _fail(f, f"ends as {tally.result!r}")
        if f.expect is not None and got not in f.expect:
            raise _fail(f, f"ends {got}, expected one of {sorted(f.expect, key=str)}")
        tally_of[f.rec.offset] = got
    for o in res.outputs:
        size = len(o.value) + len(o.key or b"")
        assert size <= MAX_OUTPUT_BYTES, (o.topic, size)
    for cid, (state, _r) in res.states.items():
        assert len(state) + len(cid.encode()) <= MAX_OUTPUT_BYTES, (cid, len(state))
    dead_seen: Counter[int] = Counter()
    act_seen: Counter[int] = Counter()
    activities, state_cases = [], set()
    derived: list[str] = []
    for o in res.outputs:
        if o.topic == TOPICS.dead_letters:
            d = CODEC.decode_record(o.value, "DeadLetter")
            f = by_offset[d["source_offset"]]
            dead_seen[d["source_offset"]] += 1
            if tally_of[f.rec.offset] != (D, d["reason"]):
                raise _fail(f, f"dead letter {d['reason']} but tally {tally_of[f.rec.offset]}")
            if not (f.rec.value or b"").startswith(d["original"]) or (
                    d["original"] != (f.rec.value or b"") and "sha256" not in d["detail"]):
                raise _fail(f, "the dead letter does not keep the original bytes")
            assert (d["source_topic"], d["source_partition"]) == (f.rec.topic, f.rec.partition)
        elif o.topic == TOPICS.case_activity:
            a = CODEC.decode_record(o.value, "CaseActivity")
            act_seen[a["source_offset"]] += 1
            activities.append(o)
            derived.extend(_all_strings({k: v for k, v in a.items()
                                         if k not in ("event_json", "event")}))
            derived.extend(_all_strings(activity_event_json(CODEC, a)))
        elif o.topic == TOPICS.case_state:
            s = CODEC.decode_record(o.value, "CaseState")
            state_cases.add(s["case_id"])
            derived.extend(_all_strings(s))
        else:
            raise AssertionError(f"output on {o.topic}")
    for f in batch:
        result = tally_of[f.rec.offset][0]
        want_dead = 1 if result == D else 0
        if dead_seen[f.rec.offset] != want_dead or act_seen[f.rec.offset] != 1 - want_dead:
            raise _fail(f, f"{result} with {dead_seen[f.rec.offset]} dead letters and "
                           f"{act_seen[f.rec.offset]} activity records")
    assert state_cases == set(res.states), (state_cases, set(res.states))
    for state, _r in res.states.values():
        derived.extend(_all_strings(json.loads(state)))
    _assert_no_leak(derived, pool, verbatim, "derived records")
    return activities


def _run_round(seed: int, pools: Pools) -> RoundResult:
    builder = RoundBuilder(seed, pools)
    fuzz = builder.records(PER_ROUND)
    r = random.Random(seed + 1)
    proc = CaseProcessor(codec=CODEC, topics=TOPICS, departments=REGISTRY.codes,
                         counters=REGISTRY.counter_codes, calendar=CALENDAR, ids=IDS,
                         partitions=PARTITIONS, clock=lambda: NOW)
    originals = [CODEC.decode(f.rec.value) for f in fuzz if f.what == "original"]  # type: ignore[arg-type]
    pool = _pool_of(originals, builder.rids)
    store: dict[str, bytes] = {}
    outcomes: Counter[tuple[str, str, str | None]] = Counter()
    activities: list[OutRecord] = []
    verbatim = Verbatim(pool)
    i = 0
    while i < len(fuzz):
        batch = fuzz[i:i + r.choice([1, 7, 50, 200])]
        i += len(batch)
        before = dict(store)
        try:
            res = proc.process([f.rec for f in batch], lambda c, _r: store.get(c))
        except Exception as exc:
            crash = _first_crash(proc, batch, before)
            if crash is None:
                raise AssertionError(f"the batch raises, no record alone does: {exc!r}") \
                    from exc
            raise _fail(crash[0], f"an exception escaped: {crash[1]!r}") from crash[1]
        for f, tally in zip(batch, res.tallies, strict=False):
            if tally.result == APPLIED:
                verbatim.add(f.rec.value)  # type: ignore[arg-type]
        activities += _check_batch(batch, res, pool, verbatim, outcomes)
        for cid, (state, _rec) in res.states.items():
            store[cid] = state
    materials, index_records = _materials(activities, r, pool, verbatim)
    return RoundResult(len(fuzz), outcomes, materials, index_records)


def _mutated(value: bytes, r: random.Random) -> bytes:
    v = bytearray(value)
    roll = r.randrange(4)
    if roll == 0:
        for _ in range(r.randrange(1, 6)):
            v[r.randrange(len(v))] ^= 1 << r.randrange(8)
        return bytes(v)
    if roll == 1:
        return bytes(v[:r.randrange(len(v))])
    if roll == 2:
        at = r.randrange(len(v) + 1)
        return bytes(v[:at]) + r.randbytes(r.randrange(1, 8)) + bytes(v[at:])
    return r.randbytes(r.randrange(0, 64))


def _materials(activities: list[OutRecord], r: random.Random, pool: set[str],
               verbatim: Verbatim) -> tuple[int, int]:
    """The round's activity records (and a few corrupted ones) through the router, and
    its index records (and a few corrupted ones) through the indexer: each accounted for
    once, every output and bucket within the limit, no plaintext ID number."""
    router = MaterialRouter(codec=CODEC, index_topic=INDEX_TOPIC, ids=IDS)
    indexer = MaterialIndexer(codec=CODEC, links_topic=TOPICS.material_links,
                              clock=lambda: NOW)
    inputs = []
    for n, o in enumerate(activities):
        value = o.value if r.random() > 0.03 else _mutated(o.value, r)
        inputs.append(InRecord(TOPICS.case_activity, 0, n, o.key, value, 1_700_000_000_000))
    index: list[InRecord] = []
    for i in range(0, len(inputs), 50):
        batch = inputs[i:i + 50]
        routed = router.route(batch)
        assert len(routed.materials) + routed.other + len(routed.unreadable) == len(batch)
        for o in routed.outputs:
            assert len(o.value) + len(o.key or b"") <= MAX_OUTPUT_BYTES
            value = o.value if r.random() > 0.02 else _mutated(o.value, r)
            index.append(InRecord(INDEX_TOPIC, 0, len(index), o.key, value, None))
    store: dict[str, bytes] = {}
    derived: list[str] = []
    for i in range(0, len(index), 50):
        batch = index[i:i + 50]
        for rec in batch:
            derived.extend(_json_strings((rec.value or b"").partition(b"\t")[2]))
        try:
            res = indexer.process(batch, lambda k, _r: store.get(k))
        except Exception as exc:
            raise AssertionError(f"the indexer raised {exc!r} on a batch of "
                                 f"{[rec.value[:200] for rec in batch]}") from exc  # type: ignore[index]
        assert len(res.outcomes) + res.unreadable == len(batch)
        for o in res.outputs:
            assert len(o.value) + len(o.key or b"") <= MAX_OUTPUT_BYTES
            derived.extend(_all_strings(CODEC.decode_record(o.value, "MaterialLink")))
        for key, (bucket, _r) in res.buckets.items():
            assert len(bucket) + len(key.encode()) <= MAX_OUTPUT_BYTES
            store[key] = bucket
    for bucket in store.values():
        for line in bucket.split(b"\n"):
            derived.extend(_json_strings(line))
    _assert_no_leak(derived, pool, verbatim, "the materials step")
    return len(inputs), len(index)


# ----------------------------------------------------------------------------- the test

_ATOM = st.lists(st.one_of(st.characters(codec="utf-8"), st.sampled_from(_NASTY)),
                 max_size=16).map("".join)
_INSTANT = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                        timezones=st.builds(lambda m: timezone(timedelta(minutes=m)),
                                            st.integers(-23 * 60, 23 * 60)))
_NUMBER = st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-5, 100_000))


def test_every_fuzzed_record_ends_applied_duplicate_or_dead_lettered() -> None:
    totals: Counter[tuple[str, str, str | None]] = Counter()
    counts = Counter[str]()

    @settings(max_examples=ROUNDS, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(seed=st.integers(0, 2**32 - 1),
           atoms=st.lists(_ATOM, min_size=12, max_size=12),
           instants=st.lists(_INSTANT, min_size=4, max_size=4),
           numbers=st.lists(_NUMBER, min_size=6, max_size=6))
    def one_round(seed: int, atoms: list[str], instants: list[datetime],
                  numbers: list[int]) -> None:
        result = _run_round(seed, Pools(atoms, instants, numbers))
        counts["records"] += result.records
        counts["rounds"] += 1
        counts["activity records to the router"] += result.materials
        counts["index records to the indexer"] += result.index_records
        totals.update(result.outcomes)

    one_round()
    assert counts["rounds"] == ROUNDS
    assert counts["records"] >= REQUIRED, counts
    # the fuzz reaches every outcome and every reason a record can be given
    reasons = {reason for (_what, _result, reason) in totals if reason is not None}
    assert reasons == set(ALL_REASONS) - {OUTPUT_FAILED}, reasons
    results = Counter(result for (_w, result, _r) in totals.elements())
    assert results[APPLIED] and results[DUPLICATE] and results[DEAD_LETTERED], results
    assert counts["index records to the indexer"] > 0, counts


def test_a_record_timestamp_no_datetime_holds_is_no_source_timestamp() -> None:
    """Found by the fuzz test: Kafka takes any 64-bit CreateTime, and one outside years 1
    to 9999 (microseconds written as milliseconds, Long.MAX_VALUE) raised OverflowError
    out of `CaseProcessor.process`, for ever on restart. It is carried as no timestamp."""
    proc = CaseProcessor(codec=CODEC, topics=TOPICS, departments=REGISTRY.codes,
                         counters=REGISTRY.counter_codes, calendar=CALENDAR, ids=IDS,
                         clock=lambda: NOW)
    acc = read_jsonl(RESTAURANT_EVENTS)[0]
    expected = {1_700_000_000_000_000: None, 2**63 - 1: None, -(2**63): None,
                -1: datetime(1969, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC),
                1_700_000_000_000: datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)}
    for offset, (ms, when) in enumerate(expected.items()):
        rec = InRecord(TOPICS.input("zwfw"), 0, offset, acc["case_id"].encode(),
                       CODEC.encode(acc), ms)
        res = proc.process([rec], lambda _c, _r: None)  # each time a new case: applied
        assert [t.result for t in res.tallies] == [APPLIED]
        assert {o.topic for o in res.outputs} == {TOPICS.case_activity, TOPICS.case_state}
        assert [CODEC.decode_record(o.value)["source_timestamp"] for o in res.outputs] \
            == [when, when]
