"""What an index key holds is bounded (issue 13; docs/materials.md "Bounds"): materials
are held in `indexed` form, whose verdicts are the verdicts of the materials, and a
stored bucket admits a material while it stays under its count and its bytes."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from onewindow.domain.limits import (
    MAX_BUCKET_BYTES,
    MAX_DECLARED_VALUE_CHARS,
    MAX_INDEXED_VALUE_CHARS,
    MAX_MATERIALS_PER_BUCKET,
)
from onewindow.domain.material_index import VALUE_DIGEST, bucket_admits, index_keys, indexed
from onewindow.domain.materials import Holder, Material, link, verdict
from onewindow.domain.normalise import normalise_value

T0 = datetime(2025, 3, 3, 1, 0, tzinfo=UTC)


def _material(mid: str, fields: dict[str, str], *, number: str | None = None,
              sha: str = "", holder: str = "h1") -> Material:
    return Material(material_id=mid, material_type="LICENSE",
                    holder=Holder("USCC", holder, "公司"), document_number=number,
                    sha256=sha, declared_fields=tuple(sorted(fields.items())),
                    occurred_at=T0, case_id="C-1", department="scjgj", form="COPY",
                    kind="MaterialSubmitted")


def test_long_values_are_held_as_digests_and_short_ones_as_they_are() -> None:
    scope = normalise_value("\ufdfa" * MAX_DECLARED_VALUE_CHARS)  # NFKC: 18 letters each
    assert len(scope) == 18 * MAX_DECLARED_VALUE_CHARS
    short = "x" * MAX_INDEXED_VALUE_CHARS
    m = _material("m1", {"scope": scope, "name": short, "long": short + "y"})
    held = indexed(m)
    assert held.fields["name"] == short
    for key in ("scope", "long"):
        assert held.fields[key].startswith(VALUE_DIGEST)
        assert len(held.fields[key]) == len(VALUE_DIGEST) + 32
    assert held.fields["scope"] != held.fields["long"]
    assert indexed(held) is held  # idempotent
    # a digest typed out as a value is normalised without its format character: no match
    typed = _material("m3", {"scope": normalise_value(held.fields["scope"])})
    assert indexed(typed).fields["scope"] != held.fields["scope"]
    plain = _material("m2", {"name": short})
    assert indexed(plain) is plain
    assert index_keys(held) == index_keys(m)
    assert len(held.to_dict()["f"][-1][1]) < 40


_VALUES = st.one_of(
    st.sampled_from(["", "a", "陈静", "x" * 64, "x" * 65, "y" * 65, VALUE_DIGEST + "0" * 32,
                     "\ufdfa" * 4, "\ufdfa" * 5]),
    st.text(max_size=80))
_FIELDS = st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), _VALUES, max_size=4)


@given(fa=_FIELDS, fb=_FIELDS, same_number=st.booleans(), same_holder=st.booleans(),
       same_sha=st.booleans())
def test_indexed_materials_have_the_verdicts_of_the_materials(
        fa: dict[str, str], fb: dict[str, str], same_number: bool, same_holder: bool,
        same_sha: bool) -> None:
    norm = {k: normalise_value(v) for k, v in fa.items()}
    a = _material("a", norm, number="N1", sha="s1")
    b = _material("b", {k: normalise_value(v) for k, v in fb.items()},
                  number="N1" if same_number else None, sha="s1" if same_sha else "s2",
                  holder="h1" if same_holder else "h2")
    assert verdict(indexed(a), indexed(b)) == verdict(a, b)
    assert link(indexed(a), indexed(b)) == link(a, b)


def test_a_bucket_admits_while_under_its_count_and_bytes() -> None:
    assert bucket_admits(0, 0, MAX_BUCKET_BYTES)
    assert not bucket_admits(0, 0, MAX_BUCKET_BYTES + 1)
    # a separator after the first
    assert bucket_admits(1, 100, MAX_BUCKET_BYTES - 101)
    assert not bucket_admits(1, 100, MAX_BUCKET_BYTES - 100)
    assert bucket_admits(MAX_MATERIALS_PER_BUCKET - 1, 1000, 10)
    assert not bucket_admits(MAX_MATERIALS_PER_BUCKET, 1000, 10)
    # a bucket that holds only its header line (docs/materials.md "Bounds") needs the
    # separator too
    assert not bucket_admits(0, 3, MAX_BUCKET_BYTES - 3)
    assert bucket_admits(0, 3, MAX_BUCKET_BYTES - 4)
    assert not bucket_admits(3, 0, 1, max_materials=3)
    assert not bucket_admits(0, 0, 11, max_bytes=10)
