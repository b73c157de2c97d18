"""The read model stores declared values as the department sent them (issue 13).

It stored their normalised form, which NFKC can make 18 times longer: one valid
MaterialSubmitted with 40 values of 2,000 x U+FDFA made a 2.6 MB row, and the counter's
``GET /api/materials/{id}`` returned it. A clerk reads the values; the material rules,
which compare them normalised, never read the row. So the row holds each value as sent,
less its format characters and extra white space
(:func:`onewindow.domain.normalise.display_value`), ID numbers in it masked: at most the
2,000 characters of domain.md section 2, and the same from a protected and a plain
record."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from onewindow.codec import get_codec
from onewindow.domain.limits import MAX_DECLARED_VALUE_CHARS, event_oversize
from onewindow.security.id_protection import IdProtector
from onewindow_cli.bench.materials import activity_value
from sinks.rows import RowMaker

CODEC = get_codec()
IDS = IdProtector("unit-test-id-hash-key-0123456789abcdef")
RID = "440106198503121237"
T0 = datetime(2025, 3, 3, 1, 0, tzinfo=UTC)


def _event(fields: dict[str, str]) -> dict[str, Any]:
    ev = {"type": "MaterialSubmitted", "event_id": "ev-1", "case_id": "C-1",
          "department": "scjgj", "occurred_at": T0, "material_id": "m-1",
          "material_type": "LICENSE", "name": "营业执照",
          "holder": {"id_type": "RESIDENT_ID", "id_number": RID, "name": "陈静"},
          "document_number": "JY1", "sha256": "a" * 64, "pages": 1, "size_bytes": 1,
          "form": "COPY", "declared_fields": fields, "task_id": None}
    assert event_oversize(ev, ev["type"]) is None  # a valid record
    return ev


def _row(ev: dict[str, Any], ids: IdProtector | None) -> dict[str, Any]:
    rec = CODEC.decode_record(activity_value(CODEC, ev, ids=ids), "CaseActivity")
    rec.update(source_topic="act", source_partition=0, source_offset=0)
    _entry, material = RowMaker(CODEC, IDS).activity_rows(rec)
    assert material is not None
    return material


def test_values_are_stored_as_sent_and_bounded() -> None:
    fields = {f"scope{k:02d}": "\ufdfa" * MAX_DECLARED_VALUE_CHARS for k in range(40)}
    fields |= {
        "name": "\u200b陈\u200d静\u3000 ",  # invisible characters and white space
        "width": "ＡＢ１（甲）",  # shown as typed, not NFKC'd
        "legal_rep": "身份证 ４４０１０６\u200b19850312 1237",  # an ID number, typed oddly
    }
    ev = _event(fields)
    protected, plain = _row(ev, IDS), _row(ev, None)
    assert protected == plain
    stored = json.loads(protected["declared_fields"])
    assert stored["scope00"] == "\ufdfa" * MAX_DECLARED_VALUE_CHARS  # one character each
    assert stored["name"] == "陈静" and stored["width"] == "ＡＢ１（甲）"
    assert RID not in json.dumps(stored) and "1237" not in stored["legal_rep"]
    assert stored["legal_rep"].startswith("身份证 ")
    size = len(protected["declared_fields"].encode("utf-8"))
    sent = sum(len(k) + len(v) for k, v in fields.items()) * 3  # UTF-8: 3 bytes each
    assert size <= sent + 10 * len(fields)  # the JSON's quotes, colons and commas
    assert size < 300_000  # was 2.64 MB
