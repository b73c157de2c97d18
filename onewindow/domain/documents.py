"""A holder's documents: materials folded together by their links (domain.md section 5).

The counter screen and the holder API show what is already on file for a holder as
*documents*, not as separate submissions: materials linked as the same document are one
document, handed in (or issued) several times.  CONFLICT says the opposite (the same
certificate told two ways) and is reported beside the documents, never folded.

Works on material ids, their order keys and :class:`~onewindow.domain.materials.Link`s
only, so the read model (rows) and the pure rules (materials) can both use it.
Standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from onewindow.domain.materials import Link, VerdictKind

__all__ = ["FOLDING_VERDICTS", "FoldedDocument", "fold_documents"]

#: Verdicts that say two materials are the same document (folded together).
FOLDING_VERDICTS = frozenset({VerdictKind.EXACT, VerdictKind.SAME_DOCUMENT,
                              VerdictKind.SAME_CONTENT})


@dataclass(frozen=True, slots=True)
class FoldedDocument:
    """One document: its materials and the CONFLICT links touching them.

    ``material_ids`` are oldest first (by order key: ``occurred_at``, then material id;
    :func:`onewindow.domain.materials.order_key`), never empty.  ``conflicts`` holds
    ``(material id of this document, CONFLICT link)`` in the order the links were given,
    end ``material_a`` before ``material_b``; the other end is ``link.other(id)``.
    """

    material_ids: tuple[str, ...]
    conflicts: tuple[tuple[str, Link], ...] = ()


def fold_documents(materials: Iterable[tuple[datetime, str]],
                   links: Iterable[Link]) -> list[FoldedDocument]:
    """Group a holder's materials into documents (domain.md section 5).

    ``materials`` are the order keys ``(occurred_at, material_id)`` of the materials
    (one per id; a repeated id keeps its last ``occurred_at``); ``links`` may touch
    materials not among them (the other holder of a CONFLICT), which are left out.

    Materials joined by a link of a :data:`FOLDING_VERDICTS` verdict (EXACT,
    SAME_DOCUMENT, SAME_CONTENT), transitively, are one document.  Each CONFLICT link is
    reported on the document of each of its ends among ``materials`` (twice on one
    document when both ends folded into it).  Documents are ordered by their first
    material (``occurred_at``, then material id).  ``occurred_at`` values need only
    compare with each other (all aware or all naive).
    """
    when = {mid: at for at, mid in materials}
    parent = {mid: mid for mid in when}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    link_list = list(links)
    for lk in link_list:
        a, b = lk.material_a, lk.material_b
        if lk.verdict in FOLDING_VERDICTS and a in when and b in when:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    groups: dict[str, list[tuple[datetime, str]]] = {}
    for mid, at in when.items():
        groups.setdefault(find(mid), []).append((at, mid))
    conflicts: dict[str, list[tuple[str, Link]]] = {}
    for lk in link_list:
        if lk.verdict != VerdictKind.CONFLICT:
            continue
        for me in (lk.material_a, lk.material_b):
            if me in when:
                conflicts.setdefault(find(me), []).append((me, lk))
    ordered = sorted((sorted(members), root) for root, members in groups.items())
    return [FoldedDocument(tuple(mid for _at, mid in members), tuple(conflicts.get(root, ())))
            for members, root in ordered]
