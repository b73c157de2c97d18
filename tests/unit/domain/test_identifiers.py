from __future__ import annotations

import pytest
from hypothesis import given
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

from .helpers import VALID_RID, VALID_RID_2, VALID_USCC

# The standard's own example (GB 11643-1999 annex) and the worked case's numbers.
RESIDENT_IDS = [VALID_RID, VALID_RID_2, "11010519491231002x"]
# The worked case's applicant, and the GB 32100-2015 style example.
USCCS = [VALID_USCC, "91350100M000100Y43"]


@pytest.mark.parametrize("value", RESIDENT_IDS)
def test_valid_resident_ids(value: str) -> None:
    assert is_valid_resident_id(value)


def test_check_digit_of_the_standard_example() -> None:
    assert resident_id_check_char("11010519491231002") == "X"
    assert resident_id_check_char("44010619850312123") == "7"


@pytest.mark.parametrize("value", USCCS)
def test_valid_usccs(value: str) -> None:
    assert is_valid_uscc(value)


def test_the_worked_example_uscc_validates() -> None:
    assert uscc_check_char("91440101MA5CXYW12") == "3"


@pytest.mark.parametrize("value", [VALID_RID, VALID_RID_2])
def test_every_single_character_corruption_of_a_resident_id_is_rejected(value: str) -> None:
    for i in range(18):
        for ch in "0123456789X":
            if ch == value[i]:
                continue
            corrupted = value[:i] + ch + value[i + 1:]
            assert not is_valid_resident_id(corrupted), corrupted


@pytest.mark.parametrize("value", USCCS)
def test_every_single_character_corruption_of_a_uscc_is_rejected(value: str) -> None:
    for i in range(18):
        for ch in USCC_CHARSET + "IOZSV":
            if ch == value[i]:
                continue
            corrupted = value[:i] + ch + value[i + 1:]
            assert not is_valid_uscc(corrupted), corrupted


@pytest.mark.parametrize("value", [VALID_RID, VALID_RID_2])
def test_adjacent_transpositions_of_a_resident_id_are_rejected(value: str) -> None:
    for i in range(17):
        swapped = value[:i] + value[i + 1] + value[i] + value[i + 2:]
        if swapped != value:
            assert not is_valid_resident_id(swapped), swapped


@pytest.mark.parametrize("value", [
    "", "1101051949123100", "110105194912310021X", "110105491231002",  # 15-digit old ID
    "A1010519491231002X", "11010519491231002Y", None, 11010519491231002,
])
def test_malformed_resident_ids(value: object) -> None:
    assert not is_valid_resident_id(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [
    "", "91440101MA5CXYW12", "91440101MA5CXYW1233", "91440101MA5CXYWI23", None,
])
def test_malformed_usccs(value: object) -> None:
    assert not is_valid_uscc(value)  # type: ignore[arg-type]


def test_normalisation_before_checking() -> None:
    # NFKC (full-width digits), case, spaces and dashes, as domain.md section 5.
    assert is_valid_resident_id("440106 19850312 1237")
    assert is_valid_resident_id("４４０１０６１９８５０３１２１２３７")
    assert is_valid_resident_id("110105-19491231-002x")
    assert is_valid_uscc("91440101ma5cxyw123")
    assert is_valid_uscc(" 9144 0101 MA5C XYW1 23 ")


@pytest.mark.parametrize("value", [
    VALID_RID, "11010519491231002x", "440106 19850312 1237", VALID_USCC, "E12345678",
    "A123456(7)", "Ａ１２３４５６（７）", "南字第12345号", "H1234567\u200b8", "5"])
def test_plausible_id_numbers(value: str) -> None:
    assert is_plausible_id_number(value)


@pytest.mark.parametrize("value", [
    "../../", "..\\..\\1", "<script>1</script>", "N/A", "12/34", "1;DROP", "a.b.1", "%2e%2e1",
    "ABCDEF", "甲乙丙", "", " \u200b—", None])
def test_implausible_id_numbers(value: str | None) -> None:
    """Not a number of any type once normalised (the counter's lookups answer 422)."""
    assert not is_plausible_id_number(value)


def test_mask_id() -> None:
    assert mask_id("440106198503121234") == "44**************34"
    assert mask_id("440106 19850312 1237") == "44**************37"
    assert mask_id(VALID_USCC) == "91**************23"
    assert mask_id("E12345678") == "*******78"
    assert mask_id("1234") == "****"
    assert mask_id("") == ""
    assert mask_id(None) is None
    assert mask_id("11010519491231002x") == "11**************2X"
    assert mask_id("E1234567890") == "E1*******90"  # more than 10: first 2 and last 2
    assert mask_id("1234567890") == "********90"
    assert mask_id("12345") == "***45"


def test_mask_hides_the_area_code_and_the_birth_date() -> None:
    for rid in RESIDENT_IDS:
        masked = mask_id(rid)
        assert masked is not None
        assert masked[2:16] == "*" * 14  # area code (3-6) and birth date (7-14) hidden
        assert rid[6:14] not in masked and rid[2:6] not in masked
    for code in USCCS:
        assert mask_id(code)[2:16] == "*" * 14  # area code (3-8), organisation code


_ID_CHARS = st.characters(codec="ascii", categories=["Lu", "Nd"])


@given(st.text(_ID_CHARS, max_size=40))
def test_mask_keeps_its_length_shows_at_most_four_and_masks_to_itself(number: str) -> None:
    masked = mask_id(number)
    assert masked is not None and len(masked) == len(number)
    shown = [i for i, ch in enumerate(masked) if ch != "*"]
    assert all(masked[i] == number[i] for i in shown)
    if len(number) <= 4:
        assert shown == []
    elif len(number) <= 10:
        assert shown == [len(number) - 2, len(number) - 1]
    else:
        assert shown == [0, 1, len(number) - 2, len(number) - 1]
    assert mask_id(masked) == masked
    # a wider mask of the same number (the rule before: first 6, last 4) narrows to it
    if len(number) > 10:
        assert mask_id(number[:6] + "*" * (len(number) - 10) + number[-4:]) == masked
