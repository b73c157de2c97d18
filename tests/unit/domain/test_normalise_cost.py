"""Issue 13: the normalisation is linear in its input and output, with the same results.

A valid MaterialSubmitted with 40 declared values of 2,000 x U+FDFA (NFKC: 18 letters
each) took ~3.5 s of CPU in the materials worker and the sink: a Python loop with three
calls per character of the NFKC form, run twice per value in the sink. And CPython's NFKC
sorts a run of combining marks by insertion, quadratic in the run. The implementation now
does the per-character work in C and hands CPython runs already in canonical order
(onewindow/domain/normalise.py, "Cost"). These tests pin that the results are those of
the old implementation, kept here as the oracle, on random text rich in the characters
that expand, reorder, vanish or separate; and that the text handed to CPython leaves its
sort nothing to do (the structural reason the cost is linear: no timing is asserted).
"""

from __future__ import annotations

import unicodedata

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from onewindow.domain.limits import MAX_DECLARED_VALUE_CHARS
from onewindow.domain.normalise import (
    BRACKETS,
    display_value,
    has_digit,
    is_format,
    is_number_separator,
    is_white_space,
    nfkc,
    nfkc_prepared,
    normalise_number,
    normalise_value,
)


def old_normalise_value(value: object) -> str:
    """normalise_value as it was before issue 13 (the oracle)."""
    if value is None:
        return ""
    text = unicodedata.normalize("NFKC", str(value))
    if not text.isascii():
        text = "".join(" " if is_white_space(ch) else ch
                       for ch in text if not is_format(ch))
    elif not text.isprintable():
        text = "".join(" " if is_white_space(ch) else ch for ch in text)
    return " ".join(text.split())


def _marks() -> list[str]:
    """One combining mark of each canonical combining class, and the characters whose
    NFKD starts with marks (U+0344 is two of class 230, U+0F73 two of 129 and 130)."""
    by_class: dict[int, str] = {}
    for cp in range(0x110000):
        c = unicodedata.combining(chr(cp))
        if c:
            by_class.setdefault(c, chr(cp))
    return [*by_class.values(), "\u0344", "\u0f73", "\u0f75", "\u0f81", "\u0340"]


#: characters that expand (U+FDFA: 18, U+3300 squared katakana, ligatures, fractions),
#: that compose or decompose (precomposed Latin and Greek, Hangul syllables and jamo),
#: vanish (format characters) or separate (every kind of white space and control)
_SPECIAL = [
    "\ufdfa", "\ufdfb", "\u3300", "\u337f", "\ufb03", "\u00bd", "\u2474", "\u33ff",
    "é", "e", "a", "\u1e9b", "\u1fee", "\u1f80", "\u00c5", "\u212b", "\u0390",
    "가", "\u1100", "\u1161", "\u11a8", "\uac00",
    "\u200b", "\u200d", "\ufeff", "\u202e", "\u2066", "\u00ad", "\U000e0001",
    " ", "\t", "\n", "\x00", "\x1b", "\x7f", "\x85", "\u00a0", "\u2028", "\u3000",
    "\u180e", "\u1680",
    "Ａ", "１", "\U0001d7cf", "\u00b2", "\u2488", "\u0663", "7", "陈", "（", "—", "\u2212",
    *_marks(),
]

_texts = st.one_of(
    st.text(),
    st.text(st.sampled_from(_SPECIAL), max_size=80),
    st.lists(st.one_of(st.sampled_from(_SPECIAL), st.characters()), max_size=120).map(
        "".join),
    # long runs of marks in descending class order: the worst case of CPython's sort
    st.lists(st.tuples(st.sampled_from(_marks()), st.integers(1, 60)), max_size=8).map(
        lambda runs: "a" + "".join(m * n for m, n in runs)),
)

_PROPS = settings(max_examples=400, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow])


@_PROPS
@given(text=_texts)
@example(text="\ufdfa" * 50)
@example(text="\u0301" * 30 + "\u0316" * 30 + "\u0344\u0f73\u0316")
@example(text="e\u200d\u0301 \u3000\x00x\ufeff")
def test_normalise_value_gives_what_it_gave(text: str) -> None:
    assert normalise_value(text) == old_normalise_value(text)


@_PROPS
@given(text=_texts)
def test_nfkc_is_unicodes_nfkc(text: str) -> None:
    assert nfkc(text) == unicodedata.normalize("NFKC", text)


@_PROPS
@given(text=_texts)
def test_the_text_handed_to_cpython_is_already_in_canonical_order(text: str) -> None:
    """CPython decomposes character by character and then sorts each run of marks by
    insertion (swaps = inversions). The characters of the prepared text, each
    decomposed, are already the NFKD of the text: the sort has no inversion to undo."""
    prepared = nfkc_prepared(text)
    assert unicodedata.normalize("NFKC", prepared) == unicodedata.normalize("NFKC", text)
    per_char = "".join(unicodedata.normalize("NFKD", ch) for ch in prepared)
    assert per_char == unicodedata.normalize("NFKD", text)


@_PROPS
@given(text=_texts)
@example(text="\ufdfa\u2474")
def test_a_digit_is_found_as_nfkc_reads_it(text: str) -> None:
    assert has_digit(text) == any("0" <= ch <= "9"
                                  for ch in unicodedata.normalize("NFKC", text))


@_PROPS
@given(text=_texts)
def test_numbers_normalise_as_before(text: str) -> None:
    old = "".join(BRACKETS.get(ch, ch)
                  for ch in unicodedata.normalize("NFKC", text).upper()
                  if not is_number_separator(ch)) if text and not text.isascii() else None
    if old is not None:
        assert normalise_number(text) == old


@_PROPS
@given(text=_texts)
def test_a_value_is_shown_as_sent_without_invisible_characters(text: str) -> None:
    shown = display_value(text)
    assert len(shown) <= len(text)
    assert not any(is_format(ch) for ch in shown)
    assert shown == shown.strip() and "  " not in shown
    assert not any(is_white_space(ch) and ch != " " for ch in shown)
    assert display_value(shown) == shown
    # what was sent: only format characters and white space differ
    kept = [ch for ch in text if not is_format(ch) and not is_white_space(ch)]
    assert [ch for ch in shown if ch != " "] == kept


def test_the_worst_valid_values_normalise_as_before() -> None:
    """The issue's record: 2,000 x U+FDFA (36,000 letters once normalised), and 2,000
    combining marks in the order CPython's sort likes least."""
    marks = sorted({m for m in _marks() if len(m) == 1}, key=unicodedata.combining,
                   reverse=True)
    per = MAX_DECLARED_VALUE_CHARS // len(marks)
    for value in ("\ufdfa" * MAX_DECLARED_VALUE_CHARS,
                  "a" + "".join(m * per for m in marks),
                  ("\u0301" * 500 + "\u0316" * 500) * 2):
        assert normalise_value(value) == old_normalise_value(value)
        assert display_value(value) == value
    assert len(normalise_value("\ufdfa" * MAX_DECLARED_VALUE_CHARS)) == 36_000
