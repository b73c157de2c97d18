from __future__ import annotations

import pytest

from onewindow.domain.identifiers import (
    USCC_CHARSET,
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


def test_mask_id() -> None:
    assert mask_id("440106198503121234") == "440106********1234"
    assert mask_id("440106 19850312 1237") == "440106********1237"
    assert mask_id(VALID_USCC) == "914401********W123"
    assert mask_id("E12345678") == "*****5678"
    assert mask_id("1234") == "****"
    assert mask_id("") == ""
    assert mask_id(None) is None
