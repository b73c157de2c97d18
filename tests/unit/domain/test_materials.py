"""domain.md section 5: materials submitted more than once."""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, datetime, timedelta, timezone
from itertools import combinations, count

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onewindow.domain.material_index import (
    DOC,
    HOLD,
    SHA,
    index_keys,
    key_kind,
    links_owned_at,
    links_via_index,
    owner_key,
)
from onewindow.domain.materials import (
    Holder,
    Link,
    Material,
    Verdict,
    VerdictKind,
    all_links,
    avoidable_of,
    avoidable_set,
    is_avoidable,
    link,
    material_from_event,
    verdict,
)
from onewindow.domain.normalise import normalise_number, normalise_value
from onewindow.domain.protection import protect_event
from tests.examples import EXAMPLES

CST = timezone(timedelta(hours=8))
T0 = datetime(2025, 9, 30, 10, 0, tzinfo=CST)
SHA_A = "a" * 64
SHA_B = "b" * 64
SHA_C = "c" * 64

_counter = count()  # event ids: never exhausted by the property tests


def submitted(**over) -> dict:
    """A MaterialSubmitted event dict; every field may be overridden."""
    event = {
        "type": "MaterialSubmitted",
        "event_id": f"evt-{next(_counter)}",
        "case_id": "C1",
        "department": "scjgj",
        "occurred_at": T0,
        "material_id": "mat-1",
        "material_type": "ID_CARD",
        "name": "身份证",
        "holder": {"id_type": "RESIDENT_ID", "id_number": "440106198503121237", "name": "陈静"},
        "document_number": "440106198503121237",
        "sha256": SHA_A,
        "pages": 1,
        "size_bytes": 1000,
        "form": "COPY",
        "declared_fields": {"name": "陈静", "valid_until": "2035-03-12"},
        "task_id": None,
    }
    event.update(over)
    return event


def certificate(**over) -> dict:
    event = {
        "type": "CertificateIssued",
        "event_id": f"evt-{next(_counter)}",
        "case_id": "C1",
        "department": "scjgj",
        "occurred_at": T0,
        "task_id": "C1-T",
        "certificate_id": "cert-1",
        "certificate_type": "FOOD_BUSINESS_LICENSE",
        "document_number": "JY24401060012345",
        "holder": {"id_type": "USCC", "id_number": "91440101MA5CXYW123", "name": "花城餐饮"},
        "sha256": SHA_C,
        "declared_fields": {"经营者名称": "花城餐饮", "地址": "天河路1号"},
        "valid_until": None,
    }
    event.update(over)
    return event


def m(**over) -> Material:
    return material_from_event(submitted(**over))


# --------------------------------------------------------------------------- normalisation


def test_full_width_number_matches_plain_form():
    full = "\uff14\uff14\uff10\uff11\u3000\uff10\uff16\uff11\uff19\uff0d\uff19\uff10\uff10\uff11"
    assert normalise_number(full) == normalise_number("4401 0619-9001") == "440106199001"
    a = m(material_id="a", document_number=full, sha256=SHA_A)
    b = m(material_id="b", document_number="4401 0619-9001", sha256=SHA_B)
    assert a.document_number == b.document_number == "440106199001"
    assert verdict(a, b) == Verdict(VerdictKind.SAME_DOCUMENT)


def test_number_normalisation_details():
    assert normalise_number("ab-12 x") == "AB12X"
    assert normalise_number("ａｂ\t１２\u00a0x\n") == "AB12X"  # tab, NBSP, newline
    assert normalise_number("ab\ufe63" + "12") == "AB12"  # small hyphen-minus: NFKC -> '-'
    # Every Unicode dash and the minus sign (domain.md section 5), not only '-'.
    assert normalise_number("ab\u221212") == "AB12"
    assert normalise_number("ab\u201012") == "AB12"
    assert normalise_number(None) == ""


def test_empty_number_after_normalisation_is_no_number():
    assert m(document_number=" - \u3000").document_number is None
    assert m(document_number="").document_number is None
    assert m(document_number=None).document_number is None
    ev = submitted()
    del ev["document_number"]
    assert material_from_event(ev).document_number is None


def test_holder_id_number_is_normalised():
    a = m(holder={"id_type": "RESIDENT_ID", "id_number": "44010619850312123x", "name": "陈静"})
    b = m(holder={"id_type": "RESIDENT_ID", "id_number": "440106 19850312 123X", "name": "陈静"})
    assert a.holder.key == b.holder.key == ("RESIDENT_ID", "44010619850312123X")


def test_declared_values_normalised_keys_untouched():
    assert normalise_value("  a \u3000 b\t\nc ") == "a b c"
    assert normalise_value("ＡＢ１") == "AB1"
    mat = m(declared_fields={" Name ": "  陈  静 ", "ｎａｍｅ": "x"})
    assert mat.fields == {" Name ": "陈 静", "ｎａｍｅ": "x"}


def test_naive_timestamp_is_refused():
    with pytest.raises(ValueError):
        m(occurred_at=datetime(2025, 1, 1))


def test_other_event_types_are_not_materials():
    with pytest.raises(ValueError):
        material_from_event({"type": "CaseWithdrawn", "occurred_at": T0})


# --------------------------------------------------------------------------- the rules


def test_two_different_numbers_never_same_content():
    a = m(material_id="a", document_number="N1", sha256=SHA_A)
    b = m(material_id="b", document_number="N2", sha256=SHA_B)
    assert a.fields == b.fields and len(a.fields) == 2
    assert verdict(a, b) is None


def test_same_content_without_a_number_on_one_side():
    a = m(material_id="a", document_number="N1", sha256=SHA_A)
    b = m(material_id="b", document_number=None, sha256=SHA_B)
    assert verdict(a, b) == Verdict(VerdictKind.SAME_CONTENT)
    c = m(material_id="c", document_number=None, sha256=SHA_C)
    assert verdict(b, c) == Verdict(VerdictKind.SAME_CONTENT)


def test_same_content_compares_normalised_values():
    a = m(
        material_id="a",
        document_number=None,
        sha256=SHA_A,
        declared_fields={"name": "陈 静", "area": "１２０ m2", "only_a": "x"},
    )
    b = m(
        material_id="b",
        document_number=None,
        sha256=SHA_B,
        declared_fields={"name": " 陈\u3000静", "area": "120  m2", "only_b": "y"},
    )
    assert verdict(a, b) == Verdict(VerdictKind.SAME_CONTENT)


def test_one_shared_declared_field_is_not_enough():
    a = m(
        material_id="a",
        document_number=None,
        sha256=SHA_A,
        declared_fields={"name": "陈静", "x": "1"},
    )
    b = m(
        material_id="b",
        document_number=None,
        sha256=SHA_B,
        declared_fields={"name": "陈静", "y": "2"},
    )
    assert verdict(a, b) is None


def test_same_content_needs_every_common_key_equal():
    a = m(
        material_id="a",
        document_number=None,
        sha256=SHA_A,
        declared_fields={"name": "陈静", "valid_until": "2035-03-12", "addr": "1"},
    )
    b = m(
        material_id="b",
        document_number=None,
        sha256=SHA_B,
        declared_fields={"name": "陈静", "valid_until": "2035-03-12", "addr": "2"},
    )
    assert verdict(a, b) is None


def test_same_content_needs_same_holder_and_type():
    base = {"document_number": None, "sha256": SHA_A}
    a = m(material_id="a", **base)
    other_holder = m(
        material_id="b",
        **{**base, "sha256": SHA_B},
        holder={"id_type": "RESIDENT_ID", "id_number": "1", "name": "陈静"},
    )
    other_type = m(material_id="c", **{**base, "sha256": SHA_C}, material_type="PASSPORT")
    assert verdict(a, other_holder) is None
    assert verdict(a, other_type) is None


def test_same_number_two_holders_is_conflict_saying_holders_differ():
    a = m(material_id="a", sha256=SHA_A)
    b = m(
        material_id="b",
        sha256=SHA_B,
        holder={"id_type": "RESIDENT_ID", "id_number": "110101199003077777", "name": "陈静"},
    )
    v = verdict(a, b)
    assert v == Verdict(VerdictKind.CONFLICT, (), True)
    assert link(a, b) == Link("a", "b", VerdictKind.CONFLICT, (), True)


def test_differing_declared_field_is_conflict_naming_the_field():
    a = m(
        material_id="a",
        sha256=SHA_A,
        declared_fields={"name": "陈静", "valid_until": "2035-03-12", "z": "1", "b": "1"},
    )
    b = m(
        material_id="b",
        sha256=SHA_B,
        declared_fields={
            "name": "陈静",
            "valid_until": "2036-03-12",
            "z": "2",
            "b": "1",
            "extra": "x",
        },
    )
    assert verdict(a, b) == Verdict(VerdictKind.CONFLICT, ("valid_until", "z"), False)


def test_holder_name_alone_does_not_make_holders_differ():
    a = m(material_id="a", sha256=SHA_A)
    b = m(
        material_id="b",
        sha256=SHA_B,
        holder={"id_type": "RESIDENT_ID", "id_number": "440106198503121237", "name": "陈 静"},
    )
    assert verdict(a, b) == Verdict(VerdictKind.SAME_DOCUMENT)


def test_same_number_different_type_is_not_linked():
    a = m(material_id="a", sha256=SHA_A)
    b = m(
        material_id="b",
        sha256=SHA_B,
        material_type="RESIDENCE_PERMIT",
        declared_fields={"name": "陈静"},
    )
    assert verdict(a, b) is None


def test_exact_beats_same_document():
    a = m(material_id="a", sha256=SHA_A)
    b = m(material_id="b", sha256=SHA_A)
    assert verdict(a, b) == Verdict(VerdictKind.EXACT)


def test_conflict_beats_exact():
    a = m(material_id="a", sha256=SHA_A)
    b = m(
        material_id="b", sha256=SHA_A, declared_fields={"name": "陈晶", "valid_until": "2035-03-12"}
    )
    assert verdict(a, b) == Verdict(VerdictKind.CONFLICT, ("name",), False)


def test_exact_across_types_and_holders():
    a = m(material_id="a", sha256=SHA_A)
    b = m(
        material_id="b",
        sha256=SHA_A,
        material_type="CONTRACT",
        document_number=None,
        holder={"id_type": "USCC", "id_number": "X", "name": "x"},
    )
    assert verdict(a, b) == Verdict(VerdictKind.EXACT)


def test_exact_beats_same_content():
    a = m(material_id="a", sha256=SHA_A, document_number=None)
    b = m(material_id="b", sha256=SHA_A, document_number=None)
    assert verdict(a, b) == Verdict(VerdictKind.EXACT)


def test_empty_sha_is_never_exact():
    a = m(material_id="a", sha256="", document_number=None, declared_fields={})
    b = m(material_id="b", sha256="", document_number=None, declared_fields={})
    assert verdict(a, b) is None


def test_replay_is_never_a_self_link():
    a = m(material_id="a")
    assert verdict(a, a) is None
    assert all_links([a, a, m(material_id="a")]) == set()
    assert avoidable_set([a, a]) == set()


def test_replay_with_other_content_is_picked_order_independently():
    early = m(material_id="a", sha256=SHA_A, occurred_at=T0)
    late = m(material_id="a", sha256=SHA_B, occurred_at=T0 + timedelta(hours=1))
    other = m(material_id="b", sha256=SHA_B, document_number=None, material_type="X")
    assert all_links([early, late, other]) == all_links([other, late, early]) == set()


# --------------------------------------------------------------------------- avoidable


def test_certificate_is_a_material_and_makes_a_later_paper_copy_avoidable():
    cert = material_from_event(certificate(occurred_at=T0))
    assert cert.material_id == "cert-1"
    assert cert.material_type == "FOOD_BUSINESS_LICENSE"
    assert cert.form == "ELECTRONIC"
    assert cert.kind == "CertificateIssued"
    paper = material_from_event(
        submitted(
            material_id="mat-9",
            material_type="FOOD_BUSINESS_LICENSE",
            document_number="JY2 4401 0600 12345",
            sha256=SHA_B,
            form="COPY",
            holder={"id_type": "USCC", "id_number": "91440101ma5cxyw123", "name": "花城餐饮"},
            declared_fields={"经营者名称": "花城餐饮"},
            occurred_at=T0 + timedelta(days=30),
        )
    )
    lk = link(cert, paper)
    assert lk == Link("cert-1", "mat-9", VerdictKind.SAME_DOCUMENT)
    assert is_avoidable(paper, [(cert, lk)])
    assert not is_avoidable(cert, [(paper, lk)])
    assert avoidable_set([paper, cert]) == {"mat-9"}


def test_the_earlier_one_is_not_avoidable():
    a = m(material_id="b-first", sha256=SHA_A, occurred_at=T0)
    b = m(material_id="a-second", sha256=SHA_A, occurred_at=T0 + timedelta(seconds=1))
    assert avoidable_set([a, b]) == {"a-second"}


def test_tie_on_time_is_broken_by_material_id():
    a = m(material_id="x2", sha256=SHA_A, occurred_at=T0)
    b = m(material_id="x1", sha256=SHA_B, occurred_at=T0.astimezone(UTC))
    assert avoidable_set([a, b]) == {"x2"}


def test_exact_with_another_holder_is_not_avoidable():
    a = m(material_id="a", sha256=SHA_A, document_number=None, occurred_at=T0)
    b = m(
        material_id="b",
        sha256=SHA_A,
        document_number=None,
        occurred_at=T0 + timedelta(hours=1),
        holder={"id_type": "USCC", "id_number": "X", "name": "x"},
    )
    assert verdict(a, b) == Verdict(VerdictKind.EXACT)
    assert avoidable_set([a, b]) == set()


def test_same_content_and_conflict_do_not_make_avoidable():
    a = m(material_id="a", sha256=SHA_A, document_number=None, occurred_at=T0)
    b = m(material_id="b", sha256=SHA_B, document_number=None, occurred_at=T0 + timedelta(hours=1))
    assert verdict(a, b).kind is VerdictKind.SAME_CONTENT
    c = m(material_id="c", sha256=SHA_A, occurred_at=T0)
    d = m(
        material_id="d",
        sha256=SHA_A,
        occurred_at=T0 + timedelta(hours=1),
        declared_fields={"name": "陈晶"},
    )
    assert verdict(c, d).kind is VerdictKind.CONFLICT
    assert avoidable_set([a, b]) == avoidable_set([c, d]) == set()


def test_is_avoidable_refuses_a_foreign_link():
    a, b = m(material_id="a"), m(material_id="b")
    with pytest.raises(ValueError):
        is_avoidable(b, [(a, Link("a", "z", VerdictKind.EXACT))])
    with pytest.raises(ValueError):
        avoidable_of(a, b, Link("a", "z", VerdictKind.EXACT))


def test_avoidable_of_names_the_later_submission_from_either_side():
    cert = material_from_event(certificate(occurred_at=T0))
    paper = material_from_event(
        certificate(occurred_at=T0 + timedelta(days=1), sha256=SHA_B)
        | {"type": "MaterialSubmitted", "material_id": "mat-2",
           "material_type": "FOOD_BUSINESS_LICENSE", "form": "COPY"}
    )
    lk = link(cert, paper)
    assert lk is not None and lk.verdict is VerdictKind.SAME_DOCUMENT
    assert avoidable_of(cert, paper, lk) is paper
    assert avoidable_of(paper, cert, lk) is paper
    # The same pair the other way round in time: a certificate is never avoidable.
    early_paper = material_from_event(
        certificate(occurred_at=T0 - timedelta(days=1), sha256=SHA_B)
        | {"type": "MaterialSubmitted", "material_id": "mat-2",
           "material_type": "FOOD_BUSINESS_LICENSE", "form": "COPY"}
    )
    assert avoidable_of(cert, early_paper, link(cert, early_paper)) is None
    # SAME_CONTENT (not the same document for sure) never makes avoidable.
    a = m(material_id="a", sha256=SHA_A, document_number=None, occurred_at=T0)
    b = m(material_id="b", sha256=SHA_B, document_number=None, occurred_at=T0 + timedelta(hours=1))
    assert avoidable_of(a, b, link(a, b)) is None


# --------------------------------------------------------------------------- index keys


def test_a_pair_sharing_three_keys_is_owned_by_its_sha_key():
    a = m(material_id="A", sha256=SHA_A, occurred_at=T0)
    b = m(material_id="B", sha256=SHA_A, occurred_at=T0 + timedelta(minutes=5))
    assert set(index_keys(a)) == set(index_keys(b))  # sha, doc and hold all shared
    assert owner_key(a, b) == owner_key(b, a) == f"sha:{SHA_A}"
    assert owner_key(a, b, index_keys(a)) == f"sha:{SHA_A}"
    assert [key_kind(k) for k in index_keys(a)] == [SHA, DOC, HOLD]
    # The pair is emitted at its owner key only.
    for key in index_keys(a):
        owned = [(o.material_id, lk.verdict) for o, lk in links_owned_at(key, b, [a, b])]
        assert owned == ([("A", VerdictKind.EXACT)] if key_kind(key) == SHA else [])


def test_the_hold_key_is_left_out_when_same_content_is_impossible():
    one_field = material_from_event(certificate(declared_fields={"经营者名称": "花城餐饮"}))
    assert [key_kind(k) for k in index_keys(one_field)] == ["sha", "doc"]
    assert [key_kind(k) for k in index_keys(m())] == ["sha", "doc", "hold"]
    assert index_keys(m(sha256="", document_number=None, declared_fields={})) == []


def test_key_kind():
    assert key_kind("doc:ID_CARD:N:1") == DOC
    assert key_kind(f"hold:RESIDENT_ID:{'1' * 18}:ID_CARD") == HOLD
    assert key_kind("sha") == "sha"


def test_numbered_pairs_are_not_compared_at_a_hold_key():
    a = m(material_id="a", document_number="N1", sha256=SHA_A)
    b = m(material_id="b", document_number="N2", sha256=SHA_B)
    unnumbered = m(material_id="c", document_number=None, sha256=SHA_C,
                   occurred_at=T0 + timedelta(hours=1))
    hold = next(k for k in index_keys(a) if key_kind(k) == HOLD)
    assert hold in index_keys(b) and hold in index_keys(unnumbered)
    assert list(links_owned_at(hold, a, [a, b])) == []
    owned = [(o.material_id, lk.verdict) for o, lk in links_owned_at(hold, unnumbered, [a, b])]
    assert owned == [("a", VerdictKind.SAME_CONTENT), ("b", VerdictKind.SAME_CONTENT)]


# --------------------------------------------------------------------------- worked example


def _example_materials() -> list[Material]:
    out = []
    for line in (EXAMPLES / "restaurant-case.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        event = json.loads(line)
        event["occurred_at"] = datetime.fromisoformat(event["occurred_at"])
        if event["type"] in ("MaterialSubmitted", "CertificateIssued"):
            out.append(material_from_event(event))
    return out


def test_worked_example_links_and_avoidable():
    materials = _example_materials()
    expected = json.loads((EXAMPLES / "restaurant-case.expected.json").read_text("utf-8"))
    got = sorted(list(lk.as_triple()) for lk in all_links(materials))
    assert got == expected["links"] == [["mat-0001", "mat-0002", "SAME_DOCUMENT"]]
    assert links_via_index(materials) == all_links(materials)
    assert avoidable_set(materials) == {"mat-0002"}


# --------------------------------------------------------------------------- serialisation


def test_to_dict_round_trip_through_json():
    for mat in _example_materials():
        data = json.loads(json.dumps(mat.to_dict()))
        back = Material.from_dict(data)
        assert back == mat
        assert back.occurred_at == mat.occurred_at
        assert back.fields == mat.fields
        assert hash(back) == hash(mat)


def test_link_round_trip():
    lk = Link("a", "b", VerdictKind.CONFLICT, ("x", "y"), True)
    assert Link.from_dict(json.loads(json.dumps(lk.to_dict()))) == lk
    with pytest.raises(ValueError):
        Link("b", "a", VerdictKind.EXACT)


def test_holder_key():
    assert Holder("USCC", "X", "n").key == ("USCC", "X")


# --------------------------------------------------------------------------- properties

_TIMES = [
    T0,
    T0.astimezone(UTC),  # the same instant in another zone
    T0 + timedelta(minutes=1),
    T0 + timedelta(days=1),
]

_SPEC_KEYS = [
    "type",
    "material_type",
    "id_type",
    "id_number",
    "holder_name",
    "document_number",
    "sha256",
    "declared_fields",
    "occurred_at",
]
_events = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["MaterialSubmitted", "MaterialSubmitted", "CertificateIssued"]),
        "material_type": st.sampled_from(["ID_CARD", "LICENSE"]),
        "id_type": st.sampled_from(["RESIDENT_ID", "USCC"]),
        "id_number": st.sampled_from(["11-0", "１１０", "110", "220"]),
        "holder_name": st.sampled_from(["张三", "张 三"]),
        "document_number": st.sampled_from([None, "", " ", "a1", "A-1", "Ａ１", "B2"]),
        "sha256": st.sampled_from([SHA_A, SHA_B, SHA_C, *(ch * 64 for ch in "def0123")]),
        "declared_fields": st.dictionaries(
            st.sampled_from(["name", "area", "date", "Name"]),
            # values with a digit are compared by their keyed hash once protected
            st.sampled_from(["x", " x ", "y", "ｘ", "1", " 1", "１", "2"]),
            max_size=4,
        ),
        "occurred_at": st.sampled_from(_TIMES),
    }
)


def _keyed(text: str) -> str:
    """A stand-in for the HMAC the stream apps use (onewindow.security.id_protection)."""
    return hashlib.sha256(b"property-key\x00" + text.encode()).hexdigest()


def _build(i: int, spec: dict, protect: bool = False) -> Material:
    """The material of a spec, from its plain event or (``protect``) from the protected
    event the stream apps compare (onewindow.domain.protection)."""
    made = _event(i, spec)
    return material_from_event(protect_event(made, _keyed) if protect else made)


def _event(i: int, spec: dict) -> dict:
    holder = {
        "id_type": spec["id_type"],
        "id_number": spec["id_number"],
        "name": spec["holder_name"],
    }
    common = {
        "occurred_at": spec["occurred_at"],
        "holder": holder,
        "sha256": spec["sha256"],
        "document_number": spec["document_number"],
        "declared_fields": spec["declared_fields"],
    }
    if spec["type"] == "CertificateIssued":
        return certificate(certificate_id=f"m{i}", certificate_type=spec["material_type"],
                           **common)
    return submitted(material_id=f"m{i}", material_type=spec["material_type"], **common)


# Independent draws rarely agree on holder, type and two declared fields at once, so
# most specs are a shared base with a few fields drawn afresh: near-duplicates, the
# interesting case for every rule.
@st.composite
def spec_lists(draw, max_size: int = 12) -> list[dict]:
    base = draw(_events)
    out = []
    for _ in range(draw(st.integers(0, max_size))):
        if draw(st.booleans()):
            out.append(draw(_events))
        else:
            fresh = draw(_events)
            keys = draw(st.sets(st.sampled_from(_SPEC_KEYS), max_size=3)) | {"sha256"}
            out.append({**base, **{k: fresh[k] for k in keys}})
    return out


# Every property holds on plain materials and on protected ones (all of a list in one form,
# as in the stream apps, where every material is protected with one key).
materials_st = st.tuples(spec_lists(), st.booleans()).map(
    lambda sp: [_build(i, s, sp[1]) for i, s in enumerate(sp[0])])


@st.composite
def near_pairs(draw) -> tuple[Material, Material]:
    base = draw(_events)
    fresh = draw(_events)
    keys = draw(st.sets(st.sampled_from(_SPEC_KEYS), max_size=4)) | {"sha256"}
    protect = draw(st.booleans())
    return _build(0, base, protect), _build(1, {**base, **{k: fresh[k] for k in keys}}, protect)


pairs_st = st.one_of(
    near_pairs(),
    st.tuples(_events, _events, st.booleans()).map(
        lambda p: (_build(0, p[0], p[2]), _build(1, p[1], p[2]))),
)


@settings(max_examples=300)
@given(spec_lists())
def test_protected_materials_have_exactly_the_links_of_the_plain_ones(specs):
    """The keyed hash is deterministic: protecting every material changes no verdict, no
    link and no avoidable submission (domain.md section 5 on the protected form)."""
    plain = [_build(i, s) for i, s in enumerate(specs)]
    protected = [_build(i, s, protect=True) for i, s in enumerate(specs)]
    assert all_links(protected) == all_links(plain)
    assert links_via_index(protected) == all_links(plain)
    assert avoidable_set(protected) == avoidable_set(plain)
    for (a, b), (pa, pb) in zip(combinations(plain, 2), combinations(protected, 2),
                                strict=True):
        assert verdict(pa, pb) == verdict(a, b)
    # and no index key of a protected material holds the holder's number
    for m, s in zip(protected, specs, strict=True):
        assert all(normalise_number(s["id_number"]) not in k.split(":") for k in index_keys(m))


@given(pairs_st)
def test_verdict_is_symmetric(pair):
    a, b = pair
    assert verdict(a, b) == verdict(b, a)
    assert link(a, b) == link(b, a)


@given(pairs_st)
def test_a_pair_with_a_verdict_shares_an_index_key(pair):
    a, b = pair
    if verdict(a, b) is not None:
        assert set(index_keys(a)) & set(index_keys(b))


@given(pairs_st)
def test_a_linked_pair_is_owned_by_one_key_from_either_side(pair):
    a, b = pair
    lk = link(a, b)
    if lk is None:
        return
    key = owner_key(a, b)
    assert key is not None and key == owner_key(b, a)
    for k in set(index_keys(a)) & set(index_keys(b)):
        assert list(links_owned_at(k, a, [b])) == ([(b, lk)] if k == key else [])
        assert list(links_owned_at(k, b, [a])) == ([(a, lk)] if k == key else [])


@given(pairs_st)
def test_avoidable_of_follows_the_rule(pair):
    """An independent restatement of "avoidable" (domain.md section 5)."""
    a, b = pair
    lk = link(a, b)
    if lk is None:
        return
    got = avoidable_of(a, b, lk)
    assert got is avoidable_of(b, a, lk)
    later, earlier = sorted((a, b), key=lambda x: (x.occurred_at, x.material_id), reverse=True)
    want = (
        later
        if lk.verdict in (VerdictKind.EXACT, VerdictKind.SAME_DOCUMENT)
        and later.kind == "MaterialSubmitted"
        and later.holder.key == earlier.holder.key
        else None
    )
    assert got is want


@settings(max_examples=500)
@given(pairs_st)
def test_verdict_kind_follows_the_rules(pair):
    """An independent restatement of the four rules, checked against verdict()."""
    a, b = pair
    fa, fb = dict(a.declared_fields), dict(b.declared_fields)
    common = set(fa) & set(fb)
    same_doc = (
        a.material_type == b.material_type
        and a.document_number is not None
        and a.document_number == b.document_number
    )
    holders_same = (a.holder.id_type, a.holder.identity) == (b.holder.id_type, b.holder.identity)
    if same_doc and (not holders_same or any(fa[k] != fb[k] for k in common)):
        want = VerdictKind.CONFLICT
    elif a.sha256 == b.sha256:
        want = VerdictKind.EXACT
    elif same_doc:
        want = VerdictKind.SAME_DOCUMENT
    elif (
        holders_same
        and a.material_type == b.material_type
        and not (a.document_number and b.document_number)
        and len(common) >= 2
        and all(fa[k] == fb[k] for k in common)
    ):
        want = VerdictKind.SAME_CONTENT
    else:
        want = None
    got = verdict(a, b)
    assert (got.kind if got else None) == want


@settings(max_examples=200)
@given(materials_st, st.randoms(use_true_random=False))
def test_link_set_independent_of_order(materials, rnd: random.Random):
    shuffled = list(materials)
    rnd.shuffle(shuffled)
    assert all_links(shuffled) == all_links(materials)
    assert links_via_index(shuffled) == links_via_index(materials)


@settings(max_examples=300)
@given(materials_st)
def test_indexed_links_equal_all_pairs(materials):
    assert links_via_index(materials) == all_links(materials)


@given(materials_st)
def test_all_links_is_every_linked_pair(materials):
    expected = {lk for a, b in combinations(materials, 2) if (lk := link(a, b))}
    assert all_links(materials) == expected


@settings(max_examples=200)
@given(materials_st, st.randoms(use_true_random=False))
def test_avoidable_set_independent_of_order(materials, rnd: random.Random):
    shuffled = list(materials)
    rnd.shuffle(shuffled)
    assert avoidable_set(shuffled) == avoidable_set(materials)


@given(materials_st, st.randoms(use_true_random=False))
def test_replays_change_nothing(materials, rnd: random.Random):
    replayed = materials + [rnd.choice(materials) for _ in range(3)] if materials else []
    rnd.shuffle(replayed)
    assert all_links(replayed) == all_links(materials)
    assert links_via_index(replayed) == all_links(materials)
    assert avoidable_set(replayed) == avoidable_set(materials)


@given(materials_st)
def test_avoidable_only_submitted_with_an_earlier_same_holder_exact_or_same_document(materials):
    by_id = {x.material_id: x for x in materials}
    avoidable = avoidable_set(materials)
    for mid in avoidable:
        mat = by_id[mid]
        assert mat.kind == "MaterialSubmitted"
        assert any(
            lk.verdict in (VerdictKind.EXACT, VerdictKind.SAME_DOCUMENT)
            and mid in (lk.material_a, lk.material_b)
            and (o := by_id[lk.other(mid)]).holder.key == mat.holder.key
            and (o.occurred_at, o.material_id) < (mat.occurred_at, mat.material_id)
            for lk in all_links(materials)
        )


@given(materials_st)
def test_material_round_trips(materials):
    for mat in materials:
        assert Material.from_dict(json.loads(json.dumps(mat.to_dict()))) == mat
