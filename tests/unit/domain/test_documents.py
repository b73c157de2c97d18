"""domain.md section 5: a holder's materials folded into documents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from onewindow.domain.documents import FOLDING_VERDICTS, FoldedDocument, fold_documents
from onewindow.domain.materials import Link, VerdictKind

T0 = datetime(2025, 9, 30, 2, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_folding_verdicts_are_all_but_conflict():
    assert FOLDING_VERDICTS == set(VerdictKind) - {VerdictKind.CONFLICT}


def test_linked_materials_fold_transitively_oldest_first():
    materials = [(at(5), "c"), (at(0), "b"), (at(9), "a"), (at(3), "d")]
    links = [Link("a", "b", VerdictKind.SAME_CONTENT), Link("b", "c", VerdictKind.EXACT)]
    assert fold_documents(materials, links) == [
        FoldedDocument(("b", "c", "a")),
        FoldedDocument(("d",)),
    ]


def test_ties_on_time_are_ordered_by_material_id():
    materials = [(at(0), "z"), (at(0), "y"), (at(0), "x")]
    docs = fold_documents(materials, [Link("x", "z", VerdictKind.SAME_DOCUMENT)])
    assert [d.material_ids for d in docs] == [("x", "z"), ("y",)]


def test_conflicts_are_reported_not_folded():
    conflict = Link("a", "b", VerdictKind.CONFLICT, ("issued",), True)
    docs = fold_documents([(at(0), "a"), (at(1), "b")], [conflict])
    assert docs == [FoldedDocument(("a",), (("a", conflict),)),
                    FoldedDocument(("b",), (("b", conflict),))]
    assert docs[0].conflicts[0][1].other("a") == "b"


def test_a_conflict_inside_one_document_is_reported_for_both_ends_in_link_order():
    # a and b conflict, yet both share a file (EXACT) with c: one document.
    c1 = Link("a", "b", VerdictKind.CONFLICT, ("name",))
    c2 = Link("b", "x", VerdictKind.CONFLICT, (), True)  # x: another holder's material
    links = [c2, Link("a", "c", VerdictKind.EXACT), c1, Link("b", "c", VerdictKind.EXACT)]
    (doc,) = fold_documents([(at(0), "a"), (at(1), "b"), (at(2), "c")], links)
    assert doc.material_ids == ("a", "b", "c")
    assert doc.conflicts == (("b", c2), ("a", c1), ("b", c1))


def test_links_to_materials_not_given_are_ignored():
    links = [Link("a", "q", VerdictKind.EXACT), Link("p", "q", VerdictKind.SAME_DOCUMENT)]
    assert fold_documents([(at(0), "a")], links) == [FoldedDocument(("a",))]
    assert fold_documents([], links) == []


def test_the_result_does_not_depend_on_input_order():
    materials = [(at(i % 3), f"m{i}") for i in range(8)]
    links = [Link("m0", "m5", VerdictKind.EXACT), Link("m1", "m5", VerdictKind.SAME_CONTENT),
             Link("m2", "m3", VerdictKind.SAME_DOCUMENT), Link("m3", "m7", VerdictKind.EXACT)]
    want = fold_documents(materials, links)
    assert [d.material_ids for d in want] == [("m0", "m1", "m5"), ("m3", "m7", "m2"), ("m6",),
                                              ("m4",)]
    assert fold_documents(reversed(materials), reversed(links)) == want
