"""Helpers for the read-model tests of both tiers: the expected API answers from the pure
fold and the pure link rules, model dumps for equality, and the plaintext-ID scan."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, String, Text, select

from onewindow.calendar_source import load_calendar
from onewindow.codec import format_timestamp, get_codec
from onewindow.departments import load_registry
from onewindow.domain.case import fold, project
from onewindow.domain.deadline import sla_status
from onewindow.domain.identifiers import mask_id
from onewindow.domain.materials import (
    AVOIDING_VERDICTS,
    MATERIAL_SUBMITTED,
    all_links,
    avoidable_set,
    material_from_event,
    order_key,
)
from onewindow.domain.normalise import normalise_number
from onewindow.read_model.tables import metadata
from onewindow.security.id_protection import IdProtector
from onewindow.topics import Topics
from sinks.ingest import Ingestor
from sinks.rows import Batch, RowMaker
from sinks.unit_of_work import write_batch
from stream_apps.case_processor import CaseProcessor
from stream_apps.records import InRecord

#: columns that describe delivery (when a row was committed), not content
DELIVERY_COLUMNS = frozenset({"recorded_at", "updated_at"})

MATERIAL_TYPES = ("MaterialSubmitted", "CertificateIssued")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    codec = get_codec()
    return [codec.loads_json_line(line) for line in path.read_text().splitlines() if line]


def write_jsonl(path: Path, events: Iterable[dict[str, Any]]) -> Path:
    codec = get_codec()
    with path.open("w", encoding="utf-8") as f:
        for e in events:
            f.write(json.dumps(codec.to_json(e), ensure_ascii=False) + "\n")
    return path


# ------------------------------------------------------------------ expected answers


def _ts(v: datetime | None) -> str | None:
    return None if v is None else format_timestamp(v)


def expected_case(view: dict[str, Any], now: datetime, calendar: Any) -> dict[str, Any]:
    """The API answer for a projected case view (independent of the counter's code)."""
    a = view["applicant"]
    return {
        "case_id": view["case_id"], "status": view["status"], "version": view["version"],
        "service_code": view["service_code"], "service_name": view["service_name"],
        "case_kind": view["case_kind"], "channel": view["channel"],
        "window_id": view["window_id"],
        "accepted_at": _ts(view["accepted_at"]),
        "due_date": None if view["due_date"] is None else view["due_date"].isoformat(),
        "due_at": _ts(view["due_at"]), "due_provisional": view["due_provisional"],
        "paused_since": _ts(view["paused_since"]), "closed_at": _ts(view["closed_at"]),
        "sla_status": sla_status(view, now, calendar),
        "applicant": None if a is None else {
            "kind": a["kind"], "id_type": a["id_type"], "id_masked": mask_id(a["id_number"]),
            "name": a["name"]},
        "promise": view["promise"],
        "tasks_total": len(view["tasks"]),
        "task_counts": dict(Counter(t["status"] for t in view["tasks"])),
        "tasks": [{"task_id": t["task_id"], "department": t["department"], "name": t["name"],
                   "status": t["status"], "updated_at": _ts(t["updated_at"])}
                  for t in view["tasks"]],
    }


def expected_views(cases: Sequence[Sequence[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    cal = load_calendar()
    return {c[0]["case_id"]: project(fold(c), cal) for c in cases}


def group_by_case(events: Iterable[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    by: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by.setdefault(e["case_id"], []).append(e)
    return list(by.values())


def expected_links(events: Iterable[dict[str, Any]]
                   ) -> tuple[dict[tuple[str, str], str], set[str]]:
    """The pure link rules: {(a, b): verdict} and the avoidable material ids."""
    mats = {}
    for e in events:
        if e["type"] in MATERIAL_TYPES:
            m = material_from_event(e)
            mats[m.material_id] = m
    links = {(lk.material_a, lk.material_b): str(lk.verdict) for lk in all_links(mats.values())}
    return links, avoidable_set(mats.values())


def link_records(events: Iterable[dict[str, Any]],
                 found_at: datetime | None = None) -> list[dict[str, Any]]:
    """MaterialLink records as the materials app would emit them, from the pure rules."""
    mats = {}
    for e in events:
        if e["type"] in MATERIAL_TYPES:
            m = material_from_event(e)
            mats[m.material_id] = m
    found_at = found_at or datetime(2026, 1, 1, tzinfo=UTC)
    out = []
    for lk in sorted(all_links(mats.values()), key=lambda x: (x.material_a, x.material_b)):
        a, b = mats[lk.material_a], mats[lk.material_b]
        avoid = None
        if lk.verdict in AVOIDING_VERDICTS and a.holder.key == b.holder.key:
            newer = a if order_key(a) > order_key(b) else b
            avoid = newer.material_id if newer.kind == MATERIAL_SUBMITTED else None
        out.append({"material_a": lk.material_a, "material_b": lk.material_b,
                    "verdict": str(lk.verdict), "differing_fields": list(lk.differing_fields),
                    "holders_differ": lk.holders_differ, "avoidable_material": avoid,
                    "case_a": a.case_id, "case_b": b.case_id, "found_at": found_at,
                    "source_timestamp": None})
    return out


# ------------------------------------------------------------------ the pure pipeline


#: The ID hash key of the unit tests' settings (tests/unit/conftest.py).
UNIT_TEST_KEY = "unit-test-id-hash-key-0123456789abcdef"


def case_outputs(events: Iterable[dict[str, Any]], topics: Topics,
                 ts_ms: int = 1_700_000_000_000, *,
                 ids: IdProtector | None = None) -> list[tuple[str, bytes]]:
    """(topic, value) of every output record the case-state step gives for ``events``
    (the stream app's own code, without Kafka). ``ids``: the key the stream app hashes
    ID numbers with, which must be the sink's (default: :data:`UNIT_TEST_KEY`)."""
    codec = get_codec()
    registry = load_registry()
    proc = CaseProcessor(codec=codec, topics=topics, departments=registry.codes,
                         counters=registry.counter_codes, calendar=load_calendar(),
                         ids=ids or IdProtector(UNIT_TEST_KEY))
    store: dict[str, bytes] = {}
    out: list[tuple[str, bytes]] = []
    for i, e in enumerate(events):
        rec = InRecord(topics.input(e["department"]), 0, i, e["case_id"].encode(),
                       codec.encode(e), ts_ms + i)
        res = proc.process([rec], lambda cid, _r: store.get(cid))
        for cid, (state, _) in res.states.items():
            store[cid] = state
        out.extend((o.topic, o.value) for o in res.outputs)
    return out


def load_model(engine: Engine, topics: Topics, records: Sequence[tuple[str, bytes]],
               settings: Any, batch: int = 50, seed: int | None = None) -> None:
    """Write records through the sink's own ingest + unit of work, in batches (random
    batch sizes when ``seed`` is given)."""
    codec = get_codec()
    ing = Ingestor(topics, codec, RowMaker(codec, IdProtector.from_settings(settings)))
    rng = random.Random(seed)
    offsets: dict[str, int] = {}
    i = 0
    while i < len(records):
        n = rng.randint(1, 2 * batch) if seed is not None else batch
        b = Batch()
        for topic, value in records[i:i + n]:
            off = offsets.get(topic, 0)
            offsets[topic] = off + 1
            ing.add(b, topic, 0, off, value)
        with engine.begin() as conn:
            write_batch(conn, b)
        i += n


# ------------------------------------------------------------------ model dumps and scans


def dump_model(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows (without delivery columns), sorted: equal dumps, equal models."""
    out = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            cols = [c for c in table.columns if c.name not in DELIVERY_COLUMNS]
            rows = conn.execute(select(*cols)).all()
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return out


def plaintext_ids(events: Iterable[dict[str, Any]]) -> set[str]:
    """Every 18-character ID number in the events, as typed and normalised."""
    found: set[str] = set()
    for e in events:
        for party in ("applicant", "holder"):
            p = e.get(party)
            if p and p.get("id_number"):
                found.add(p["id_number"])
                found.add(normalise_number(p["id_number"]))
        num = e.get("document_number")
        if num and len(normalise_number(num)) == 18 and e.get("holder") and \
                normalise_number(num) == normalise_number(e["holder"]["id_number"]):
            found.add(num)
    return {f for f in found if len(normalise_number(f)) == 18}


def scan_text_columns(engine: Engine, needles: set[str]) -> list[tuple[str, str, str]]:
    """(table, column, needle) for every text cell that contains a needle."""
    hits = []
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            cols = [c for c in table.columns if isinstance(c.type, String | Text)]
            for row in conn.execute(select(*cols)):
                for col, value in zip(cols, row, strict=True):
                    if not isinstance(value, str):
                        continue
                    for n in needles:
                        if n in value:
                            hits.append((table.name, col.name, n))
    return hits
