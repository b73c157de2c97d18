"""The upload's documented metadata: derived from the MaterialSubmitted schema with what the
gateway computes left optional; the Chinese and English examples are metadata that the
gateway turns into valid events."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import jsonschema_rs

from gateway.openapi import MATERIAL_EXAMPLES, material_schemas, materials_request_body
from gateway.uploads import Upload, material_event
from onewindow.codec import get_codec
from onewindow.departments import load_registry
from onewindow.domain.validation import validate
from onewindow.material_files import FileFacts

METADATA = material_schemas(get_codec())["MaterialMetadata"]


def test_the_computed_fields_and_the_name_are_optional() -> None:
    required = set(METADATA["required"])
    assert not required & {"type", "name", "sha256", "size_bytes", "pages"}
    assert {"event_id", "case_id", "material_id", "holder", "occurred_at"} <= required
    assert METADATA["additionalProperties"] is False


def test_the_examples_become_valid_events() -> None:
    body = materials_request_body()["content"]["multipart/form-data"]
    assert set(body["examples"]) == {"zh", "en"} == set(MATERIAL_EXAMPLES)
    assert body["schema"]["required"] == ["metadata", "file"]
    assert "营业执照" in MATERIAL_EXAMPLES["zh"][0]
    registry = load_registry()
    facts = FileFacts("ab" * 32, 1000, 2, "pdf")
    for _summary, meta in MATERIAL_EXAMPLES.values():
        assert jsonschema_rs.validator_for(METADATA).is_valid(meta)
        raw = material_event(Upload(json.dumps(meta, ensure_ascii=False).encode(), "x.pdf",
                                    facts))
        event = get_codec().from_json(raw.value)
        assert validate(event, topic_department="scjgj", departments=registry.codes,
                        counters=registry.counter_codes, now=datetime.now(UTC)) is None
