"""Citizen and company ID numbers in the read model: a keyed hash and a mask, never plain.

* :meth:`IdProtector.hash` is HMAC-SHA256 (key ``ONEWINDOW_ID_HASH_KEY``) of the number
  normalised as domain.md section 5 normalises a holder's ``id_number`` (NFKC, upper case,
  spaces and ``-`` removed), as 64 lowercase hex. The same person typed two ways gets one
  hash, a lookup hashes the query the same way, and without the key the hash cannot be
  reversed by enumerating the (small) space of valid ID numbers.
* :func:`onewindow.domain.identifiers.mask_id` gives the displayed form
  (``440106********1234``).
* :meth:`IdProtector.redact_event` rewrites an event's JSON form for storage:
  ``id_number`` becomes ``id_masked`` + ``id_hash``; a ``document_number`` that is an ID
  number (an ``ID_CARD``, the holder's own number such as a business licence's USCC, or
  any valid GB 11643 / GB 32100 number) becomes ``document_number_masked`` +
  ``document_number_hash``; every other string is passed through :meth:`scrub`.
* :meth:`IdProtector.scrub` masks ID numbers inside free text (notes, dead-letter
  details, declared fields): the known numbers of the record however they were typed
  (spaces, dashes, full-width digits), and any 18-character token that passes the
  GB 11643 or GB 32100 check. A harmless 18-character code that happens to pass a check
  is masked too: over-masking free text is the safe side. Text without any digit is
  left as it is (every resident ID, USCC and passport number has digits).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from onewindow.domain.identifiers import (
    is_valid_resident_id,
    is_valid_uscc,
    mask_id,
    normalise_id_number,
)

__all__ = ["DEV_KEY", "IdProtector", "is_id_like"]

#: The development default of Settings.id_hash_key: processes warn when it is in use.
DEV_KEY = "onewindow-local-development-key"

_SEP = r"[\s\-]"
_CANDIDATE = re.compile(rf"(?<![0-9A-Z])[0-9A-Z](?:{_SEP}?[0-9A-Z]){{17}}(?![0-9A-Z])")
_ID_CARD_TYPES = frozenset({"ID_CARD", "RESIDENT_ID", "RESIDENT_ID_CARD"})


def is_id_like(value: str | None) -> bool:
    """True when ``value`` normalises to a number passing the GB 11643 or GB 32100 check."""
    if not value:
        return False
    return is_valid_resident_id(value) or is_valid_uscc(value)


#: normalisation is pure and the same numbers recur in every record of a case
_norm = lru_cache(maxsize=65536)(normalise_id_number)

_DIGIT = re.compile(r"[0-9\uFF10-\uFF19]")


@lru_cache(maxsize=4096)
def _known_pattern(number: str) -> re.Pattern[str]:
    """A normalised number, matched with an optional separator between its characters."""
    return re.compile(f"{_SEP}?".join(re.escape(ch) for ch in number))


def _mapped(text: str) -> str:
    """``text`` with each character NFKC'd and upper-cased where that keeps it one
    character, so positions in the result are positions in ``text``."""
    if text.isascii():
        return text.upper()
    out = []
    for ch in text:
        m = unicodedata.normalize("NFKC", ch).upper()
        out.append(m if len(m) == 1 else ch)
    return "".join(out)


class IdProtector:
    """Keyed hashing, masking and redaction of ID numbers (one per process)."""

    def __init__(self, key: str | bytes) -> None:
        if isinstance(key, str):
            key = key.encode("utf-8")
        if not key:
            raise ValueError("the ID hash key must not be empty")
        self._key = key
        self._hash = lru_cache(maxsize=65536)(self._hash_normalised)

    @classmethod
    def from_settings(cls, settings: Any) -> IdProtector:
        return cls(settings.id_hash_key.get_secret_value())

    @property
    def is_dev_key(self) -> bool:
        return self._key == DEV_KEY.encode()

    # ------------------------------------------------------------------ numbers

    def hash(self, number: str) -> str:
        """HMAC-SHA256 hex of the normalised number."""
        return self._hash(_norm(number))

    def _hash_normalised(self, norm: str) -> str:
        return hmac.new(self._key, norm.encode("utf-8"), hashlib.sha256).hexdigest()

    def protect(self, number: str | None) -> tuple[str | None, str | None]:
        """``(hash, masked)`` of a number; ``(None, None)`` for None or empty."""
        if number is None or not _norm(number):
            return None, None
        return self.hash(number), mask_id(number)

    # ------------------------------------------------------------------ free text

    def scrub(self, text: str, known: Iterable[str] = ()) -> str:
        """``text`` with every known ID number (normalised forms) and every
        check-valid 18-character ID number in it replaced by its mask."""
        if not text or not isinstance(text, str) or len(text) < 6 or not _DIGIT.search(text):
            return text  # fast path: every ID number scrubbed here has digits
        mapped = _mapped(text)
        spans: list[tuple[int, int]] = []
        for number in {k for k in known if k and len(k) >= 6}:
            spans.extend(m.span() for m in _known_pattern(number).finditer(mapped))
        for m in _CANDIDATE.finditer(mapped):
            if is_id_like(m.group(0)):
                spans.append(m.span())
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
            out.append(mask_id(mapped[s:e]) or "")
            pos = e
        out.append(text[pos:])
        return "".join(out)

    # ------------------------------------------------------------------ events

    @staticmethod
    def known_ids(event: Mapping[str, Any]) -> set[str]:
        """Normalised ID numbers named by an event (applicant, holder), in any form."""
        found: set[str] = set()
        for party in ("applicant", "holder"):
            p = event.get(party)
            if isinstance(p, Mapping) and isinstance(p.get("id_number"), str):
                n = _norm(p["id_number"])
                if n:
                    found.add(n)
        return found

    def is_sensitive_number(self, number: str | None, material_type: str | None,
                            known: Iterable[str]) -> bool:
        """Whether a document number is (or contains) an ID number."""
        if not number:
            return False
        norm = _norm(number)
        if material_type in _ID_CARD_TYPES or is_id_like(norm):
            return True
        return any(k and k in norm for k in known)

    def redact_party(self, party: Mapping[str, Any], known: set[str]) -> dict[str, Any]:
        """An applicant/holder with ``id_number`` replaced by ``id_masked`` + ``id_hash``."""
        out: dict[str, Any] = {}
        for k, v in party.items():
            if k == "id_number" and isinstance(v, str):
                out["id_masked"] = mask_id(v)
                out["id_hash"] = self.hash(v)
            else:
                out[k] = self._redact(v, known)
        return out

    def redact_event(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """A redacted copy of an event's JSON form (or any JSON object) for storage."""
        known = self.known_ids(obj)
        mtype = obj.get("material_type") or obj.get("certificate_type")
        out: dict[str, Any] = {}
        for k, v in obj.items():
            if k in ("applicant", "holder") and isinstance(v, Mapping):
                out[k] = self.redact_party(v, known)
            elif (k == "document_number" and isinstance(v, str)
                  and self.is_sensitive_number(v, mtype, known)):
                out["document_number_masked"] = mask_id(v)
                out["document_number_hash"] = self.hash(v)
            else:
                out[k] = self._redact(v, known)
        return out

    def _redact(self, value: Any, known: set[str]) -> Any:
        if isinstance(value, Mapping):
            return {self.scrub(k, known) if isinstance(k, str) else k: self._redact(v, known)
                    for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._redact(v, known) for v in value]
        if isinstance(value, str):
            return self.scrub(value, known)
        return value
