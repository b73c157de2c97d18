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

White space is every character of a ``Z*`` category, every ASCII control, and every
other character ``str.isspace()`` holds for (only U+0085 NEXT LINE among them).
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

__all__ = [
    "BRACKETS",
    "SEPARATOR",
    "is_dash",
    "is_format",
    "is_number_separator",
    "is_white_space",
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
    text = unicodedata.normalize("NFKC", value).upper()
    return "".join(BRACKETS.get(ch, ch) for ch in text if not is_number_separator(ch))


def normalise_value(value: object) -> str:
    """A ``declared_fields`` value as compared (domain.md section 5): NFKC, format
    characters dropped, stripped, inner runs of white space collapsed to one space.
    ``None`` gives ``""``; a non-string value is compared as its ``str()``."""
    if value is None:
        return ""
    text = unicodedata.normalize("NFKC", str(value))
    if not text.isascii():
        text = "".join(" " if is_white_space(ch) else ch
                       for ch in text if not is_format(ch))
    elif not text.isprintable():
        text = "".join(" " if is_white_space(ch) else ch for ch in text)
    return " ".join(text.split())


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
