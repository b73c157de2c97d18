"""The short ways of `onewindow.domain.protection` (issue 15) give what the long ways give:
an event as the codec decodes it is protected like any other mapping, and free text too
short to hold an ID number is returned without the search."""

from __future__ import annotations

import hashlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onewindow.codec import get_codec
from onewindow.domain.normalise import SEPARATOR, has_digit, normalise_number, number_view
from onewindow.domain.protection import (
    _CANDIDATE,
    _known_pattern,
    _mask,
    is_id_like,
    protect_event,
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
