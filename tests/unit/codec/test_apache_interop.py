"""Any Avro implementation reads our values, and we read theirs: checked with Apache Avro.

Apache Avro's Python package (1.12) keeps ``{"type":"long"}`` for a logical-typed
primitive in the Parsing Canonical Form, where the specification's [STRIP] rule (and Java,
and fastavro) give ``"long"``. Our headers carry the specification's fingerprint; the
registry also accepts the Apache-Python variant as an alias. Both are checked here.
"""

from __future__ import annotations

import io
import json

import avro.io
import avro.schema
import pytest
from avro.schema import _crc_64_fingerprint

from onewindow import codec
from onewindow.codec import get_codec
from onewindow.codec.canonical import canonical_form

from .helpers import SCHEMA_DIR, example_objects
from .test_roundtrip import OUTPUT_SAMPLES

SCHEMA_FILES = sorted(SCHEMA_DIR.glob("*.avsc"))


def _apache(path) -> avro.schema.Schema:
    return avro.schema.parse(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.name)
def test_fingerprint_matches_apache_crc64_of_the_canonical_form(path) -> None:
    sv = next(v for n in get_codec().names for v in get_codec().versions(n) if v.path == path)
    apache_form = _apache(path).canonical_form
    # Same canonical form once Apache's {"type":"long"} / {"type":"int"} is simplified.
    simplified = apache_form.replace('{"type":"long"}', '"long"').replace('{"type":"int"}', '"int"')
    assert sv.canonical_form == simplified
    assert canonical_form(json.loads(path.read_text())) == sv.canonical_form
    # Apache's CRC-64-AVRO of our form is our header's fingerprint.
    assert _crc_64_fingerprint(sv.canonical_form.encode("utf-8")) == sv.fingerprint
    # And what Apache computes from its own form is accepted as an alias.
    assert _apache(path).fingerprint() in (sv.fingerprint, *sv.alias_fingerprints)
    assert get_codec().by_fingerprint(_apache(path).fingerprint()) is sv


def test_crc64_known_vector() -> None:
    # The Avro specification's test vector: CRC-64-AVRO("null") = 7195948357588979594.
    assert int.from_bytes(codec.crc64_fingerprint('"null"'), "little") == 7195948357588979594


def _samples() -> list[tuple[str, dict]]:
    events = [(o["type"], codec.from_json(o)) for o in example_objects()]
    events.append(("CaseWithdrawn", codec.from_json({
        "type": "CaseWithdrawn", "event_id": "e", "case_id": "c", "department": "zwfw",
        "occurred_at": "2026-01-01T00:00:00.001+08:00", "reason": "申请人撤回"})))
    return events + [(n, {**r, "type": n}) for n, r in OUTPUT_SAMPLES.items()]


@pytest.mark.parametrize("name,record", _samples(), ids=lambda x: x if isinstance(x, str) else "")
def test_apache_avro_reads_what_we_write(name: str, record: dict) -> None:
    sv = get_codec().latest(name)
    data = codec.encode_record(name, {k: v for k, v in record.items() if k != "type"})
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == _crc_64_fingerprint(sv.canonical_form.encode("utf-8"))
    reader = avro.io.DatumReader(_apache(sv.path))
    decoded = reader.read(avro.io.BinaryDecoder(io.BytesIO(data[10:])))
    assert decoded == {k: v for k, v in record.items() if k != "type"}


@pytest.mark.parametrize("name,record", _samples(), ids=lambda x: x if isinstance(x, str) else "")
@pytest.mark.parametrize("fingerprint_of", ["specification", "apache-python"])
def test_we_read_what_apache_avro_writes(name: str, record: dict, fingerprint_of: str) -> None:
    sv = get_codec().latest(name)
    schema = _apache(sv.path)
    if fingerprint_of == "apache-python":
        fp = schema.fingerprint()  # its own canonical form, with {"type":"long"}
    else:
        fp = _crc_64_fingerprint(sv.canonical_form.encode("utf-8"))
    buf = io.BytesIO()
    buf.write(b"\xc3\x01" + fp)
    avro.io.DatumWriter(schema).write(
        {k: v for k, v in record.items() if k != "type"}, avro.io.BinaryEncoder(buf)
    )
    assert codec.decode_record(buf.getvalue()) == record
