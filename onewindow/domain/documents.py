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

__all__ = ["FOLDING_VERDICTS", "DocumentFold", "FoldedDocument", "fold_documents",
           "newest_first"]

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


class DocumentFold:
    """A holder's materials folded into documents link by link (domain.md section 5), for
    a caller that streams links: memory in proportion to the materials, whatever the
    number of links (one document handed in n times can have n * (n - 1) / 2 links).

    ``materials`` are order keys ``(occurred_at, material_id)`` (one per id; a repeated
    id keeps its last ``occurred_at``). :meth:`add` joins the documents of a link's two
    ends when its verdict is one of :data:`FOLDING_VERDICTS` and both ends are among the
    materials, and ignores every other link. The result does not depend on the order of
    the links.
    """

    __slots__ = ("_parent", "when")

    def __init__(self, materials: Iterable[tuple[datetime, str]]) -> None:
        #: material id -> its ``occurred_at``
        self.when: dict[str, datetime] = {mid: at for at, mid in materials}
        self._parent = {mid: mid for mid in self.when}

    def document_of(self, material_id: str) -> str:
        """The key of the document a material of the holder is in (the smallest id of
        the document's materials once every link is added); ``KeyError`` for another
        material."""
        parent = self._parent
        x = material_id
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def add(self, material_a: str, material_b: str, verdict: str) -> None:
        """A link (``verdict`` a :class:`VerdictKind` or its string)."""
        if verdict in FOLDING_VERDICTS and material_a in self.when \
                and material_b in self.when:
            ra, rb = self.document_of(material_a), self.document_of(material_b)
            if ra != rb:
                self._parent[max(ra, rb)] = min(ra, rb)

    def documents(self) -> dict[str, list[tuple[datetime, str]]]:
        """Each document's key -> its materials' order keys, oldest first."""
        groups: dict[str, list[tuple[datetime, str]]] = {}
        for mid, at in self.when.items():
            groups.setdefault(self.document_of(mid), []).append((at, mid))
        for members in groups.values():
            members.sort()
        return groups


def newest_first(documents: dict[str, list[tuple[datetime, str]]]) -> list[str]:
    """The keys of :meth:`DocumentFold.documents`, the document with the newest material
    first (by its newest order key: ``occurred_at``, then material id). The counter lists
    a holder's documents so (issue 13: it shows the first ones of a long list, and those
    a clerk needs are the ones handed in lately, such as this case's)."""
    return sorted(documents, key=lambda key: documents[key][-1], reverse=True)


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
    fold = DocumentFold(materials)
    link_list = list(links)
    for lk in link_list:
        fold.add(lk.material_a, lk.material_b, lk.verdict)
    groups = fold.documents()
    conflicts: dict[str, list[tuple[str, Link]]] = {}
    for lk in link_list:
        if lk.verdict != VerdictKind.CONFLICT:
            continue
        for me in (lk.material_a, lk.material_b):
            if me in fold.when:
                conflicts.setdefault(fold.document_of(me), []).append((me, lk))
    ordered = sorted((members, root) for root, members in groups.items())
    return [FoldedDocument(tuple(mid for _at, mid in members), tuple(conflicts.get(root, ())))
            for members, root in ordered]
