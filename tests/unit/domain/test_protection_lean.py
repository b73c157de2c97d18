"""The short ways of `onewindow.domain.protection` (issue 15) give what the long ways give:
an event as the codec decodes it is protected like any other mapping, free text too
short to hold an ID number is returned without the search, and the read model's
redaction searches an event's strings at once only to learn that scrubbing finds nothing."""

from __future__ import annotations

import hashlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onewindow.codec import get_codec
from onewindow.domain import protection
from onewindow.domain.normalise import SEPARATOR, has_digit, normalise_number, number_view
from onewindow.domain.protection import (
    _CANDIDATE,
    _known_pattern,
    _mask,
    _scrub_keeps_all,
    is_id_like,
    protect_event,
    redact_event,
    scrub,
)
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from tests.examples import RESTAURANT_EVENTS
from tests.privacy_support import TYPED, privacy_events
from tests.read_model_support import read_jsonl
from tests.unit.codec.helpers import events_of

CODEC = get_codec()


def keyed(text: str) -> str:
    return hashlib.sha256(b"test-key\x00" + text.encode()).hexdigest()


def _generic(event: dict[str, Any]) -> dict[str, Any]:
    """`protect_event` the long way: a key the decoded shape does not have (and then
    removed) sends it field by field."""
    out = protect_event({**event, "zz-not-a-field": None}, keyed)
    del out["zz-not-a-field"]
    return out


def test_decoded_traffic_is_protected_as_any_mapping_is() -> None:
    events = [e for c in ScenarioGenerator(ScenarioConfig(seed=4)).cases(30) for e in c]
    events += read_jsonl(RESTAURANT_EVENTS) + privacy_events()
    for event in (CODEC.decode(CODEC.encode(e)) for e in events):
        assert protect_event(event, keyed) == _generic(event), event["event_id"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of([events_of(CODEC, name) for name in CODEC.event_types]))
def test_any_event_of_the_schemas_is_protected_as_any_mapping_is(event: dict[str, Any]) -> None:
    assert protect_event(event, keyed) == _generic(event)


def _scrub_the_long_way(text: Any, known: set[str]) -> Any:
    """`scrub` as it was before its length shortcut (every text with a digit searched)."""
    if not text or not isinstance(text, str) or len(text) < 6 or not has_digit(text):
        return text
    mapped = number_view(text)
    spans: list[tuple[int, int]] = []
    for number in {k for k in known if k and len(k) >= 6}:
        spans.extend(m.span() for m in _known_pattern(number).finditer(mapped))
    for m in _CANDIDATE.finditer(mapped):
        if is_id_like(normalise_number(m.group(1))):
            spans.append(m.span(1))
    if not spans:
        return text
    spans.sort()
    merged: list[list[int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    out, pos = [], 0
    for s, e in merged:
        out.append(text[pos:s])
        out.append(_mask(normalise_number(mapped[s:e])) or "")
        pos = e
    out.append(text[pos:])
    return "".join(out)


_PIECES = st.sampled_from([
    *(typed for numbers in TYPED.values() for typed in numbers), "E9876", "5432", "１２３",
    "𝟏𝟐", "⑴", " ", "-", "—", "\u200b", SEPARATOR, "号", "a", "X", "0", "7", "（", "）",
])
_KNOWN = st.sets(st.sampled_from([normalise_number(n) for n in TYPED]
                                 + ["123456", "ABC12", "1234567890"]), max_size=3)


@settings(max_examples=500, deadline=None)
@given(st.lists(_PIECES, max_size=6).map("".join), _KNOWN)
def test_scrub_takes_the_short_way_only_where_nothing_could_be_found(text: str,
                                                                     known: set[str]) -> None:
    assert scrub(text, known) == _scrub_the_long_way(text, known)
    assert scrub(text, iter(known)) == _scrub_the_long_way(text, known)  # read twice


def test_number_view_keeps_the_length_the_short_way_counts_on() -> None:
    for text in ("⑴２３ａＢ", "𝟏𝟐𝟑", "1\u200b2—3", "ﬁ１", "Ⅻ12", "ＡＢＣ－１２３"):
        assert len(number_view(text)) == len(text)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (_strings(k) + _strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


_TEXT = st.lists(_PIECES, max_size=6).map("".join)
_JSON = st.recursive(
    st.one_of(_TEXT, st.integers(), st.none(), st.booleans()),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(_TEXT, inner, max_size=4)),
    max_leaves=12)


@settings(max_examples=500, deadline=None)
@given(_JSON, _KNOWN)
def test_one_search_says_whether_scrub_changes_any_string(value: Any, known: set[str]) -> None:
    """Exact both ways: the joined search misses nothing `scrub` finds in one string
    (keys included), and finds nothing across two of them."""
    assert _scrub_keeps_all(value, known) == all(scrub(s, known) == s for s in _strings(value))


def test_redaction_is_the_same_with_and_without_the_one_search(monkeypatch: Any) -> None:
    """Scenario traffic, the restaurant example and the privacy events (every number
    typed into every field it can reach), plain and protected: the read model's copy is
    the one the per-string scrub gives."""
    events = [e for c in ScenarioGenerator(ScenarioConfig(seed=5)).cases(30) for e in c]
    events += read_jsonl(RESTAURANT_EVENTS) + privacy_events()
    forms = []
    for event in (CODEC.decode(CODEC.encode(e)) for e in events):
        forms += [CODEC.to_json(event), CODEC.to_json(protect_event(event, keyed))]
    short = [redact_event(f, keyed) for f in forms]
    monkeypatch.setattr(protection, "_scrub_keeps_all", lambda value, known: False)
    assert short == [redact_event(f, keyed) for f in forms]
    assert sum(_scrub_keeps_all(f, set()) for f in forms) > len(forms) // 2  # it is taken
