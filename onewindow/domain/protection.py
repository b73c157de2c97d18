"""ID numbers in events and free text: where they sit and what stands in for them (pure).

interfaces.md: derived topics and state stores carry citizen and company ID numbers only
as the keyed hash and the masked form; plaintext stays in the input topics and the
dead-letter topic. The stream apps protect each event right after validation
(:func:`protect_event`); the read model stores its own redacted copy
(:func:`redact_event`). docs/privacy.md has the whole picture.

The keyed hash needs a secret key, which is configuration, not a rule: every function
here that hashes takes ``keyed``, a function text -> hex digest (HMAC-SHA256 under
``ONEWINDOW_ID_HASH_KEY`` in the processes: :meth:`onewindow.security.id_protection.
IdProtector.digest`; anything deterministic in tests). Nothing here reads a key.

**A protected event** is the event (its dict form or its JSON form: only strings and
mappings are touched) with:

* in each party (``applicant``, ``holder``): ``id_number`` replaced by ``id_hash``
  (``keyed`` of the number normalised as domain.md section 5 normalises it) and
  ``id_masked`` (:func:`~onewindow.domain.identifiers.mask_id`, ``44**************34``);
* a ``document_number`` that is not empty after normalisation: ``document_number_hash``
  (the keyed hash of the normalised number) always, so every material compares numbers
  the same way; the number itself is replaced by ``document_number_masked`` when it is
  an ID number (:func:`is_sensitive_number`: an ID card's, one containing the event's own
  ID numbers such as a business licence's USCC, or any valid GB 11643 / GB 32100 number),
  else kept as typed, but for an ID number token inside it, masked as in free text
  (:func:`scrub`: a careless entry, an ID number typed into another document's number);
* ``declared_fields``: keys and values passed through :func:`scrub` (for display), and
  ``declared_fields_hash``: ``{key: keyed hash of the normalised value}`` for every value
  holding a digit (only those can hold an ID number), so the material rules compare those
  values exactly, not by their masks;
* every other string (names, notes, reasons, a service name) passed through
  :func:`scrub`, except the identifiers and codes in :data:`VERBATIM`, which the pipeline
  keys, joins or compares on.

The keyed hash is deterministic, so two equal events stay equal and two different ID
numbers stay different: the case fold's fingerprints and the material rules work on the
protected form as they did on the plain one (``onewindow.domain.materials`` reads the
hashes wherever they are present).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any

from onewindow.domain.events import (
    ALL_FIELDS,
    CASE_ACCEPTED,
    CERTIFICATE_ISSUED,
    MATERIAL_SUBMITTED,
)
from onewindow.domain.identifiers import is_valid_resident_id, is_valid_uscc, mask_id
from onewindow.domain.normalise import (
    SEPARATOR,
    has_digit,
    normalise_number,
    normalise_value,
    number_view,
)

__all__ = [
    "DECLARED_HASH",
    "ID_CARD_TYPES",
    "ID_HASH",
    "ID_MASKED",
    "KeyedHash",
    "NUMBER_HASH",
    "NUMBER_MASKED",
    "PARTIES",
    "PROTECTED_FIELDS",
    "VERBATIM",
    "declared_value_hash",
    "id_hash",
    "is_id_like",
    "is_protected",
    "is_sensitive_number",
    "known_ids",
    "protect_event",
    "protect_party",
    "redact_event",
    "scrub",
]

#: text -> hex digest, keyed (the key is the caller's configuration)
KeyedHash = Callable[[str], str]

PARTIES = ("applicant", "holder")
ID_HASH = "id_hash"
ID_MASKED = "id_masked"
NUMBER_HASH = "document_number_hash"
NUMBER_MASKED = "document_number_masked"
DECLARED_HASH = "declared_fields_hash"
#: Top-level fields a protected event adds (they count in the fold's fingerprint).
PROTECTED_FIELDS = frozenset({NUMBER_HASH, NUMBER_MASKED, DECLARED_HASH})

#: Fields never rewritten, at any depth: identifiers and codes that the pipeline keys,
#: joins or compares on (a case id is a Kafka key), timestamps, enums and hashes. An ID
#: number typed into one of them stays there (docs/privacy.md).
VERBATIM = frozenset({
    "type", "event_id", "case_id", "department", "occurred_at", "task_id", "material_id",
    "certificate_id", "material_type", "certificate_type", "service_code", "window_id",
    "case_kind", "channel", "status", "form", "sha256", "valid_until", "kind", "id_type",
    "promise", "pages", "size_bytes", ID_HASH, ID_MASKED, NUMBER_HASH, NUMBER_MASKED,
    DECLARED_HASH,
})

ID_CARD_TYPES = frozenset({"ID_CARD", "RESIDENT_ID", "RESIDENT_ID_CARD"})

#: Free text is searched in its :func:`~onewindow.domain.normalise.number_view`, where
#: every separator of domain.md section 5 (white space, format characters such as the
#: zero-width space and the BOM, dashes and the minus sign) reads as ``SEPARATOR``: an
#: ID number may have any run of them between two of its characters. A token is 18
#: letters or digits so separated, not glued to a letter or digit on either side; it is
#: tried at every start (a lookahead, so candidates overlap): one that starts inside a
#: longer run of separated characters (``2025 0001 440103 19820310 1438``) is found too.
_SEP = re.escape(SEPARATOR) + "*"
_CANDIDATE = re.compile(rf"(?<![0-9A-Z])(?=([0-9A-Z](?:{_SEP}[0-9A-Z]){{17}})(?![0-9A-Z]))")
_DECLARED_DOMAIN = "declared\x1f"
#: a declared value's hash: 128 bits are plenty for equality and keep buckets small
_DECLARED_HEX = 32

#: Entries of each cache of ID and document numbers (normalised, masked, checked, keyed
#: hash): the same numbers recur in the records of a case and of a batch. Each cache is
#: under 1 MiB full (some 200 bytes an entry); 65,536 entries made each 10-17 MiB, which
#: a worker filled over hours, its memory growing all that time (docs/benchmarks.md).
ID_CACHE_ENTRIES = 4096

#: normalisation and masking are pure, and the same numbers recur in every record of a case
_norm = lru_cache(maxsize=ID_CACHE_ENTRIES)(normalise_number)
_mask = lru_cache(maxsize=ID_CACHE_ENTRIES)(mask_id)


@lru_cache(maxsize=ID_CACHE_ENTRIES)
def is_id_like(value: str | None) -> bool:
    """True when ``value`` normalises to a number passing the GB 11643 or GB 32100 check."""
    if not value:
        return False
    return is_valid_resident_id(value) or is_valid_uscc(value)


# ------------------------------------------------------------------ free text


@lru_cache(maxsize=ID_CACHE_ENTRIES)
def _token_is_id_like(token: str) -> bool:
    """:func:`is_id_like` of a candidate token of free text (in its number view): the
    same tokens recur in the events of a case (a task id such as ``GZ20250303000001-HJ``
    reads as one), so the answer is remembered."""
    return is_id_like(normalise_number(token))


@lru_cache(maxsize=1024)
def _known_pattern(number: str) -> re.Pattern[str]:
    """A normalised number, matched with separators between its characters."""
    return re.compile(_SEP.join(re.escape(ch) for ch in number))


#: The caches of short free text and declared values below: names and values recur in the
#: events of a case (the worker asks of every one, issue 15). Only texts of at most
#: ``_CACHED_CHARS`` characters are kept, so a full cache stays small (a few MiB).
_TEXT_CACHE_ENTRIES = ID_CACHE_ENTRIES
_CACHED_CHARS = 64
_has_digit_cached = lru_cache(maxsize=_TEXT_CACHE_ENTRIES)(has_digit)
_norm_value_cached = lru_cache(maxsize=_TEXT_CACHE_ENTRIES)(normalise_value)


def _has_digit(text: str) -> bool:
    """A digit as NFKC reads it: ASCII and full-width at once, any other digit NFKC makes
    ASCII (mathematical digits such as U+1D7CF) after normalising; validation reads
    those too, so the masking must."""
    return _has_digit_cached(text) if len(text) <= _CACHED_CHARS else has_digit(text)


def _norm_value(value: Any) -> str:
    if isinstance(value, str) and len(value) <= _CACHED_CHARS:
        return _norm_value_cached(value)
    return normalise_value(value)


def scrub(text: Any, known: Iterable[str] = ()) -> Any:
    """``text`` with every known ID number (normalised forms, however typed: spaces,
    dashes, format characters, full-width digits) and every 18-character token passing
    the GB 11643 or GB 32100 check replaced by its mask. A harmless 18-character code
    that happens to pass a check is masked too: over-masking free text is the safe side.
    Text without a digit, and anything that is not a string, is returned as it is.
    Idempotent: a mask holds no 18-character token."""
    if not text or not isinstance(text, str) or len(text) < 6:
        return text
    if type(known) not in (set, frozenset, tuple, list):
        known = tuple(known)  # read twice below
    n = len(text)  # number_view keeps the length: a token needs 18 characters, a known
    # number its own length at least (its characters, separators between them)
    if n < 18:
        for k in known:
            if k and 6 <= len(k) <= n:
                break
        else:
            return text
    if not _has_digit(text):
        return text  # every resident ID, USCC and passport number has digits
    mapped = number_view(text)
    spans: list[tuple[int, int]] = []
    for number in {k for k in known if k and len(k) >= 6}:
        spans.extend(m.span() for m in _known_pattern(number).finditer(mapped))
    for m in _CANDIDATE.finditer(mapped):
        if _token_is_id_like(m.group(1)):
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


def _scrub_all(value: Any, known: set[str]) -> Any:
    """:func:`scrub` every string inside ``value`` (mapping keys included), except the
    values of :data:`VERBATIM` fields."""
    if isinstance(value, str):
        return scrub(value, known)
    if isinstance(value, dict | Mapping):
        return {scrub(k, known): v if k in VERBATIM else _scrub_all(v, known)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_all(v, known) for v in value]
    return value


# ------------------------------------------------------------------ numbers


def known_ids(event: Mapping[str, Any]) -> set[str]:
    """Normalised ID numbers an event names in plaintext (applicant, holder)."""
    found: set[str] = set()
    for party in PARTIES:
        p = event.get(party)
        if p is not None and isinstance(p, dict | Mapping) \
                and isinstance(p.get("id_number"), str):
            n = _norm(p["id_number"])
            if n:
                found.add(n)
    return found


def is_sensitive_number(number: str | None, material_type: str | None,
                        known: Iterable[str]) -> bool:
    """Whether a document number is (or contains) an ID number: an ID card's number, a
    number passing the GB 11643 / GB 32100 check, or one containing a ``known`` number
    (the event's own parties: a business licence's number is its holder's USCC)."""
    if not number:
        return False
    norm = _norm(number)
    if material_type in ID_CARD_TYPES or is_id_like(norm):
        return True
    return any(k and k in norm for k in known)


def id_hash(number: str, keyed: KeyedHash) -> str:
    """The keyed hash of an ID or document number: ``keyed`` of the number normalised as
    domain.md section 5 normalises it (:func:`~onewindow.domain.normalise.
    normalise_number`), so ``440106 19850312 1237``, ``440106—19850312—1237``, a
    zero-width space inside and full-width digits all hash the same."""
    return keyed(_norm(number))


def declared_value_hash(value: Any, keyed: KeyedHash) -> str:
    """The keyed hash a protected event compares a declared value by: of the value
    normalised as the material rules normalise it (domain.md section 5:
    :func:`~onewindow.domain.normalise.normalise_value`), in its own domain (never equal
    to an ID number's hash), 128 bits."""
    return keyed(_DECLARED_DOMAIN + _norm_value(value))[:_DECLARED_HEX]


def is_protected(event: Mapping[str, Any]) -> bool:
    """Whether an event (dict or JSON form) is in the protected form: a party carries
    ``id_hash`` and no ``id_number``. Events without parties (TaskUpdated, CaseWithdrawn)
    hold no ID number field, only free text: False, and protecting them again is
    harmless (:func:`scrub` is idempotent)."""
    for party in PARTIES:
        p = event.get(party)
        if p is not None and isinstance(p, dict | Mapping) and ID_HASH in p \
                and p.get("id_number") is None:
            return True
    return False


# ------------------------------------------------------------------ events


def protect_party(party: Mapping[str, Any], keyed: KeyedHash,
                  known: set[str]) -> dict[str, Any]:
    """An applicant or holder with ``id_number`` replaced by ``id_hash`` + ``id_masked``
    and its other strings (the name) scrubbed."""
    out: dict[str, Any] = {}
    for k, v in party.items():
        if k == "id_number" and isinstance(v, str):
            out[ID_HASH] = id_hash(v, keyed)
            out[ID_MASKED] = _mask(v)
        elif k in VERBATIM:
            out[k] = v
        else:
            out[k] = _scrub_all(v, known)
    return out


def protect_event(event: Mapping[str, Any], keyed: KeyedHash) -> dict[str, Any]:
    """The protected form of a validated event (module docstring), for the stream apps:
    its fold, its state store and every derived topic.

    Works on the dict form and the JSON form alike (only strings and mappings change).
    An event already protected is returned as a copy, never hashed twice. Pure: the
    event is not modified.
    """
    etype = event.get("type")
    if type(etype) is str and etype in _REWRITTEN and event.keys() == ALL_FIELDS[etype]:
        party = event.get(_PARTY_OF.get(etype, ""))  # type: ignore[call-overload]
        if party is None or (type(party) is dict and ID_HASH not in party):
            return _protect_decoded(event, keyed, etype)  # type: ignore[arg-type]
    if is_protected(event):
        return dict(event)
    known = known_ids(event)
    mtype = event.get("material_type") or event.get("certificate_type")
    out: dict[str, Any] = {}
    for k, v in event.items():
        if k in VERBATIM or v is None:
            out[k] = v
        elif k in PARTIES and isinstance(v, dict | Mapping):
            out[k] = protect_party(v, keyed, known)
        elif k == "document_number" and isinstance(v, str) and _norm(v):
            out[NUMBER_HASH] = id_hash(v, keyed)
            if is_sensitive_number(v, mtype, known):
                out[NUMBER_MASKED] = _mask(v)
            else:
                out[k] = scrub(v, known)
        elif k == "declared_fields" and isinstance(v, Mapping):
            out[k], hashes = _protect_declared(v, keyed, known)
            if hashes:
                out[DECLARED_HASH] = hashes
        else:
            out[k] = _scrub_all(v, known)
    return out


#: Per event type, the fields protection may rewrite (every other one is in VERBATIM).
_REWRITTEN: dict[str, tuple[str, ...]] = {
    etype: tuple(k for k in sorted(fields) if k not in VERBATIM)
    for etype, fields in ALL_FIELDS.items()}
_PARTY_OF = {CASE_ACCEPTED: "applicant", MATERIAL_SUBMITTED: "holder",
             CERTIFICATE_ISSUED: "holder"}


def _protect_decoded(event: Mapping[str, Any], keyed: KeyedHash,
                     etype: str) -> dict[str, Any]:
    """:func:`protect_event` of an event with exactly its type's fields (as the codec
    decodes it) and a plain party: a copy in which only the fields of ``_REWRITTEN`` are
    looked at, each as :func:`protect_event` does (the same result; the keys it adds come
    last). The case-state worker protects every event it applies (issue 15)."""
    out = dict(event)
    party = event.get(_PARTY_OF.get(etype, ""))  # type: ignore[call-overload]
    known: set[str] = set()
    if party is not None and isinstance(party.get("id_number"), str):
        number = _norm(party["id_number"])
        if number:
            known.add(number)
    for k in _REWRITTEN[etype]:
        v = event[k]
        if v is None:
            continue
        if k in PARTIES and isinstance(v, dict | Mapping):
            out[k] = protect_party(v, keyed, known)
        elif k == "document_number" and isinstance(v, str) and _norm(v):
            out[NUMBER_HASH] = id_hash(v, keyed)
            if is_sensitive_number(v, event.get("material_type")
                                   or event.get("certificate_type"), known):
                del out[k]
                out[NUMBER_MASKED] = _mask(v)
            else:
                out[k] = scrub(v, known)
        elif k == "declared_fields" and isinstance(v, Mapping):
            out[k], hashes = _protect_declared(v, keyed, known)
            if hashes:
                out[DECLARED_HASH] = hashes
        elif k == "tasks" and type(v) is list \
                and all(type(t) is dict and t.keys() == _TASK_KEYS for t in v):
            # a CaseAccepted's declared tasks as decoded: only their names are free text
            out[k] = [{**t, "name": scrub(t["name"], known)} for t in v]
        else:
            out[k] = _scrub_all(v, known)
    return out


#: The keys of a declared task (CaseAccepted ``tasks``): ``name`` is free text, the
#: others are in VERBATIM.
_TASK_KEYS = frozenset({"task_id", "department", "name"})


def _protect_declared(fields: Mapping[Any, Any], keyed: KeyedHash,
                      known: set[str]) -> tuple[dict[Any, Any], dict[Any, str]]:
    """Declared fields scrubbed, and the keyed hash of each value holding a digit."""
    scrubbed: dict[Any, Any] = {}
    hashes: dict[Any, str] = {}
    for fk, fv in fields.items():
        key = scrub(fk, known)
        scrubbed[key] = scrub(fv, known)
        if isinstance(fv, str) and _has_digit(fv):
            hashes[key] = declared_value_hash(fv, keyed)
    return scrubbed, hashes


# ------------------------------------------------------------------ the read model's copy


def _redact_all(value: Any, known: set[str]) -> Any:
    if isinstance(value, Mapping):
        return {scrub(k, known): _redact_all(v, known) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_all(v, known) for v in value]
    return scrub(value, known)


#: Joins the views of an event's strings for one search (:func:`_scrub_keeps_all`):
#: neither a letter, a digit nor ``SEPARATOR``, so no token and no known number's match
#: runs across it, and it bounds a token as the end of a string does (the lookarounds of
#: ``_CANDIDATE``).
_JOIN = "!"


def _long_strings(value: Any, least: int, out: list[str]) -> None:
    """Every string inside ``value`` (mapping keys included) of ``least`` characters or
    more, appended to ``out``."""
    if isinstance(value, str):
        if len(value) >= least:
            out.append(value)
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if isinstance(k, str) and len(k) >= least:
                out.append(k)
            if type(v) is str:
                if len(v) >= least:
                    out.append(v)
            elif isinstance(v, Mapping | list | tuple | str):
                _long_strings(v, least, out)
    elif isinstance(value, list | tuple):
        for v in value:
            _long_strings(v, least, out)


def _scrub_keeps_all(value: Any, known: set[str]) -> bool:
    """True when :func:`scrub` under ``known`` returns every string inside ``value``
    (mapping keys included) unchanged, decided by one search over all of them instead of
    one per string (issue 15: the read model redacts every event the stream apps already
    protected, where it almost never finds anything).

    Exact, not a guess: the strings :func:`scrub` returns at once (too short for a token
    or a known number, no digit) are left out as it leaves them; the others' views
    (:func:`~onewindow.domain.normalise.number_view`, each on its own) are joined by
    ``_JOIN``, so a span :func:`scrub` would mask in one string (a known number's match,
    or a token passing the check) is found at the same place in the joined text, and a
    match there that crosses ``_JOIN`` only sends the caller to the full scrub."""
    lengths = [len(k) for k in known if k and len(k) >= 6]
    least = min([18, *lengths])
    parts: list[str] = []
    _long_strings(value, least, parts)
    views = [number_view(text) for text in parts if _has_digit(text)]
    if not views:
        return True
    mapped = _JOIN.join(views)
    for number in known:
        if number and len(number) >= 6 and _known_pattern(number).search(mapped):
            return False
    return not any(_token_is_id_like(m.group(1))
                   for m in _CANDIDATE.finditer(mapped))


def _unchanged(value: Any, known: set[str]) -> Any:
    return value


def redact_event(obj: Mapping[str, Any], keyed: KeyedHash) -> dict[str, Any]:
    """The redacted copy of an event's JSON form that the read model stores (timeline
    ``event_json``, dead letters' ``original_json``), from the plain form (a dead letter's
    original, a record written before the stream apps protected events) or the protected
    one, with the same result for both:

    ``id_number`` becomes ``id_masked`` + ``id_hash``; a ``document_number`` that is an
    ID number becomes ``document_number_masked`` + ``document_number_hash``; every other
    string (identifiers included: this copy is only displayed) goes through
    :func:`scrub`; the masks a protected form carries are masked again (the wider mask
    of a record written before the mask showed less is narrowed). The protected form's
    comparison hashes (``declared_fields_hash``, the hash of a number kept readable) are
    not part of it.

    The copy shares with ``obj`` every value it leaves as it was (a value in which
    :func:`scrub` finds nothing, the usual case for a protected form): render it, do not
    change it in place.
    """
    if is_protected(obj):
        obj = {k: v for k, v in obj.items() if k != DECLARED_HASH
               and not (k == NUMBER_HASH and obj.get("document_number") is not None)}
    known = known_ids(obj)
    redact = _unchanged if _scrub_keeps_all(obj, known) else _redact_all
    mtype = obj.get("material_type") or obj.get("certificate_type")
    out: dict[str, Any] = {}
    for k, v in obj.items():
        if k in PARTIES and isinstance(v, Mapping):
            party: dict[str, Any] = {}
            for pk, pv in v.items():
                if pk == "id_number" and isinstance(pv, str):
                    party[ID_MASKED] = mask_id(pv)
                    party[ID_HASH] = id_hash(pv, keyed)
                elif pk == ID_MASKED and isinstance(pv, str):
                    party[pk] = mask_id(pv)  # narrows the wider mask of an older record
                else:
                    party[pk] = redact(pv, known)
            out[k] = party
        elif (k == "document_number" and isinstance(v, str)
              and is_sensitive_number(v, mtype, known)):
            out[NUMBER_MASKED] = mask_id(v)
            out[NUMBER_HASH] = id_hash(v, keyed)
        elif k == NUMBER_MASKED and isinstance(v, str):
            out[k] = mask_id(v)
        else:
            out[k] = redact(v, known)
    return out
