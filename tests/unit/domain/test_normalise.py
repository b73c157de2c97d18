"""onewindow.domain.normalise: the normalisation of domain.md section 5, and that every
component (ID checks, material rules, keyed hashes, free-text masking) follows it."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onewindow.domain.identifiers import (
    USCC_CHARSET,
    is_plausible_id_number,
    is_valid_resident_id,
    is_valid_uscc,
    mask_id,
    resident_id_check_char,
    uscc_check_char,
)
from onewindow.domain.materials import Verdict, VerdictKind, material_from_event, verdict
from onewindow.domain.normalise import (
    SEPARATOR,
    normalise_number,
    normalise_value,
    number_view,
)
from onewindow.domain.protection import id_hash, protect_event, scrub
from tests.unit.domain.helpers import VALID_RID, VALID_RID_2, VALID_USCC

T0 = datetime(2025, 9, 30, 2, 0, tzinfo=UTC)


def keyed(text: str) -> str:
    """A stand-in for HMAC under a key: deterministic, and not the identity."""
    return hashlib.sha256(b"test-key\x00" + text.encode()).hexdigest()


# --------------------------------------------------------------------------- examples


@pytest.mark.parametrize(("typed", "why"), [
    ("440106\u200b198503121237", "zero-width space U+200B"),
    ("\ufeff440106198503121237", "BOM U+FEFF"),
    ("440106\u200d19850312\u200c1237", "joiners"),
    ("\u200e440106198503121237\u200f", "direction marks"),
    ("440106\u201319850312\u20131237", "en dash U+2013"),
    ("440106\u201419850312\u20141237", "em dash U+2014"),
    ("440106\u221219850312\u22121237", "minus sign U+2212"),
    ("440106\u201019850312\u20151237", "hyphen U+2010, horizontal bar U+2015"),
    ("440106-19850312\uff0d1237", "'-' and full-width hyphen-minus"),
    ("４４０１０６１９８５０３１２１２３７", "full-width digits"),
    ("440106\t19850312\n1237", "tab, newline"),
    ("440106\u00a019850312\u30001237", "NBSP, ideographic space"),
    ("440106\x0019850312\x1f1237", "ASCII controls"),
    ("440106\u202819850312\u20291237", "line and paragraph separators (Zl, Zp)"),
])
def test_every_separator_class_is_removed_from_numbers(typed: str, why: str) -> None:
    assert normalise_number(typed) == VALID_RID_2, why


def test_numbers_are_upper_cased_and_brackets_folded() -> None:
    assert normalise_number("11010519491231002x") == VALID_RID
    assert normalise_number("ｘ") == "X"
    for opening, closing in ["〔〕", "【】", "〖〗", "［］", "[]", "（）", "()"]:
        assert normalise_number(f"粤{opening}2023{closing}第 12 号") == "粤(2023)第12号"
    assert normalise_number(None) == normalise_number("") == normalise_number(" \u200b—") == ""


def test_declared_values_drop_format_characters_and_collapse_white_space() -> None:
    assert normalise_value("\ufeff 陈\u200b静 ") == "陈静"
    assert normalise_value("  a \u3000 b\t\nc\u00a0 ") == "a b c"
    assert normalise_value("a\x00b") == "a b"  # an ASCII control is white space
    assert normalise_value("２０３５—０３") == "2035—03"  # dashes stay in values
    assert normalise_value("（甲）") == "(甲)"  # NFKC, but no bracket folding in values
    assert normalise_value(None) == ""
    assert normalise_value(12) == "12"


def test_declared_keys_are_compared_as_they_are() -> None:
    base = {"material_type": "BUSINESS_LICENCE", "document_number": None,
            "holder": {"id_type": "USCC", "id_number": VALID_USCC, "name": "x"}}
    a = material_from_event(_material("a", declared_fields={"名称": "甲", "地址": "乙"},
                                      **base))
    b = material_from_event(_material("b", declared_fields={"名称\u200b": "甲", "地址": "乙"},
                                      **base))
    assert dict(b.fields) == {"名称\u200b": "甲", "地址": "乙"}
    assert verdict(a, b) is None  # one key in common only: not SAME_CONTENT


def test_id_numbers_are_checked_after_the_normalisation() -> None:
    assert is_valid_resident_id("440106\u201419850312\u20141237")
    assert is_valid_resident_id("440106\u200b19850312\u22121237")
    assert is_valid_uscc("9144\u20130101\u00a0MA5C\ufeffXYW123")
    assert mask_id("440106\u201419850312\u20141237") == "44**************37"


def test_number_view_keeps_positions() -> None:
    text = "号（４４０１０６—\u200b1985）\t"
    view = number_view(text)
    assert len(view) == len(text)
    assert view == "号(440106" + SEPARATOR * 2 + "1985)" + SEPARATOR
    assert number_view("ab-c[1]\t") == "AB C(1) "


@pytest.mark.parametrize("typed", [
    "110105\u201419491231\u2014002X",
    "110105\u2013 19491231 \u2013002x",
    "1101\u200b0519\u200b4912\u200b3100\u200b2X",
    "110105\u221219491231\u2212002X",
    "１１０１０５\ufeff１９４９１２３１００２Ｘ",
])
def test_a_note_masks_an_id_number_however_typed(typed: str) -> None:
    assert scrub(f"请核对{typed}号") == "请核对11**************2X号"


# --------------------------------------------------------------------------- properties

_SEPARATORS = [" ", "\t", "\n", "\u00a0", "\u3000", "\u2028", "\x0b", "\u200b", "\ufeff",
               "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\u00ad", "-", "\uff0d",
               "\ufe63", "\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2015",
               "\u2212"]
_FORMAT = ["\u200b", "\ufeff", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060"]
_WHITE = [" ", "\t", "\n", "\u00a0", "\u3000", "\u2028", "\u2003"]
_OPEN = ["〔", "【", "〖", "［", "[", "（", "("]
_CLOSE = ["〕", "】", "〗", "］", "]", "）", ")"]


@st.composite
def resident_ids(draw: st.DrawFn) -> str:
    body = draw(st.text("0123456789", min_size=17, max_size=17))
    return body + resident_id_check_char(body)


@st.composite
def usccs(draw: st.DrawFn) -> str:
    """A USCC as GB 32100-2015 builds it: characters 3 to 8 are the registering
    authority's administrative division code, six digits (so every real USCC holds a
    digit; an all-letter body such as ``AAAAAAAAAAAAAAAAAK`` is none)."""
    kind = draw(st.text(USCC_CHARSET, min_size=2, max_size=2))
    area = draw(st.text("0123456789", min_size=6, max_size=6))
    organisation = draw(st.text(USCC_CHARSET, min_size=9, max_size=9))
    body = kind + area + organisation
    return body + uscc_check_char(body)


@st.composite
def document_numbers(draw: st.DrawFn) -> str:
    """A canonical (already normalised) document number, with brackets."""
    year = draw(st.integers(1990, 2030))
    serial = draw(st.text("0123456789ABCX", min_size=1, max_size=10))
    return f"粤({year})广州市第{serial}号"


def _variant_char(draw: st.DrawFn, ch: str) -> str:
    if ch == "(":
        return draw(st.sampled_from(_OPEN))
    if ch == ")":
        return draw(st.sampled_from(_CLOSE))
    if ch.isascii() and ch.isalnum():
        forms = [ch, chr(ord(ch) + 0xFEE0)]  # the full-width form
        if ch.isalpha():
            forms += [ch.lower(), chr(ord(ch.lower()) + 0xFEE0)]
        return draw(st.sampled_from(forms))
    return ch


@st.composite
def number_variants(draw: st.DrawFn, canonical: str) -> str:
    """``canonical`` typed another way: full-width or lower-case characters, bracket
    variants, and runs of white space, format characters and dashes anywhere."""
    seps = st.lists(st.sampled_from(_SEPARATORS), max_size=3).map("".join)
    out = [draw(seps)]
    for ch in canonical:
        out.append(_variant_char(draw, ch))
        out.append(draw(seps))
    return "".join(out)


@st.composite
def value_variants(draw: st.DrawFn, canonical: str) -> str:
    """A declared value typed another way: format characters anywhere, white space
    around it, and each inner space a run of white space."""
    fmt = st.lists(st.sampled_from(_FORMAT), max_size=2).map("".join)
    white = st.lists(st.sampled_from(_WHITE), max_size=3).map("".join)
    out = [draw(white), draw(fmt)]
    for ch in canonical:
        if ch == " ":
            out.append(draw(white) + " " + draw(white))
        else:
            out.append(_variant_char(draw, ch) if ch.isdigit() else ch)
        out.append(draw(fmt))
    out.append(draw(white))
    return "".join(out)


_values = st.lists(st.text("陈静广州天河路ABC0123456789号", min_size=1, max_size=6),
                   min_size=1, max_size=4).map(" ".join)

_PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _material(material_id: str, **over: Any) -> dict[str, Any]:
    event = {
        "type": "MaterialSubmitted", "event_id": f"ev-{material_id}", "case_id": "C1",
        "department": "scjgj", "occurred_at": T0, "material_id": material_id,
        "material_type": "PROPERTY_CERT", "name": "不动产权证",
        "holder": {"id_type": "RESIDENT_ID", "id_number": VALID_RID_2, "name": "陈静"},
        "document_number": None, "sha256": material_id[0] * 64, "pages": 1,
        "size_bytes": 1000, "form": "COPY", "declared_fields": {}, "task_id": None,
    }
    event.update(over)
    return event


@_PROPS
@given(data=st.data(), canonical=st.one_of(resident_ids(), usccs(), document_numbers()))
def test_every_variant_normalises_to_the_canonical_number(data: st.DataObject,
                                                          canonical: str) -> None:
    variant = data.draw(number_variants(canonical))
    assert normalise_number(variant) == normalise_number(canonical) == canonical
    assert normalise_number(normalise_number(variant)) == canonical  # idempotent
    assert len(number_view(variant)) == len(variant)
    # however typed, a real number is one the counter's lookups take
    assert is_plausible_id_number(variant) and is_plausible_id_number(canonical)


@_PROPS
@given(data=st.data(), canonical=_values)
def test_every_variant_of_a_declared_value_normalises_alike(data: st.DataObject,
                                                            canonical: str) -> None:
    variant = data.draw(value_variants(canonical))
    assert normalise_value(variant) == normalise_value(canonical) == canonical


@_PROPS
@given(data=st.data(), rid=resident_ids(), number=document_numbers(), value=_values)
def test_a_material_and_its_variant_get_the_same_verdict(data: st.DataObject, rid: str,
                                                         number: str, value: str) -> None:
    fields = {"权利人": "陈静", "坐落": value}

    def typed(material_id: str, id_number: str, doc: str, where: str) -> dict[str, Any]:
        return _material(material_id, document_number=doc, declared_fields={**fields,
                         "坐落": where}, holder={"id_type": "RESIDENT_ID",
                                               "id_number": id_number, "name": "陈静"})

    a = typed("a", rid, number, value)
    plain = typed("b", rid, number, value)
    variant = typed("b", data.draw(number_variants(rid)), data.draw(number_variants(number)),
                    data.draw(value_variants(value)))
    expected = verdict(material_from_event(a), material_from_event(plain))
    assert expected == Verdict(VerdictKind.SAME_DOCUMENT)
    assert verdict(material_from_event(a), material_from_event(variant)) == expected
    # and on the protected form the stream apps carry (compared by keyed hashes)
    assert verdict(material_from_event(protect_event(a, keyed)),
                   material_from_event(protect_event(variant, keyed))) == expected


@_PROPS
@given(data=st.data(), canonical=st.one_of(resident_ids(), usccs()))
def test_every_variant_of_an_id_number_has_one_keyed_hash(data: st.DataObject,
                                                          canonical: str) -> None:
    variant = data.draw(number_variants(canonical))
    assert id_hash(variant, keyed) == id_hash(canonical, keyed) == keyed(canonical)
    assert mask_id(variant) == mask_id(canonical)
    assert is_valid_resident_id(variant) == is_valid_resident_id(canonical)
    assert is_valid_uscc(variant) == is_valid_uscc(canonical)


@_PROPS
@given(data=st.data(), canonical=st.one_of(resident_ids(), usccs()))
def test_every_variant_in_a_note_gets_the_same_mask(data: st.DataObject,
                                                    canonical: str) -> None:
    inner = data.draw(number_variants(canonical))
    # the number's own characters with separators only between them
    variant = inner.strip("".join(_SEPARATORS))
    note = f"请核对号码{variant}后办理"
    expected = f"请核对号码{mask_id(canonical)}后办理"
    assert scrub(note) == expected  # found by its check character
    assert scrub(note, {canonical}) == expected  # and as a known number
