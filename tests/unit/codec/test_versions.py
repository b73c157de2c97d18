"""Every released schema version stays decodable, and new versions must be compatible."""

from __future__ import annotations

import copy
import io
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastavro import schemaless_reader
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onewindow.codec import Codec, SchemaRegistryError, check_backward_compatible, get_codec

from .helpers import SCHEMA_DIR, example_objects, records

ENGINES = ["apache", "builtin"]


def _old_versions() -> list[tuple[str, int]]:
    c = get_codec()
    return [(n, v.version) for n in c.names for v in c.versions(n)]


@pytest.mark.parametrize("engine", ENGINES)
def test_latest_reads_every_older_version(engine: str) -> None:
    assert get_codec().compatibility_problems(engine=engine) == []


@pytest.mark.parametrize("name,version", _old_versions())
@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_data_of_every_version_decodes_with_the_latest(name: str, version: int, data) -> None:
    c = get_codec()
    sv = next(v for v in c.versions(name) if v.version == version)
    record = data.draw(records(sv.parsed))
    encoded = c.encode_record(name, record, version=version)
    assert encoded[2:10] == sv.fingerprint
    decoded = c.decode_record(encoded)
    assert decoded["type"] == name
    latest_fields = {f["name"] for f in c.latest(name).schema["fields"]}
    assert set(decoded) == latest_fields | {"type"}
    for key in latest_fields & set(record):
        assert _resolved(record[key], decoded[key]), key


def _resolved(written: object, read: object) -> bool:
    """``read`` is ``written`` as a newer version resolves it: nested records may have
    gained fields (filled with their defaults) or lost some (dropped)."""
    if isinstance(written, dict) and isinstance(read, dict):
        return all(_resolved(v, read[k]) for k, v in written.items() if k in read)
    if isinstance(written, list) and isinstance(read, list):
        return len(written) == len(read) and all(map(_resolved, written, read))
    return written == read


def _task_updated() -> dict:
    return json.loads((SCHEMA_DIR / "TaskUpdated.v1.avsc").read_text(encoding="utf-8"))


def _with_field(schema: dict, field: dict) -> dict:
    new = copy.deepcopy(schema)
    new["fields"].append(field)
    return new


@pytest.mark.parametrize("engine", ENGINES)
def test_compatible_candidates_pass(engine: str) -> None:
    old = _task_updated()
    optional = _with_field(old, {"name": "channel", "type": ["null", "string"], "default": None})
    assert check_backward_compatible(optional, old, engine=engine) == []
    more_symbols = copy.deepcopy(old)
    status = next(f for f in more_symbols["fields"] if f["name"] == "status")
    status["type"]["symbols"].append("TRANSFERRED")
    assert check_backward_compatible(more_symbols, old, engine=engine) == []
    dropped = copy.deepcopy(old)
    dropped["fields"] = [f for f in dropped["fields"] if f["name"] != "note"]
    assert check_backward_compatible(dropped, old, engine=engine) == []


@pytest.mark.parametrize("engine", ENGINES)
def test_incompatible_candidates_fail(engine: str) -> None:
    old = _task_updated()
    required = _with_field(old, {"name": "priority", "type": "int"})  # no default
    problems = check_backward_compatible(required, old, engine=engine)
    assert problems and any("priority" in p for p in problems)
    fewer_symbols = copy.deepcopy(old)
    status = next(f for f in fewer_symbols["fields"] if f["name"] == "status")
    status["type"]["symbols"].remove("WITHDRAWN")
    assert check_backward_compatible(fewer_symbols, old, engine=engine)
    retyped = copy.deepcopy(old)
    next(f for f in retyped["fields"] if f["name"] == "task_id")["type"] = "int"
    assert check_backward_compatible(retyped, old, engine=engine)


def _copy_schemas(tmp_path: Path) -> Path:
    target = tmp_path / "avro"
    shutil.copytree(SCHEMA_DIR, target)
    return target


def test_a_compatible_v2_reads_v1_data(tmp_path: Path) -> None:
    directory = _copy_schemas(tmp_path)
    v2 = _with_field(_task_updated(), {"name": "channel", "type": ["null", "string"],
                                       "default": None})
    (directory / "TaskUpdated.v2.avsc").write_text(json.dumps(v2), encoding="utf-8")
    c = Codec.load(directory)
    assert [v.version for v in c.versions("TaskUpdated")] == [1, 2]
    v1_data = get_codec().encode({
        "type": "TaskUpdated", "event_id": "e", "case_id": "c", "department": "gaj",
        "occurred_at": datetime(2026, 1, 1, tzinfo=UTC),
        "task_id": "t", "status": "RECEIVED", "officer": None, "note": None,
    })
    event = c.decode(v1_data)
    assert event["channel"] is None and event["status"] == "RECEIVED"
    # New data is written with v2, which the old registry does not know.
    v2_data = c.encode(event)
    assert v2_data[2:10] == c.latest("TaskUpdated").fingerprint != v1_data[2:10]


def test_loading_refuses_an_incompatible_version(tmp_path: Path) -> None:
    directory = _copy_schemas(tmp_path)
    bad = _with_field(_task_updated(), {"name": "priority", "type": "int"})
    (directory / "TaskUpdated.v2.avsc").write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(SchemaRegistryError, match="priority"):
        Codec.load(directory)


def test_loading_refuses_misnamed_files(tmp_path: Path) -> None:
    directory = _copy_schemas(tmp_path)
    (directory / "TaskUpdated.v2.avsc").write_text(
        (SCHEMA_DIR / "CaseWithdrawn.v1.avsc").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(SchemaRegistryError, match="file is named TaskUpdated"):
        Codec.load(directory)
    (directory / "TaskUpdated.v2.avsc").unlink()
    (directory / "TaskUpdated-2.avsc").write_text("{}", encoding="utf-8")
    with pytest.raises(SchemaRegistryError, match="named <Name>.v<N>.avsc"):
        Codec.load(directory)


def test_old_readers_map_a_new_channel_or_id_type_to_other(tmp_path: Path) -> None:
    # Forward compatibility: Channel and IdType carry an enum default (OTHER), so a
    # consumer still on v1 reads a symbol added later instead of failing.
    directory = _copy_schemas(tmp_path)
    v2 = json.loads((SCHEMA_DIR / "CaseAccepted.v1.avsc").read_text(encoding="utf-8"))
    channel = next(f for f in v2["fields"] if f["name"] == "channel")
    channel["type"]["symbols"].append("WECHAT")
    (directory / "CaseAccepted.v2.avsc").write_text(json.dumps(v2), encoding="utf-8")
    new = Codec.load(directory)
    event = new.from_json({**example_objects()[0], "channel": "WECHAT"})
    data = new.encode(event)
    # A consumer still on v1 reads the v2 bytes into its v1 schema:
    v1 = get_codec().latest("CaseAccepted")
    body = io.BytesIO(data[10:])
    read = schemaless_reader(body, new.latest("CaseAccepted").parsed, v1.parsed)
    assert read["channel"] == "OTHER"
    assert new.decode(data)["channel"] == "WECHAT"
