"""The sink reads both forms of the output records: protected (what the stream apps emit
now: hashes and masks, never hashed again) and plain (records written before they
protected ID numbers: hashed here, with the same key). Both give the same read model,
cell by cell, and neither leaves a plaintext ID number in it."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import Any

import pytest
from sqlalchemy import Engine, select

from onewindow.calendar_source import load_calendar
from onewindow.codec import get_codec
from onewindow.departments import load_registry
from onewindow.domain import protection
from onewindow.domain.identifiers import mask_id
from onewindow.domain.normalise import normalise_number
from onewindow.read_model.engine import make_engine
from onewindow.read_model.tables import Case, Material, TimelineEntry
from onewindow.security.id_protection import IdProtector
from onewindow.security.protected_form import activity_event_json
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from sinks.migrations import upgrade
from stream_apps.case_processor import CaseProcessor
from stream_apps.records import InRecord
from tests.examples import RESTAURANT_EVENTS
from tests.integration.streams import shuffled_with_duplicates
from tests.privacy_support import event_needles, needles, privacy_events
from tests.read_model_support import (
    case_outputs,
    dump_model,
    link_records,
    load_model,
    read_jsonl,
    scan_text_columns,
)


class PlainIds(IdProtector):
    """The case-state step as it was before it protected ID numbers."""

    def protect_event(self, event: Mapping[str, Any]) -> dict[str, Any]:
        return dict(event)


def _legacy_outputs(events: list[dict[str, Any]], topics: Any) -> list[tuple[str, bytes]]:
    """The records an older worker wrote: plain ``event_json``, CaseState v1 with the
    applicant's number."""
    codec = get_codec()
    registry = load_registry()
    proc = CaseProcessor(codec=codec, topics=topics, departments=registry.codes,
                         counters=registry.counter_codes, calendar=load_calendar(),
                         ids=PlainIds("unused"))
    store: dict[str, bytes] = {}
    out: list[tuple[str, bytes]] = []
    for i, e in enumerate(events):
        rec = InRecord(topics.input(e["department"]), 0, i, e["case_id"].encode(),
                       codec.encode(e), 1_700_000_000_000 + i)
        res = proc.process([rec], lambda cid, _r: store.get(cid))
        for cid, (state, _) in res.states.items():
            store[cid] = state
        for o in res.outputs:
            value = o.value
            if o.topic == topics.case_activity:  # v2: the plain event's JSON form
                act = codec.decode_record(value)
                act.pop("type")
                event_json = json.dumps(activity_event_json(codec, act), ensure_ascii=False)
                act.pop("event")
                value = codec.encode_record("CaseActivity", {**act, "event_json": event_json},
                                            version=2)
            if o.topic == topics.case_state:
                rec_ = codec.decode_record(value)
                rec_.pop("type")
                if rec_["applicant"] is not None:
                    assert rec_["applicant"]["id_number"] is not None  # plain, as v1 was
                    rec_["applicant"] = {k: v for k, v in rec_["applicant"].items()
                                         if k not in ("id_hash", "id_masked")}
                value = codec.encode_record("CaseState", rec_, version=1)
            out.append((o.topic, value))
    return out


def test_plain_and_protected_records_give_the_same_model(tmp_path, settings, topics) -> None:
    cases = list(ScenarioGenerator(ScenarioConfig(seed=17)).cases(40))
    cases += [read_jsonl(RESTAURANT_EVENTS), privacy_events()]
    flat = [e for c in cases for e in c]
    events = shuffled_with_duplicates(cases, seed=3)
    codec = get_codec()
    links = [(topics.material_links, codec.encode_record("MaterialLink", r))
             for r in link_records(flat)]
    ids = IdProtector.from_settings(settings)
    new = case_outputs(events, topics, ids=ids) + links
    old = _legacy_outputs(events, topics) + links
    # an upgrade mid-stream: old records, then the new worker's for the same cases
    rng = random.Random(1)
    cut = rng.randrange(len(old))
    mixed = old[:cut] + new
    dumps = []
    for name, records in (("new", new), ("old", old), ("mixed", mixed)):
        engine = make_engine(f"sqlite:///{tmp_path / name}.db", writer=True)
        upgrade(engine)
        load_model(engine, topics, records, settings, batch=37)
        dumps.append(dump_model(engine))
        assert scan_text_columns(engine, needles() | event_needles(flat)) == []
        engine.dispose()
    for table in dumps[0]:
        if table == "consumed_offsets":
            continue
        assert dumps[0][table] == dumps[1][table], table
        assert dumps[0][table] == dumps[2][table], table


def _wider_mask(value: str) -> str:
    """The mask as it was before it showed less: the first 6 and the last 4."""
    s = normalise_number(value)
    n = len(s)
    if n > 10:
        return s[:6] + "*" * (n - 10) + s[-4:]
    return "*" * (n - 4) + s[-4:] if n > 4 else "*" * n


def _masks(engine: Engine) -> dict[str, list[Any]]:
    """Every mask the model keeps outside free text."""
    with engine.connect() as c:
        cases = sorted(c.execute(select(Case.case_id, Case.applicant_id_masked)).all())
        mats = sorted(c.execute(select(Material.material_id, Material.holder_id_masked,
                                       Material.document_number_masked)).all())
        parties = sorted(
            (eid, party, json.loads(js).get(party, {}).get("id_masked"))
            for eid, js in c.execute(select(TimelineEntry.event_id, TimelineEntry.event_json))
            for party in protection.PARTIES if json.loads(js).get(party))
    return {"cases": cases, "materials": mats, "timeline": parties}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_records_with_the_older_wider_mask_give_the_narrow_one(
        tmp_path, settings, topics, monkeypatch) -> None:
    """Records written before the mask showed less (docs/privacy.md) carry the wider
    mask: the sink masks it again, so the model shows the narrow one."""
    cases = list(ScenarioGenerator(ScenarioConfig(seed=23)).cases(20))
    cases += [read_jsonl(RESTAURANT_EVENTS), privacy_events()]
    events = [e for c in cases for e in c]
    ids = IdProtector.from_settings(settings)
    new = case_outputs(events, topics, ids=ids)
    monkeypatch.setattr(protection, "_mask", _wider_mask)
    old = case_outputs(events, topics, ids=ids)
    monkeypatch.undo()
    assert any(b"440106********1237" in v for _, v in old)  # the wider mask
    assert not any(b"440106********1237" in v for _, v in new)
    masks = []
    for name, records in (("new", new), ("old", old)):
        engine = make_engine(f"sqlite:///{tmp_path / name}.db", writer=True)
        upgrade(engine)
        load_model(engine, topics, records, settings, batch=37)
        masks.append(_masks(engine))
        engine.dispose()
    assert masks[0] == masks[1]
    assert ("GZPRIV0001-mat-2", "91**************23",
            "91**************23") in masks[0]["materials"]
    shown = [m for rows in masks[0].values() for row in rows for m in row[1:]
             if m and "*" in m]
    assert len(shown) > 100 and all(mask_id(m) == m for m in shown)  # all narrow
