"""The normalisation of domain.md section 5, once (pure, standard library only).

domain.md section 5: "Normalisation before comparing: NFKC; then in
``document_number`` and holder ``id_number``: upper-case, and remove every white-space
character (Unicode ``Z*`` and the ASCII controls), every format character (Unicode
``Cf``), and every dash (Unicode ``Pd``, and the minus sign U+2212); and fold the
bracket variants ``〔〕 【】 〖〗 ［］ [] （）`` to ``()``. In ``declared_fields`` values:
drop format characters, strip, and collapse inner runs of white space to one space
[...] The same normalisation finds ID numbers written into free text (notes)".

Every component uses these functions: the GB 11643 / GB 32100 checks and the mask
(:mod:`onewindow.domain.identifiers`), the material rules
(:mod:`onewindow.domain.materials`), the keyed hashes and the free-text scrubbing
(:mod:`onewindow.domain.protection`), the sinks and the counter's lookups.

* :func:`normalise_number`: a ``document_number`` or an ``id_number``.
* :func:`normalise_value`: a ``declared_fields`` value.
* :func:`number_view`: free text as :func:`normalise_number` sees it, character for
  character (so a match in it is a span of the original text), for the scrubbing.
* :func:`display_value`: a ``declared_fields`` value as shown (the read model): as sent,
  format characters dropped and white space collapsed, but not NFKC'd.
* :func:`nfkc`: ``unicodedata.normalize("NFKC", text)``, in time linear in the text.

White space is every character of a ``Z*`` category, every ASCII control, and every
other character ``str.isspace()`` holds for (only U+0085 NEXT LINE among them).

Cost (issue 13): every function here is linear in its input and its output, and does its
per-character work in C (``str.translate``, ``str.split``, ``re``), not in a Python loop
per character: NFKC can make a 2,000-character value 36,000 characters (U+FDFA is 18), and
a valid record has 64 of them. CPython's own NFKC sorts each run of combining marks by an
insertion sort, quadratic in the run; :func:`nfkc` hands it runs already in canonical
order. The tables this needs are read from ``unicodedata`` once per process, on the
first text that needs them (about 0.3 s). docs/materials.md "Cost" has the measurements.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache

__all__ = [
    "BRACKETS",
    "SEPARATOR",
    "display_value",
    "has_digit",
    "is_dash",
    "is_format",
    "is_number_separator",
    "is_white_space",
    "nfkc",
    "nfkc_prepared",
    "normalise_number",
    "normalise_value",
    "number_view",
]

#: The bracket variants domain.md section 5 folds to ``()`` (after NFKC, which already
#: maps the full-width ``（）［］`` to ``()[]``).
BRACKETS = {
    "〔": "(", "〕": ")", "【": "(", "】": ")", "〖": "(", "〗": ")",
    "［": "(", "］": ")", "[": "(", "]": ")", "（": "(", "）": ")",
}
_MINUS = "\u2212"
#: What :func:`number_view` puts in place of a character :func:`normalise_number` removes.
SEPARATOR = " "

_ASCII_REMOVED = (*range(0x20), 0x20, 0x7F, 0x2D)  # the controls, the space, "-"
_ASCII_NUMBER = str.maketrans({**{chr(i): None for i in _ASCII_REMOVED}, "[": "(", "]": ")"})
_ASCII_VIEW = str.maketrans({**{chr(i): SEPARATOR for i in _ASCII_REMOVED},
                             "[": "(", "]": ")"})


def is_white_space(ch: str) -> bool:
    """A white-space character of domain.md section 5: Unicode ``Z*``, an ASCII control
    (and U+0085, which ``str.isspace()`` counts)."""
    return ch.isspace() or ord(ch) < 0x20 or ch == "\x7f" \
        or unicodedata.category(ch).startswith("Z")


def is_format(ch: str) -> bool:
    """A format character (Unicode ``Cf``: U+200B, U+FEFF, joiners, direction marks)."""
    return unicodedata.category(ch) == "Cf"


def is_dash(ch: str) -> bool:
    """A dash (Unicode ``Pd``: ``-``, U+2010 to U+2015 ...) or the minus sign U+2212."""
    return ch == _MINUS or unicodedata.category(ch) == "Pd"


@lru_cache(maxsize=4096)
def is_number_separator(ch: str) -> bool:
    """Whether :func:`normalise_number` removes ``ch`` (after NFKC): white space, a format
    character or a dash."""
    return is_white_space(ch) or is_format(ch) or is_dash(ch)


def normalise_number(value: str | None) -> str:
    """A ``document_number`` or holder ``id_number`` as compared (domain.md section 5):
    NFKC, upper case, every white-space character, format character and dash removed,
    the bracket variants folded to ``()``.

    ``"４４０１　０６１９－９００１"``, ``"4401\u200b0619\u20139001"`` and
    ``"4401 0619-9001"`` all give ``"440106199001"``. ``None`` and ``""`` give ``""``.
    """
    if not value:
        return ""
    if value.isascii():
        return value.upper().translate(_ASCII_NUMBER)
    text = nfkc(value).upper()
    return "".join(BRACKETS.get(ch, ch) for ch in text if not is_number_separator(ch))


def normalise_value(value: object) -> str:
    """A ``declared_fields`` value as compared (domain.md section 5): NFKC, format
    characters dropped, stripped, inner runs of white space collapsed to one space.
    ``None`` gives ``""``; a non-string value is compared as its ``str()``.

    Linear in the value and its NFKC form (module docstring, "Cost")."""
    if value is None:
        return ""
    return _collapse(nfkc(str(value)))


def display_value(value: object) -> str:
    """A ``declared_fields`` value as shown to staff (the read model stores it so):
    what the department sent, with its format characters dropped (zero-width spaces,
    direction marks, which could make a value read as another) and its white space
    collapsed as :func:`normalise_value` collapses it, but not NFKC'd, so it is never
    longer than the value (U+FDFA stays one character; :func:`normalise_value` makes it
    18). ``None`` gives ``""``; a non-string value is shown as its ``str()``."""
    if value is None:
        return ""
    return _collapse(str(value))


def _collapse(text: str) -> str:
    """Format characters dropped, white space runs made one space, stripped. A printable
    text holds neither a format character nor white space other than U+0020 (C-level
    checks first: the common case does no translation)."""
    if not text.isprintable():
        text = text.translate(_ASCII_SPACE if text.isascii() else _tables().value_map)
    return " ".join(text.split())


#: the ASCII controls (white space of domain.md section 5 that ``str.split`` misses) -> " "
_ASCII_SPACE = str.maketrans({chr(i): " " for i in (*range(0x20), 0x7F)})
_ASCII_DIGIT = re.compile("[0-9]")


@dataclass(frozen=True, slots=True)
class _Tables:
    """What :func:`nfkc` and :func:`_collapse` need from ``unicodedata``, read once."""

    #: format characters -> deleted; white space ``str.split`` misses -> " "
    value_map: dict[int, str | None]
    #: each character whose NFKD holds a combining mark (canonical combining class > 0)
    #: -> its NFKD (the combining marks themselves are kept as they are)
    decompose: dict[int, str]
    #: each such character and each combining mark -> :data:`_MARK`
    risky: dict[int, str]
    #: each combining mark -> :data:`_MARK`
    marks: dict[int, str]
    #: each character but the ASCII digits whose NFKD holds an ASCII digit -> "0"
    digits: dict[int, str]


#: What the tables map a character to, to find runs of them with one C-level search: a
#: combining mark itself, so that a text holding it reads the same.
_MARK = "\u0301"
_MARK_RUN = re.compile(_MARK + "{2,}")


@cache
def _tables() -> _Tables:
    value_map: dict[int, str | None] = {}
    decompose: dict[int, str] = {}
    marks: dict[int, str] = {}
    digits: dict[int, str] = {}
    for cp in range(0x110000):
        ch = chr(cp)
        if unicodedata.combining(ch):
            marks[cp] = _MARK
        if is_format(ch):
            value_map[cp] = None
        elif is_white_space(ch) and not ch.isspace():
            value_map[cp] = " "
        if unicodedata.decomposition(ch):
            d = unicodedata.normalize("NFKD", ch)
            if d != ch and any(unicodedata.combining(c) for c in d):
                decompose[cp] = d
            if _ASCII_DIGIT.search(d):
                digits[cp] = "0"
    return _Tables(value_map=value_map, decompose=decompose,
                   risky=marks | dict.fromkeys(decompose, _MARK), marks=marks, digits=digits)



def has_digit(text: str) -> bool:
    """Whether ``nfkc(text)`` holds an ASCII digit (``１``, ``𝟏`` and ``⑴`` do), without
    computing it: whether a character's NFKD holds one (composition neither makes nor
    removes a digit). The scrubbing asks it of every free text and declared value."""
    if _ASCII_DIGIT.search(text):
        return True
    return not text.isascii() and _ASCII_DIGIT.search(text.translate(_tables().digits)) \
        is not None


def _replace_runs(text: str, table: dict[int, str], replace: Callable[[str], str]) -> str:
    """``text`` with each run of two or more characters that ``table`` maps to
    :data:`_MARK` replaced by ``replace(run)``."""
    parts: list[str] = []
    last = 0
    for m in _MARK_RUN.finditer(text.translate(table)):
        start, end = m.span()
        parts += (text[last:start], replace(text[start:end]))
        last = end
    if not parts:
        return text
    parts.append(text[last:])
    return "".join(parts)


def _canonical_order(marks: str) -> str:
    # the canonical ordering of Unicode (UAX #15): a stable sort by combining class
    return "".join(sorted(marks, key=unicodedata.combining))


def _decomposed_in_order(run: str) -> str:
    t = _tables()
    return _replace_runs(run.translate(t.decompose), t.marks, _canonical_order)


def nfkc_prepared(text: str) -> str:
    """``text`` with each run of two or more characters whose NFKD may hold combining
    marks replaced by its NFKD in canonical order: the same NFKC, and no run of
    combining marks out of order left for CPython's insertion sort (quadratic in a run:
    1,000 marks of class 230 then 1,000 of class 220 take ~6 ms, and 64 values may hold
    such runs). A character whose NFKD holds no mark ends a run (its NFKD starts and ends
    with a starter). Used by :func:`nfkc`; public for its tests."""
    if text.isascii():
        return text
    return _replace_runs(text, _tables().risky, _decomposed_in_order)


def nfkc(text: str) -> str:
    """``unicodedata.normalize("NFKC", text)``, in time linear in ``text`` and its result
    (module docstring, "Cost"): an ASCII text is returned as it is, and combining marks
    are put in canonical order first (:func:`nfkc_prepared`)."""
    if text.isascii() or unicodedata.is_normalized("NFKC", text):
        # CPython's check is linear: it answers "no" at the first mark out of order
        return text
    return unicodedata.normalize("NFKC", nfkc_prepared(text))


@lru_cache(maxsize=4096)
def _view_char(ch: str) -> str:
    m = unicodedata.normalize("NFKC", ch).upper()
    if m and all(is_number_separator(c) for c in m):
        return SEPARATOR
    if len(m) == 1:
        return BRACKETS.get(m, m)
    return ch


def number_view(text: str) -> str:
    """``text`` as :func:`normalise_number` sees it, position for position (the same
    length, so a span of the result is a span of ``text``): each character NFKC'd,
    upper-cased and bracket-folded where that keeps it one character, and each character
    the normalisation removes (white space, format characters, dashes) replaced by
    :data:`SEPARATOR`. An ID number typed with any separators between its characters
    (``110105—19900307—1239``, a zero-width space) reads as its normalised characters
    separated by runs of :data:`SEPARATOR` (domain.md section 5: free text)."""
    if text.isascii():
        return text.upper().translate(_ASCII_VIEW)
    return "".join(_view_char(ch) for ch in text)
