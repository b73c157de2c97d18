"""The query code printed on a case's acceptance receipt: what a citizen types, with the
case number, into the progress lookup (interfaces.md, "HTTP API of the counter app":
"the query code printed on the acceptance receipt, never something shown elsewhere").

It is derived, not stored: the keyed hash (HMAC-SHA256 under the ID hash key, the
``digest`` the caller passes) of a purpose label and the case id, so no event needs a
new field and only a holder of the key can compute it. 40 bits, written as eight
characters of Crockford's base32 (no I, L, O, U: nothing to misread on paper) in two
groups, ``7K3D-QX9M``. At the lookup's limit of a few failures per case per hour, 40
bits are out of reach of guessing; the lookup answers a wrong code like an unknown case.

Standard library only, like the rest of :mod:`onewindow.domain`.
"""

from __future__ import annotations

import hmac
import unicodedata
from collections.abc import Callable

__all__ = ["ALPHABET", "matches", "normalise_code", "query_code"]

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32
_PURPOSE = "onewindow/receipt-query-code/v1\x00"
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})


def query_code(digest: Callable[[str], str], case_id: str) -> str:
    """The query code of ``case_id``: ``XXXX-XXXX``. ``digest`` maps text to the hex of
    its keyed hash (:meth:`onewindow.security.id_protection.IdProtector.digest`); the
    purpose label keeps these digests apart from ID-number hashes (a normalised ID
    number never holds ``/`` nor NUL)."""
    bits = int(digest(_PURPOSE + case_id)[:10], 16)  # 40 bits
    chars = [ALPHABET[(bits >> shift) & 31] for shift in range(35, -1, -5)]
    return "".join(chars[:4]) + "-" + "".join(chars[4:])


def normalise_code(text: str) -> str:
    """What a citizen typed, as the eight characters to compare: case, blanks and
    hyphens ignored, full-width forms read as ASCII, O read as 0 and I/L as 1
    (Crockford's decoding rule)."""
    text = unicodedata.normalize("NFKC", text)  # full-width letters of an input method
    return "".join(text.split()).replace("-", "").upper().translate(_READ_AS)


def matches(digest: Callable[[str], str], case_id: str, typed: str) -> bool:
    """Whether ``typed`` is the query code of ``case_id`` (compared in constant time)."""
    want = query_code(digest, case_id).replace("-", "")
    return hmac.compare_digest(want.encode(), normalise_code(typed).encode("utf-8"))
