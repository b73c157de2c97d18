"""The operator's list of known-valid USCCs that fail their GB 32100 check character
(domain.md section 2: codes issued before GB 32100 was enforced that are in real use).

The file (``ONEWINDOW_USCC_EXCEPTIONS_FILE``; none by default) holds one code per line,
UTF-8 (a leading byte-order mark is ignored). Each code is normalised as domain.md section
5 normalises ID numbers (`onewindow.domain.normalise.normalise_number`: NFKC, upper case,
white space, format characters and dashes removed), so ``91440101-MA5CXYW12X`` and
``９１４４０１０１ma5cxyw12x`` are the same entry. Blank lines and text after ``#`` are
ignored. A line that does not normalise to 18 letters and digits is refused
(:class:`~onewindow.errors.ConfigError` naming ``file:line``): the list only ever excuses
a wrong check character. A code that passes its check anyway is kept (harmless) and
logged once.

Every process that validates events loads it: the case-state worker (which counts each
event applied through it, ``onewindow_uscc_exceptions_accepted_total{department}``), and
the producers' early checks (`onewindow produce`, `onewindow material`, the SDK when
given the list), so that a producer never refuses what the worker accepts. Changing the
file takes effect when those processes restart.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from onewindow.domain.identifiers import is_valid_uscc, mask_id
from onewindow.domain.normalise import normalise_number
from onewindow.errors import ConfigError

__all__ = ["load_uscc_exceptions", "parse_uscc_exceptions"]

log = logging.getLogger(__name__)

_CODE = re.compile(r"[0-9A-Z]{18}")


def parse_uscc_exceptions(text: str, source: str = "<text>") -> frozenset[str]:
    """The normalised codes of a file's text (module docstring); ``source`` names the
    file in errors."""
    codes: set[str] = set()
    for n, line in enumerate(text.removeprefix("\ufeff").splitlines(), 1):
        raw = line.split("#", 1)[0]
        if not raw.strip():
            continue
        code = normalise_number(raw)
        if not _CODE.fullmatch(code):
            raise ConfigError(f"{source}:{n}: {raw.strip()!r} is not an 18-character USCC")
        if is_valid_uscc(code):
            log.info("%s:%d: %s passes its check character; the entry is not needed",
                     source, n, mask_id(code))
        codes.add(code)
    return frozenset(codes)


def load_uscc_exceptions(path: Path | str | None) -> frozenset[str]:
    """The list of the file at ``path`` (``Settings.uscc_exceptions_file``); empty when
    ``path`` is None. Raises ConfigError when the file cannot be read, is not UTF-8, or
    holds a line that is not a USCC."""
    if path is None:
        return frozenset()
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"ONEWINDOW_USCC_EXCEPTIONS_FILE {file}: {reason}") from exc
    return parse_uscc_exceptions(text, str(file))
