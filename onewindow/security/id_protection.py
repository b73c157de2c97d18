"""Citizen and company ID numbers past the input topics: a keyed hash and a mask, never plain.

One implementation, used by the stream apps (protect each event after validation), the
sinks (read-model rows) and the counter (lookups hash the query the same way):

* :meth:`IdProtector.hash` is HMAC-SHA256 (key ``ONEWINDOW_ID_HASH_KEY``) of the number
  normalised as domain.md section 5 normalises a holder's ``id_number``
  (:func:`onewindow.domain.normalise.normalise_number`: NFKC, upper case, white space,
  format characters and dashes removed, brackets folded), as 64 lowercase hex. The same person typed two ways gets one
  hash, a lookup hashes the query the same way, and without the key the hash cannot be
  reversed by enumerating the (small) space of valid ID numbers.
* :func:`onewindow.domain.identifiers.mask_id` gives the displayed form
  (``44**************34``).
* Where ID numbers sit in an event and what replaces them are pure rules
  (:mod:`onewindow.domain.protection`, which takes the keyed hash as an argument);
  :class:`IdProtector` binds them to the key: :meth:`~IdProtector.protect_event` for the
  stream apps, :meth:`~IdProtector.redact_event` and :meth:`~IdProtector.scrub` for the
  read model.
* :func:`event_from_json` reads the JSON form of an event back, plain or protected (the
  ``event_json`` of a ``CaseActivity`` record of v1 or v2; v3 carries the event in Avro:
  `onewindow.security.protected_form`).

Every process that writes or reads hashes must use the same key: the stream apps hash
what they emit, and the sink stores those hashes as they come.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from onewindow.codec import Codec
from onewindow.config import Settings
from onewindow.domain import protection
from onewindow.domain.identifiers import mask_id
from onewindow.domain.normalise import normalise_number
from onewindow.domain.protection import (
    DECLARED_HASH,
    ID_CACHE_ENTRIES,
    ID_HASH,
    ID_MASKED,
    NUMBER_HASH,
    NUMBER_MASKED,
    PARTIES,
    is_id_like,
    is_protected,
)
from onewindow.security.id_key import DEV_KEY, resolve_id_hash_key

__all__ = ["DEV_KEY", "IdProtector", "event_from_json", "is_id_like", "is_protected"]

log = logging.getLogger(__name__)


class IdProtector:
    """Keyed hashing, masking and redaction of ID numbers (one per process)."""

    def __init__(self, key: str | bytes) -> None:
        if isinstance(key, str):
            key = key.encode("utf-8")
        if not key:
            raise ValueError("the ID hash key must not be empty")
        self._key = key
        self.digest = lru_cache(maxsize=ID_CACHE_ENTRIES)(self._digest)

    @classmethod
    def from_settings(cls, settings: Settings) -> IdProtector:
        """The protector of the key :func:`~onewindow.security.id_key.resolve_id_hash_key`
        decides (the configured key, else its file, else the development key only when
        opted in); raises :class:`~onewindow.security.id_key.IdHashKeyError`, one line,
        when there is none."""
        return cls(resolve_id_hash_key(settings))

    @property
    def is_dev_key(self) -> bool:
        return self._key == DEV_KEY.encode()

    # ------------------------------------------------------------------ numbers

    def _digest(self, text: str) -> str:
        """HMAC-SHA256 hex of ``text`` (cached per process: numbers recur)."""
        return hmac.new(self._key, text.encode("utf-8"), hashlib.sha256).hexdigest()

    def hash(self, number: str) -> str:
        """HMAC-SHA256 hex of the normalised number."""
        return protection.id_hash(number, self.digest)

    def protect(self, number: str | None) -> tuple[str | None, str | None]:
        """``(hash, masked)`` of a number; ``(None, None)`` for None or empty."""
        if number is None or not normalise_number(number):
            return None, None
        return self.hash(number), mask_id(number)

    def party_id(self, party: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
        """``(hash, masked)`` of an applicant or holder, protected (as it carries them:
        never hashed twice; the mask masked again, which narrows the wider mask of a
        record written before the mask showed less) or plain (a record written before the
        stream apps protected events: hashed now)."""
        if party is None:
            return None, None
        if party.get(ID_HASH) is not None:
            return party[ID_HASH], mask_id(party.get(ID_MASKED))
        return self.protect(party.get("id_number"))

    # ------------------------------------------------------------------ events, text

    def protect_event(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The protected form of a validated event (dict or JSON form):
        :func:`onewindow.domain.protection.protect_event` under this key."""
        return protection.protect_event(event, self.digest)

    def protect_party(self, party: Mapping[str, Any]) -> dict[str, Any]:
        """An applicant or holder in the protected form (``id_hash`` + ``id_masked``)."""
        if protection.is_protected({"holder": party}):
            return dict(party)
        return protection.protect_party(party, self.digest,
                                        protection.known_ids({"holder": party}))

    def redact_event(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """The read model's redacted copy of an event's JSON form, plain or protected:
        :func:`onewindow.domain.protection.redact_event` under this key."""
        return protection.redact_event(obj, self.digest)

    scrub = staticmethod(protection.scrub)
    known_ids = staticmethod(protection.known_ids)
    is_sensitive_number = staticmethod(protection.is_sensitive_number)


_PLACEHOLDER = "0"


def event_from_json(codec: Codec, obj: Any) -> dict[str, Any]:
    """The event (dict form: timestamps as datetimes, dates as dates) of a JSON form,
    plain or protected. A plain one is exactly ``codec.from_json``. A protected one is
    checked by the same schema with placeholders where the ID numbers were, then given
    back its protected fields: its parties as they are (``id_hash``, ``id_masked``, no
    ``id_number``), ``document_number`` only when it was kept readable, and the hashes.
    Raises ``DecodeError("INVALID_FIELD")`` like ``from_json``."""
    if not isinstance(obj, dict) or not is_protected(obj):
        return codec.from_json(obj)
    shell = {k: v for k, v in obj.items() if k not in protection.PROTECTED_FIELDS}
    for party in PARTIES:
        p = obj.get(party)
        if isinstance(p, Mapping):
            shell[party] = {**{k: v for k, v in p.items() if k not in (ID_HASH, ID_MASKED)},
                            "id_number": _PLACEHOLDER}
    if obj.get("document_number") is None and obj.get(NUMBER_HASH) is not None:
        shell["document_number"] = _PLACEHOLDER  # required in a CertificateIssued
    event = codec.from_json(shell)
    for party in PARTIES:
        p = obj.get(party)
        if isinstance(p, Mapping):
            event[party] = dict(p)
    if "document_number" not in obj and obj.get(NUMBER_HASH) is not None:
        event.pop("document_number", None)  # replaced by its hash and mask
    for name in (NUMBER_HASH, NUMBER_MASKED, DECLARED_HASH):
        if obj.get(name) is not None:
            event[name] = obj[name]
    return event

