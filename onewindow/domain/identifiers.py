"""Identity numbers: GB 11643 resident IDs and GB 32100 unified social credit codes.

Pure standard library. Used by validation (dead-letter reason ``INVALID_ID_NUMBER``)
and wherever an ID number is displayed (``mask_id``).

Choices where the contract is silent (docs/state-rules.md):

* **Normalisation before checking** is the one of domain.md section 5 for id
  numbers (:func:`onewindow.domain.normalise.normalise_number`: NFKC, upper case,
  white space, format characters and dashes removed, brackets folded). So
  ``４４０１０６ 19850312—123７``, a zero-width space inside and a lower-case final ``x``
  are accepted, exactly as materials treats them as the same holder.
* **Resident ID** (GB 11643-1999): 17 digits and a check character ``0-9`` or ``X``
  (ISO 7064 MOD 11-2). Only the check character is verified, not the region code or
  the birth date: the contract names the check digit, and a department system may
  hold a correct number whose region code has since been retired.
* **15-digit IDs** (first generation, before 1999) have no check digit, so they
  cannot pass "the GB 11643 check digit": they are invalid. They expired in 2013.
* **USCC** (GB 32100-2015): 18 characters of ``0-9A-HJ-NP-RTUWXY`` (no I, O, Z, S, V);
  the 18th is the check character (ISO 7064 MOD 31-3 style, weights 3^i mod 31).
  Only the check character is verified.
* **A plausible number** (:func:`is_plausible_id_number`, for what staff type into a
  lookup; the contract has no such rule and events are not checked with it): once
  normalised, at least one ASCII digit and nothing but letters, digits and ``()``.
"""

from __future__ import annotations

from onewindow.domain.normalise import normalise_number

__all__ = [
    "USCC_CHARSET",
    "is_plausible_id_number",
    "is_valid_resident_id",
    "is_valid_uscc",
    "mask_id",
    "resident_id_check_char",
    "uscc_check_char",
]

_RID_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))  # 7 9 10 5 8 4 2 1 6 3 ...
_RID_CHECK = "10X98765432"
_DIGITS = frozenset("0123456789")

USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {ch: i for i, ch in enumerate(USCC_CHARSET)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def resident_id_check_char(first17: str) -> str:
    """The GB 11643 check character of 17 digits."""
    if len(first17) != 17 or not all(ch in _DIGITS for ch in first17):
        raise ValueError("a resident ID body is 17 ASCII digits")
    total = sum(int(ch) * w for ch, w in zip(first17, _RID_WEIGHTS, strict=True))
    return _RID_CHECK[total % 11]


def is_valid_resident_id(value: str) -> bool:
    """True for an 18-character GB 11643 number whose check character is right."""
    if not isinstance(value, str):
        return False
    s = normalise_number(value)
    if len(s) != 18 or not all(ch in _DIGITS for ch in s[:17]):
        return False
    return resident_id_check_char(s[:17]) == s[17]


def uscc_check_char(first17: str) -> str:
    """The GB 32100 check character of the first 17 characters."""
    if len(first17) != 17 or not all(ch in _USCC_VALUE for ch in first17):
        raise ValueError("a USCC body is 17 characters of " + USCC_CHARSET)
    total = sum(_USCC_VALUE[ch] * w for ch, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_CHARSET[(31 - total % 31) % 31]


def is_valid_uscc(value: str) -> bool:
    """True for an 18-character GB 32100 code whose check character is right."""
    if not isinstance(value, str):
        return False
    s = normalise_number(value)
    if len(s) != 18 or not all(ch in _USCC_VALUE for ch in s):
        return False
    return uscc_check_char(s[:17]) == s[17]


def is_plausible_id_number(value: str | None) -> bool:
    """Whether ``value`` could be an identity or document number of any type: after the
    normalisation of domain.md section 5 (:func:`normalise_number`: separators removed,
    brackets folded) it holds at least one ASCII digit and only letters (any script:
    ``南字第12345号``), digits and ``()``. ``E12345678``, ``A123456(7)``, ``440106 1985
    0312 1237`` are; ``../../``, ``<script>``, ``N/A`` and blanks are not.

    Not a rule of the contract (domain.md is silent): the counter refuses a lookup by an
    ID number that fails it (422) rather than hashing it and showing its mask. Events are
    not checked with it (section 2 takes any non-empty ``PASSPORT`` or ``OTHER`` number).
    Linear in the value."""
    s = normalise_number(value)
    return any("0" <= ch <= "9" for ch in s) \
        and all(ch.isalnum() or ch in "()" for ch in s)


def mask_id(value: str | None) -> str | None:
    """The displayed form of an ID number: ``44**************37`` (docs/privacy.md, "What
    the mask shows and why").

    The number is normalised first (domain.md section 5: so separators do not leak into
    the mask). A number of more than 10 characters keeps its first 2 and last 2 (a
    resident ID its province code, never the area code or the birth date; a USCC its
    registering authority and kind, never the area code or the organisation code); one of
    5 to 10 characters (a passport number) keeps only its last 2; one of 4 or fewer is
    masked whole. The mask is never a secret and never a lookup key: it tells apart two
    holders on one screen, nothing more. Idempotent: a mask masks to itself, so an older,
    wider mask is narrowed by masking it again. ``None`` stays ``None``.
    """
    if value is None:
        return None
    s = normalise_number(value)
    n = len(s)
    if n > 10:
        return s[:2] + "*" * (n - 4) + s[-2:]
    if n > 4:
        return "*" * (n - 2) + s[-2:]
    return "*" * n
