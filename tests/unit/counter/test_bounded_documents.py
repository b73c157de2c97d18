"""Issue 13: a holder's documents are bounded in the answer, whatever the holder has.

A holder who handed in one licence ``COPIES`` times (star-linked SAME_DOCUMENT, as many
links as copies, twelve of them in CONFLICT with another holder's record) and ``SINGLES``
other documents. ``/api/holders/materials`` and the case card listed every submission of
every document (the card 100 documents a holder), and loaded every material's declared
fields to do it. Now each document lists its newest DOCUMENT_SUBMISSIONS submissions and
first DOCUMENT_CONFLICTS conflicts with the totals, a card CARD_DOCUMENTS documents a
holder, newest first; so the answer's size is a bound per listed document, and the access
log still records each read. On SQLite and PostgreSQL (``database_url``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from counter.app import create_app
from counter.present import CARD_DOCUMENTS, DOCUMENT_CONFLICTS, DOCUMENT_SUBMISSIONS
from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.domain.limits import MAX_DECLARED_VALUE_CHARS
from onewindow.read_model.engine import make_engine
from onewindow.topics import Topics
from tests.read_model_support import case_outputs, load_model
from tests.unit.counter.helpers import Clock
from tests.unit.domain.helpers import VALID_USCC, accepted

COPIES = 1_000  # of one licence
SINGLES = 70  # other documents, one submission each
CASES = 10  # the copies spread over them (a case's fold is bounded)
CONFLICTS = 12
#: what one listed document may take, with its capped lists and ordinary field sizes
DOC_BYTES = 3_500
T0 = datetime(2025, 9, 1, 2, 0, tzinfo=UTC)
HOLDER = {"id_type": "USCC", "id_number": VALID_USCC, "name": "广州花城餐饮管理有限公司"}
EXPANDING = "single-00"  # its 40 declared values NFKC makes 18 times longer


def _material(mid: str, case_id: str, at: datetime, number: str,
              fields: dict[str, str] | None = None) -> dict[str, Any]:
    return {"type": "MaterialSubmitted", "event_id": f"ev-{mid}", "case_id": case_id,
            "department": "scjgj", "occurred_at": at, "material_id": mid,
            "material_type": "LICENSE", "name": "营业执照", "holder": HOLDER,
            "document_number": number, "sha256": (mid.encode().hex() * 64)[:64],
            "pages": 1, "size_bytes": 1000, "form": "COPY",
            "declared_fields": fields or {"名称": "广州花城餐饮"}, "task_id": None}


def _copy(i: int) -> str:
    return f"copy-{i:04d}"


@cache  # the same records for every test and database (the case-state step is pure)
def _records(prefix: str) -> list[tuple[str, bytes]]:
    topics = Topics(prefix)
    events = [accepted(f"acc-{c}", "2025-08-30 10:00", case_id=f"BIGH-{c}")
              for c in range(CASES)]
    for i in range(SINGLES):  # older than the copies
        fields = ({f"f{k:02d}": "\ufdfa" * MAX_DECLARED_VALUE_CHARS for k in range(40)}
                  if i == 0 else None)
        events.append(_material(f"single-{i:02d}", "BIGH-0", T0 + timedelta(minutes=i),
                                f"JY-S{i:02d}", fields))
    for i in range(COPIES):  # the newest materials: the licence is the newest document
        events.append(_material(_copy(i), f"BIGH-{i % CASES}",
                                T0 + timedelta(hours=2, minutes=i), "JY-BIG"))
    codec = get_codec()
    found = datetime(2025, 10, 1, tzinfo=UTC)
    links = [{"material_a": _copy(0), "material_b": _copy(i), "verdict": "SAME_DOCUMENT",
              "differing_fields": [], "holders_differ": False,
              "avoidable_material": _copy(i), "case_a": "BIGH-0",
              "case_b": f"BIGH-{i % CASES}", "found_at": found, "source_timestamp": None}
             for i in range(1, COPIES)]
    links += [{"material_a": _copy(i), "material_b": f"other-{i:02d}", "verdict": "CONFLICT",
               "differing_fields": ["名称"], "holders_differ": True,
               "avoidable_material": None, "case_a": f"BIGH-{i % CASES}", "case_b": "X",
               "found_at": found, "source_timestamp": None} for i in range(CONFLICTS)]
    return case_outputs(events, topics) + [
        (topics.material_links, codec.encode_record("MaterialLink", r)) for r in links]


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2025, 10, 2, 6, 0, tzinfo=UTC))


@pytest.fixture
def app(engine: Engine, topics: Topics, settings: Settings, clock: Clock) -> FastAPI:
    load_model(engine, topics, _records(topics.prefix), settings, batch=500)
    return create_app(settings, engine=make_engine(settings.database_url), clock=clock)


def _licence(doc: dict[str, Any]) -> None:
    """The licence handed in COPIES times, as listed: its newest submissions (oldest
    first) and first conflicts, with the totals."""
    assert doc["first_material_id"] == _copy(0)
    assert doc["times_submitted"] == COPIES and doc["avoidable_submissions"] == COPIES - 1
    assert [s["material_id"] for s in doc["submissions"]] == [
        _copy(i) for i in range(COPIES - DOCUMENT_SUBMISSIONS, COPIES)]
    assert doc["conflicts_total"] == CONFLICTS
    assert [c["material_id"] for c in doc["conflicts"]] == [
        _copy(i) for i in range(DOCUMENT_CONFLICTS)]
    assert doc["conflicts"][0] == {"material_id": _copy(0), "conflicts_with": "other-00",
                                   "differing_fields": ["名称"], "holders_differ": True}


def test_a_holders_documents_are_listed_newest_first_with_their_totals(client) -> None:
    holder = {"id_type": "USCC", "id_number": VALID_USCC}
    r = client.post("/api/holders/materials", params={"limit": 20}, json=holder)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total_documents"] == SINGLES + 1 and body["next_offset"] == 20
    docs = body["documents"]
    assert len(docs) == 20
    _licence(docs[0])
    assert [d["first_material_id"] for d in docs[1:]] == [
        f"single-{i:02d}" for i in range(SINGLES - 1, SINGLES - 20, -1)]
    r = client.post("/api/holders/materials", params={"limit": 500}, json=holder)
    docs = r.json()["documents"]
    assert len(docs) == SINGLES + 1 and r.json()["next_offset"] is None
    assert docs[:20] == body["documents"]  # the first page, then the rest
    assert docs[-1]["first_material_id"] == EXPANDING
    # a bound per listed document (every submission listed: ~285 KB, 230 KB the licence)
    assert len(json.dumps(docs[0], ensure_ascii=False).encode()) <= DOC_BYTES
    assert len(r.content) <= len(docs) * DOC_BYTES, len(r.content)


def test_the_case_card_lists_a_holders_newest_documents(client) -> None:
    r = client.get("/api/cases/BIGH-0/card")
    assert r.status_code == 200
    card = r.json()
    (holder,) = card["holders"]
    assert holder["is_applicant"] and holder["total_documents"] == SINGLES + 1
    assert len(holder["documents"]) == CARD_DOCUMENTS
    licence = holder["documents"][0]
    _licence(licence)
    assert licence["in_this_case"] and licence["reusable"] is False  # it has conflicts
    # every copy of this case after the first is avoidable, listed or not
    assert card["avoidable_submissions"] == COPIES // CASES - 1
    assert card["conflicts"] == CONFLICTS
    # the card listed 100 documents a holder, every submission of each: ~290 KB
    assert len(r.content) <= CARD_DOCUMENTS * DOC_BYTES + 5_000, len(r.content)


def test_a_material_returns_its_values_as_sent(client) -> None:
    r = client.get(f"/api/materials/{EXPANDING}")
    assert r.status_code == 200
    fields = r.json()["declared_fields"]
    assert set(fields.values()) == {"\ufdfa" * MAX_DECLARED_VALUE_CHARS}
    # 40 values of 2,000 characters of 3 bytes; their NFKC form made a 2.6 MB answer
    assert len(r.content) < 40 * MAX_DECLARED_VALUE_CHARS * 3 + 5_000


def test_the_reads_are_in_the_access_log(client, user_client) -> None:
    holder = {"id_type": "USCC", "id_number": VALID_USCC}
    assert client.post("/api/holders/materials", json=holder).status_code == 200
    assert client.get("/api/cases/BIGH-0/card").status_code == 200
    auditor = user_client("auditor", name="auditor1")
    rows = auditor.post("/api/access-log/query", json={"holder": holder}).json()["items"]
    assert [(r["name"], r["action"], r["detail"]) for r in rows
            if r["action"] == "holder.documents"] == [
        ("staff", "holder.documents", "on the case card of BIGH-0"),
        ("staff", "holder.documents", f"{SINGLES + 1} documents")]
    assert VALID_USCC not in json.dumps(rows)
