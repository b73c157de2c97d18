"""The materials step without Faust or Kafka: router, then indexer over a dict store."""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from onewindow.codec import get_codec
from onewindow.domain.material_index import index_keys
from onewindow.domain.materials import (
    Link,
    Material,
    all_links,
    avoidable_set,
    material_from_event,
)
from onewindow.security.id_protection import IdProtector
from onewindow_cli.bench.materials import activity_value
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from stream_apps.materials_metrics import MaterialsMetrics
from stream_apps.materials_processor import (
    NEW,
    OVERFLOW,
    REPLACED,
    REPLAY,
    MaterialIndexer,
    MaterialRouter,
)
from stream_apps.records import InRecord, OutRecord

CODEC = get_codec()
T0 = datetime(2025, 3, 3, 1, 0, tzinfo=UTC)
RID = "11010519491231002X"
RID_2 = "440106198503121237"
IDS = IdProtector("unit-test-id-hash-key-0123456789abcdef")


def protected(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events as the case-state app hands them on: protected."""
    return [IDS.protect_event(e) for e in events]


def submitted(mid: str, minute: int = 0, *, mtype: str = "ID_CARD", number: str | None = "N1",
              sha: str | None = None, fields: dict[str, str] | None = None,
              holder: str = RID, dept: str = "gaj", case: str = "C-1") -> dict[str, Any]:
    return {"type": "MaterialSubmitted", "event_id": f"{mid}-ev", "case_id": case,
            "department": dept, "occurred_at": T0 + timedelta(minutes=minute),
            "material_id": mid, "material_type": mtype, "name": "身份证",
            "holder": {"id_type": "RESIDENT_ID", "id_number": holder, "name": "陈静"},
            "document_number": number, "sha256": sha or (mid.encode().hex() * 64)[:64],
            "pages": 1, "size_bytes": 1000, "form": "COPY",
            "declared_fields": {"name": "陈静", "issued": "2020-01-01"} if fields is None
            else fields, "task_id": None}


def certificate(cid: str, minute: int, *, ctype: str = "ID_CARD", number: str = "N1",
                holder: str = RID) -> dict[str, Any]:
    return {"type": "CertificateIssued", "event_id": f"{cid}-ev", "case_id": "C-0",
            "department": "gaj", "occurred_at": T0 + timedelta(minutes=minute),
            "task_id": "T-1", "certificate_id": cid, "certificate_type": ctype,
            "document_number": number,
            "holder": {"id_type": "RESIDENT_ID", "id_number": holder, "name": "陈静"},
            "sha256": "f" * 64, "declared_fields": {"name": "陈静"}, "valid_until": None}


class Pipeline:
    """Router + indexer over an in-memory store, index records routed to their key's
    bucket in the order produced (what one partition per key does)."""

    def __init__(self, max_per_key: int = 2000, *, plain_activity: bool = False) -> None:
        """``plain_activity``: activity records as written before the case-state app
        protected ID numbers (the router protects them itself)."""
        self.ids = None if plain_activity else IDS
        self.router = MaterialRouter(codec=CODEC, index_topic="idx", ids=IDS)
        self.indexer = MaterialIndexer(codec=CODEC, links_topic="links",
                                       max_per_key=max_per_key)
        self.store: dict[str, bytes] = {}
        self.links: list[OutRecord] = []
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self.metrics = MaterialsMetrics()

    def feed(self, events: list[dict[str, Any]], batch: int = 7) -> None:
        acts = [InRecord("act", 0, i, e["case_id"].encode(),
                         activity_value(CODEC, e, ids=self.ids), None)
                for i, e in enumerate(events)]
        for i in range(0, len(acts), batch):
            routed = self.router.route(acts[i:i + batch])
            self.metrics.count_route(routed)
            recs = [InRecord("idx", 0, j, o.key, o.value, None) for j, o in
                    enumerate(routed.outputs)]
            res = self.indexer.process(recs, lambda key, _rec: self.store.get(key))
            self.metrics.count_index(res)
            for key, (value, _rec) in res.buckets.items():
                self.store[key] = value
            self.links.extend(res.outputs)
            self.outcomes.update(res.outcomes)

    def decoded(self) -> list[dict[str, Any]]:
        return [CODEC.decode_record(o.value, "MaterialLink") for o in self.links]

    def link_set(self) -> set[Link]:
        return {Link.from_dict(r) for r in self.decoded()}

    def avoidable(self) -> set[str]:
        return {r["avoidable_material"] for r in self.decoded() if r["avoidable_material"]}

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


def _scenario(cases: int, seed: int) -> list[dict[str, Any]]:
    gen = ScenarioGenerator(ScenarioConfig(seed=seed))
    return [e for _ in range(cases) for e in gen.case()
            if e["type"] in ("MaterialSubmitted", "CertificateIssued")]


@pytest.mark.parametrize("seed,plain_activity", [(1, False), (2, False), (3, True)])
def test_shuffled_replayed_scenario_equals_the_pure_rules(seed: int,
                                                          plain_activity: bool) -> None:
    events = _scenario(60, seed)
    # the pure rules on the materials as the stream sees them (protected)...
    materials = [material_from_event(e) for e in protected(events)]
    want = all_links(materials)
    # ... are the rules on the plaintext: protection loses no link
    assert want == all_links(material_from_event(e) for e in events)
    assert {str(lk.verdict) for lk in want} == {"CONFLICT", "EXACT", "SAME_DOCUMENT",
                                                 "SAME_CONTENT"}
    rng = random.Random(seed)
    stream = events + [e for e in events if rng.random() < 0.2]
    rng.shuffle(stream)
    p = Pipeline(plain_activity=plain_activity)
    p.feed(stream, batch=rng.choice([1, 5, 50]))
    assert p.link_set() == want
    assert p.avoidable() == avoidable_set(materials)
    # Each pair is emitted once, plus once more per replay of one of its ends.
    per_pair = Counter((r["material_a"], r["material_b"]) for r in p.decoded())
    assert set(per_pair) == {(lk.material_a, lk.material_b) for lk in want}
    assert p.metric("onewindow_materials_links_total", verdict="CONFLICT") == \
        sum(1 for lk in want if lk.verdict == "CONFLICT")
    assert sum(p.metric("onewindow_materials_links_total", verdict=v)
               for v in ("CONFLICT", "EXACT", "SAME_DOCUMENT", "SAME_CONTENT")) == len(want)


def test_without_replays_every_pair_is_emitted_exactly_once() -> None:
    events = _scenario(40, 5)
    p = Pipeline()
    p.feed(events)
    pairs = Counter((r["material_a"], r["material_b"]) for r in p.decoded())
    assert pairs and max(pairs.values()) == 1


def test_a_pair_sharing_three_keys_is_emitted_at_its_owner_key_only() -> None:
    # owner_key itself: tests/unit/domain/test_materials.py
    a = submitted("A", 0, sha="a" * 64)
    b = submitted("B", 5, sha="a" * 64)
    p = Pipeline()
    p.feed([a, b])
    (rec,) = p.decoded()
    assert (rec["material_a"], rec["material_b"], rec["verdict"]) == ("A", "B", "EXACT")
    assert rec["avoidable_material"] == "B"
    assert (rec["case_a"], rec["case_b"]) == ("C-1", "C-1")
    assert p.links[0].key == b"A|B"


def test_conflict_record_names_the_fields_and_the_holders() -> None:
    a = submitted("A", 0, fields={"name": "陈静", "issued": "2020-01-01"})
    b = submitted("B", 1, fields={"name": "陈 静", "issued": "2021-01-01"}, holder=RID_2)
    p = Pipeline()
    p.feed([b, a])
    (rec,) = p.decoded()
    assert rec["verdict"] == "CONFLICT"
    assert rec["differing_fields"] == ["issued", "name"]
    assert rec["holders_differ"] is True
    assert rec["avoidable_material"] is None
    assert p.metric("onewindow_materials_conflicts_total", material_type="ID_CARD",
                    differs="both") == 1


def test_a_certificate_issued_earlier_makes_the_paper_copy_avoidable() -> None:
    cert = certificate("CERT-1", 0, number="N 1")
    copy = submitted("M-9", 60, number="n-1", fields={"name": "陈静", "x": "1"}, dept="scjgj")
    p = Pipeline()
    p.feed([copy, cert])  # the copy arrives first: order must not matter
    (rec,) = p.decoded()
    assert rec["verdict"] == "SAME_DOCUMENT"
    assert rec["avoidable_material"] == "M-9"
    assert p.metric("onewindow_materials_avoidable_links_total", department="scjgj",
                    material_type="ID_CARD") == 1
    # Found when the earlier document came in, not on the copy's arrival.
    assert p.metric("onewindow_materials_avoidable_total", department="scjgj",
                    material_type="ID_CARD") == 0
    in_order = Pipeline()
    in_order.feed([cert, copy, dict(copy, material_id="M-10", event_id="e10")])
    assert in_order.metric("onewindow_materials_avoidable_total", department="scjgj",
                           material_type="ID_CARD") == 2
    # A certificate is never avoidable itself, even when it comes later.
    p2 = Pipeline()
    p2.feed([submitted("M-1", 0), certificate("CERT-2", 60)])
    assert [r["avoidable_material"] for r in p2.decoded()] == [None]


def test_number_missing_at_one_desk_gives_same_content_through_the_hold_key() -> None:
    a = submitted("A", 0, number="N1")
    b = submitted("B", 3, number=None)
    p = Pipeline()
    p.feed([a, b])
    (rec,) = p.decoded()
    assert rec["verdict"] == "SAME_CONTENT"
    assert rec["avoidable_material"] is None


def test_replay_re_emits_identical_links_but_counts_them_once() -> None:
    a, b = submitted("A", 0), submitted("B", 1)
    p = Pipeline()
    p.feed([a, b])
    p.feed([b])
    recs = p.decoded()
    assert len(recs) == 2
    strip = [{k: v for k, v in r.items() if k != "found_at"} for r in recs]
    assert strip[0] == strip[1]
    assert p.outcomes[("doc", REPLAY)] == 1
    assert p.metric("onewindow_materials_links_total", verdict="SAME_DOCUMENT") == 1
    assert p.metric("onewindow_materials_links_reemitted_total", verdict="SAME_DOCUMENT") == 1


def test_replayed_id_with_other_content_keeps_the_canonical_one() -> None:
    early = submitted("A", 0)
    late = dict(submitted("A", 9), event_id="other-ev")
    p = Pipeline()
    p.feed([late, early])
    bucket_key = next(k for k in p.store if k.startswith("doc:"))
    (line,) = p.store[bucket_key].split(b"\n")
    assert Material.from_dict(json.loads(line)) == material_from_event(IDS.protect_event(early))
    assert p.outcomes[("doc", REPLACED)] == 1


def test_a_full_bucket_still_compares_but_holds_no_more() -> None:
    events = [submitted(f"M{i}", i) for i in range(4)]
    p = Pipeline(max_per_key=2)
    p.feed(events, batch=1)
    assert p.outcomes[("doc", NEW)] == 2 and p.outcomes[("doc", OVERFLOW)] == 2
    pairs = {(r["material_a"], r["material_b"]) for r in p.decoded()}
    # M2 and M3 are compared with M0 and M1 but not with each other.
    assert ("M2", "M3") not in pairs and ("M0", "M3") in pairs


def test_non_materials_are_skipped_and_garbage_is_counted() -> None:
    router = MaterialRouter(codec=CODEC, index_topic="idx", ids=IDS)
    task = {"type": "TaskUpdated", "event_id": "e1", "case_id": "C-1", "department": "gaj",
            "occurred_at": T0, "task_id": "T", "status": "RECEIVED", "officer": None,
            "note": None}
    res = router.route([InRecord("act", 0, 0, b"C-1", activity_value(CODEC, task), None),
                        InRecord("act", 0, 1, b"C-1", b"junk", None),
                        InRecord("act", 0, 2, b"C-1", None, None)])
    assert res.outputs == [] and res.other == 1 and res.unreadable == ["UNDECODABLE"] * 2
    indexer = MaterialIndexer(codec=CODEC, links_topic="links")
    out = indexer.process([InRecord("idx", 0, 0, b"k", b"{not json", None)], lambda *_: None)
    assert out.unreadable == 1 and out.outputs == []


def test_links_are_the_same_whatever_the_batching() -> None:
    events = _scenario(30, 9)
    results = []
    for batch in (1, 3, 1000):
        p = Pipeline()
        p.feed(events, batch=batch)
        results.append(p.link_set())
    assert results[0] == results[1] == results[2]
    by_bucket: dict[str, int] = defaultdict(int)
    for e in protected(events):
        for k in index_keys(material_from_event(e)):
            by_bucket[k] += 1
    assert max(by_bucket.values()) < 2000
