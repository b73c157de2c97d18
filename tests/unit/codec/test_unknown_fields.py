"""The JSON form refuses a field its schema does not have, also when optional fields are
left out (the check once compared counts, so an unknown field hid behind an omitted
optional one: `{"colour": ...}` on a TaskUpdated without `note` passed)."""

from __future__ import annotations

import pytest

from onewindow.codec import from_json
from onewindow.errors import DecodeError

TASK = {"type": "TaskUpdated", "event_id": "e1", "case_id": "GZ1", "department": "scjgj",
        "occurred_at": "2026-03-02T09:15:00+08:00", "task_id": "t", "status": "RECEIVED"}


def test_an_unknown_field_is_refused_with_optional_fields_omitted() -> None:
    assert from_json(TASK)["note"] is None
    with pytest.raises(DecodeError, match="^colour: unknown field"):
        from_json(TASK | {"colour": "red"})
    holder = {"id_type": "OTHER", "id_number": "X1", "name": "n", "extra": 1}
    material = TASK | {"type": "MaterialSubmitted", "material_id": "m", "material_type": "T",
                       "name": "n", "holder": holder, "sha256": "0" * 64, "pages": 1,
                       "size_bytes": 1, "form": "COPY", "declared_fields": {}}
    del material["task_id"], material["status"]
    with pytest.raises(DecodeError, match=r"^holder\.extra: unknown field"):
        from_json(material)
