"""No plaintext ID number past the input topics (interfaces.md, Kafka; docs/privacy.md):
the case-state step's outputs and table state, the materials step's index records,
buckets and links, checked as raw bytes; the dead-letter topic keeps the original."""

from __future__ import annotations

from typing import Any

from onewindow.calendar_source import load_calendar
from onewindow.codec import get_codec
from onewindow.departments import load_registry
from onewindow.domain.case import CaseState, Outcome, fold
from onewindow.security.id_protection import IdProtector
from onewindow.security.protected_form import activity_event_json
from onewindow.topics import Topics
from onewindow_cli.bench.materials import activity_value
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from stream_apps.case_processor import APPLIED, DEAD_LETTERED, DUPLICATE, CaseProcessor
from stream_apps.materials_processor import MaterialIndexer, MaterialRouter
from stream_apps.records import InRecord, OutRecord
from tests.examples import RESTAURANT_EVENTS
from tests.privacy_support import (
    RID_A,
    event_needles,
    needles,
    plaintext_in,
    privacy_events,
)
from tests.read_model_support import read_jsonl

CODEC = get_codec()
TOPICS = Topics("p.")
IDS = IdProtector("unit-test-id-hash-key-0123456789abcdef")


def _processor() -> CaseProcessor:
    registry = load_registry()
    return CaseProcessor(codec=CODEC, topics=TOPICS, departments=registry.codes,
                         counters=registry.counter_codes, calendar=load_calendar(), ids=IDS)


def _rec(event: dict[str, Any], offset: int, value: bytes | None = None) -> InRecord:
    return InRecord(TOPICS.input(event["department"]), 0, offset, event["case_id"].encode(),
                    value if value is not None else CODEC.encode(event), 1_700_000_000_000)


def _traffic() -> list[dict[str, Any]]:
    gen = ScenarioGenerator(ScenarioConfig(seed=5))
    scenario = [e for _ in range(20) for e in gen.case()]
    return scenario + read_jsonl(RESTAURANT_EVENTS) + privacy_events()


def _run(events: list[dict[str, Any]]) -> tuple[list[OutRecord], dict[str, bytes], list]:
    proc = _processor()
    store: dict[str, bytes] = {}
    outputs: list[OutRecord] = []
    tallies = []
    for i in range(0, len(events), 7):
        res = proc.process([_rec(e, i + j) for j, e in enumerate(events[i:i + 7])],
                           lambda cid, _r: store.get(cid))
        for cid, (state, _r) in res.states.items():
            store[cid] = state
        outputs += res.outputs
        tallies += res.tallies
    return outputs, store, tallies


def test_case_state_outputs_and_table_hold_no_plaintext_id_number() -> None:
    events = _traffic()
    bad = dict(privacy_events("GZPRIV0002")[0],
               applicant={"kind": "PERSON", "id_type": "RESIDENT_ID",
                          "id_number": "440106198503121230", "name": "测试"})
    outputs, store, tallies = _run(events + [bad])
    assert [t.result for t in tallies].count(APPLIED) == len(events)
    numbers = needles() | event_needles(events) | {"440106198503121230"}
    derived = [o for o in outputs if o.topic != TOPICS.dead_letters]
    assert {o.topic for o in derived} == {TOPICS.case_state, TOPICS.case_activity}
    for o in derived:
        assert plaintext_in((o.key or b"") + o.value, numbers) == [], o.topic
    for state in store.values():
        assert plaintext_in(state, numbers) == []
    # the dead-letter topic keeps the original bytes, plaintext and all
    (dead,) = [CODEC.decode_record(o.value) for o in outputs if o.topic == TOPICS.dead_letters]
    assert dead["reason"] == "INVALID_ID_NUMBER" and dead["original"] == CODEC.encode(bad)


def test_the_activity_json_is_the_protected_form_and_the_state_carries_hash_and_mask() -> None:
    outputs, _store, _t = _run(privacy_events())
    acts = [CODEC.decode_record(o.value) for o in outputs if o.topic == TOPICS.case_activity]
    obj = activity_event_json(CODEC, acts[0])
    assert obj["applicant"] == {"kind": "PERSON", "id_type": "RESIDENT_ID",
                                "id_hash": IDS.hash("11010519491231002X"),
                                "id_masked": "11**************2X", "name": "王芳"}
    assert obj["service_name"] == "身份核验 11**************2X"
    card = activity_event_json(CODEC, acts[5])
    assert "document_number" not in card
    assert card["document_number_hash"] == IDS.hash("11010519491231002X")
    assert card["document_number_masked"] == "11**************2X"
    note = activity_event_json(CODEC, acts[2])["note"]
    assert note == "请补充 91**************23 的营业执照；44**************37"
    (state,) = {CODEC.decode_record(o.value)["case_id"]: CODEC.decode_record(o.value)
                for o in outputs if o.topic == TOPICS.case_state}.values()
    assert state["applicant"]["id_number"] is None
    assert state["applicant"]["id_hash"] == IDS.hash("11010519491231002X")
    assert state["applicant"]["id_masked"] == "11**************2X"


def test_duplicates_and_conflicts_are_decided_on_the_protected_form() -> None:
    acc = privacy_events()[0]
    same_typed_otherwise = dict(acc, applicant=dict(acc["applicant"],
                                                    id_number="11010519491231002X"))
    other_person = dict(acc, applicant=dict(acc["applicant"], id_number=RID_A))
    proc = _processor()
    res = proc.process([_rec(acc, 0), _rec(acc, 1), _rec(same_typed_otherwise, 2),
                        _rec(other_person, 3)], lambda _c, _r: None)
    assert [(t.result, t.reason) for t in res.tallies] == [
        (APPLIED, None), (DUPLICATE, None),
        # the same number typed without spaces: the same hash, the same content
        (DUPLICATE, None),
        # another person's number: another hash, other content
        (DEAD_LETTERED, "EVENT_ID_CONFLICT")]


def test_a_state_stored_before_protection_still_works_and_emits_no_plaintext() -> None:
    """A table written by a worker that folded plain events: its fingerprints are of the
    plain form, its acceptance record holds the number."""
    events = privacy_events()[:2]
    legacy = fold(events)  # plain fingerprints, plain applicant
    assert legacy.apply(events[1]) is Outcome.DUPLICATE
    store = {"GZPRIV0001": legacy.to_bytes()}
    res = _processor().process([_rec(events[1], 0)], lambda cid, _r: store.get(cid))
    assert [t.result for t in res.tallies] == [DUPLICATE]  # not EVENT_ID_CONFLICT
    (state,) = [CODEC.decode_record(o.value) for o in res.outputs
                if o.topic == TOPICS.case_state]
    assert state["applicant"]["id_number"] is None
    assert state["applicant"]["id_hash"] == IDS.hash("11010519491231002X")
    for o in res.outputs:
        assert plaintext_in(o.value, needles()) == []
    assert CaseState.from_bytes(res.states["GZPRIV0001"][0]).version == 2


def test_material_index_keys_records_buckets_and_links_hold_no_plaintext() -> None:
    events = [e for e in _traffic() if e["type"] in ("MaterialSubmitted", "CertificateIssued")]
    numbers = needles() | event_needles(events)
    keys: list[set[bytes]] = []
    links: list[set[tuple[str, str, str]]] = []
    for ids in (IDS, None):  # as the case-state app writes them, and records from before
        router = MaterialRouter(codec=CODEC, index_topic="idx", ids=IDS)
        indexer = MaterialIndexer(codec=CODEC, links_topic="links")
        acts = [InRecord("act", 0, i, e["case_id"].encode(),
                         activity_value(CODEC, e, ids=ids), None) for i, e in enumerate(events)]
        routed = router.route(acts)
        assert not routed.unreadable and len(routed.materials) == len(events)
        for o in routed.outputs:
            assert plaintext_in(o.key + o.value, numbers) == [], o.key
        store: dict[str, bytes] = {}
        res = indexer.process([InRecord("idx", 0, j, o.key, o.value, None)
                               for j, o in enumerate(routed.outputs)], _loader(store))
        assert res.links and not res.unreadable
        for key, (bucket, _r) in res.buckets.items():
            assert plaintext_in(key.encode() + bucket, numbers) == []
        for o in res.outputs:
            assert plaintext_in(o.key + o.value, numbers) == []
        keys.append({o.key for o in routed.outputs})
        links.append({(r["material_a"], r["material_b"], r["verdict"]) for r in (
            CODEC.decode_record(o.value) for o in res.outputs)})
    # a record from before protection is protected by the router with the same key
    assert keys[0] == keys[1] and links[0] == links[1]


def _loader(store: dict[str, bytes]):
    return lambda key, _r: store.get(key)
