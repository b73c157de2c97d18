"""What the materials worker holds per index key stays under a Kafka record (issue 13;
docs/materials.md "Bounds"): long declared values are held as digests (a valid material
made a 2.6 MB index record before: NFKC turns U+FDFA into 18 letters), a stored bucket
stops at MAX_BUCKET_BYTES (the key opens another), and a bucket stored before entries were
indexed compares alike."""

from __future__ import annotations

import json
import random
from itertools import combinations
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onewindow.domain.limits import (
    MAX_BUCKET_BYTES,
    MAX_CODE_CHARS,
    MAX_DECLARED_FIELDS,
    MAX_DECLARED_VALUE_CHARS,
    MAX_TEXT_CHARS,
    event_oversize,
)
from onewindow.domain.materials import material_from_event
from onewindow_cli.bench.materials import activity_value
from stream_apps.materials_processor import (
    NEW,
    OVERFLOW,
    REPLACED,
    Bucket,
    _line,
    sealed_key,
)
from stream_apps.records import MAX_OUTPUT_BYTES, InRecord
from tests.unit.stream_apps.test_materials_processor import CODEC, IDS, Pipeline, submitted


def _legal(ev: dict[str, Any]) -> dict[str, Any]:
    assert event_oversize(ev, ev["type"]) is None
    return ev


def _scope(mid: str, n: int, *, fields: int = 4, **kw: Any) -> dict[str, Any]:
    """A material whose declared values expand under NFKC: 2,000 x U+FDFA, 36,000
    letters each once normalised. ``n`` makes the values of one material differ."""
    values = {f"f{k:02d}": "\ufdfa" * (MAX_DECLARED_VALUE_CHARS - n) for k in range(fields)}
    return _legal(submitted(mid, fields=values, **kw))


def _sizes(p: Pipeline) -> tuple[int, int]:
    return max(map(len, p.store.values())), max(len(o.value) for o in p.links) if p.links \
        else 0


def test_an_expanding_material_is_held_small_and_still_linked() -> None:
    first = _scope("m1", 0, number=None)
    unindexed = _line(material_from_event(IDS.protect_event(first)))
    assert len(unindexed) > 4 * 60_000  # 66 KB a value: 40 of them made 2.6 MB
    p = Pipeline()
    p.feed([first, _scope("m2", 0, number=None), _scope("m3", 1, number=None)])
    # m1 and m2: same holder, type and values: SAME_CONTENT; m3's values differ
    assert {(lk.material_a, lk.material_b, str(lk.verdict)) for lk in p.link_set()} == {
        ("m1", "m2", "SAME_CONTENT")}
    assert max(map(len, p.store.values())) < 3 * 1_000


def test_a_full_bucket_opens_another_and_every_link_is_found() -> None:
    """Materials with large entries (64 keys of 256 characters JSON escapes to 6 bytes)
    under one hold: key: a bucket holds what fits under MAX_BUCKET_BYTES, then the key
    seals it and opens another (issue 15); every pair is linked."""
    keys = ["\0" * (MAX_CODE_CHARS - 3) + f"{k:03d}" for k in range(MAX_DECLARED_FIELDS)]
    events = [_legal(submitted(f"m{i:02d}", i, number=None, fields=dict.fromkeys(keys, "v")))
              for i in range(12)]
    p = Pipeline()
    p.feed(events, batch=5)
    (hold,) = [k for k in p.store if k.startswith("hold:")]
    sealed = Bucket.decode(p.store[sealed_key(hold, 1)])
    entry = len(_line(sealed.materials[0]))
    assert entry > 90_000
    assert len(sealed) == (MAX_BUCKET_BYTES + 1) // (entry + 1) < 12
    opened = Bucket.decode(p.store[hold])
    assert opened.sealed == 1 and len(opened) == 12 - len(sealed)
    assert all(len(v) <= MAX_BUCKET_BYTES for v in p.store.values())
    assert p.outcomes[("hold", NEW)] == 12 and p.outcomes[("hold", OVERFLOW)] == 0
    held = [m.material_id for m in sealed.materials + opened.materials]
    assert held == [f"m{i:02d}" for i in range(12)]  # in arrival order
    # every pair is linked (SAME_CONTENT: same holder, type and fields)
    pairs = {(lk.material_a, lk.material_b) for lk in p.link_set()}
    assert pairs == set(combinations(held, 2))


def test_a_replay_that_would_not_fit_keeps_the_held_copy() -> None:
    keys = ["\0" * (MAX_CODE_CHARS - 3) + f"{k:03d}" for k in range(MAX_DECLARED_FIELDS)]
    small = submitted("m0", 5, number=None, fields={"a": "1", "b": "2"}, sha="0" * 64)
    p = Pipeline(max_per_key=2000)
    p.indexer.max_bucket_bytes = 2_000
    p.feed([small])
    before = dict(p.store)
    # the same id again, earlier (so canonical prefers it), with a far larger entry
    big = _legal(submitted("m0", 0, number=None, fields=dict.fromkeys(keys, "v"),
                           sha="0" * 64))
    p.feed([big])
    assert p.store == before
    assert p.outcomes[("sha", OVERFLOW)] == 1 and p.outcomes[("sha", REPLACED)] == 0


def test_a_bucket_stored_before_indexing_compares_alike() -> None:
    """An entry stored with its long value as it was (before `indexed`) and a new copy
    of the same document: SAME_DOCUMENT, not a false CONFLICT."""
    p = Pipeline()
    # the buckets of a material as an old worker wrote them: its value as it was
    small = submitted("m1", 0, number="N9", fields={"scope": "经营" * 40, "name": "x"})
    line = _line(material_from_event(IDS.protect_event(small)))
    assert "经营" * 40 in line.decode()
    p.feed([small])
    for key in list(p.store):
        p.store[key] = line
    p.feed([submitted("m2", 5, number="N9", fields={"scope": "经营" * 40, "name": "x"})])
    assert {(lk.material_a, lk.material_b, str(lk.verdict)) for lk in p.link_set()} == {
        ("m1", "m2", "SAME_DOCUMENT")}
    decoded = json.loads(Bucket.decode(line).lines[0])
    assert all(len(v) <= 64 for _k, v in decoded["f"])


@st.composite
def largest_materials(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Materials of one holder and type (one hold: key) and one sha256 (one sha: key),
    most as large as the limits let them be once normalised and held."""
    rnd = random.Random(draw(st.integers(0, 2**32 - 1)))
    char = draw(st.sampled_from(["\0", "\ufdfa", "😀", "名"]))
    out = []
    for i in range(draw(st.integers(min_value=8, max_value=24))):
        nkeys = rnd.randint(2, MAX_DECLARED_FIELDS)
        keys = [char * rnd.randint(100, MAX_CODE_CHARS - 3) + f"{k:03d}"
                for k in range(nkeys)]
        value = char * rnd.randint(0, 100)
        fields = {k: value + str(rnd.randint(0, 1)) if rnd.random() < 0.1 else value
                  for k in keys}
        ev = submitted(f"m{i:03d}" + char * rnd.randint(0, 200), rnd.randint(0, 100),
                       number=None, sha="a" * 64, fields=fields)
        ev["holder"]["name"] = char * rnd.randint(0, MAX_TEXT_CHARS)
        if event_oversize(ev, ev["type"]) is None:
            out.append(ev)
    return out


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(events=largest_materials())
def test_no_valid_materials_make_a_bucket_or_an_output_too_large(
        events: list[dict[str, Any]]) -> None:
    p = Pipeline()
    acts = [InRecord("act", 0, i, e["case_id"].encode(), activity_value(CODEC, e, ids=IDS),
                     None) for i, e in enumerate(events)]
    routed = p.router.route(acts).outputs
    # an index record carries one material: small, whatever its declared values
    assert all(len(o.value) + len(o.key or b"") < 200_000 for o in routed)
    p.feed(events, batch=3)
    assert all(len(v) <= MAX_BUCKET_BYTES for v in p.store.values())
    assert all(len(o.value) + len(o.key or b"") < MAX_OUTPUT_BYTES for o in p.links)
