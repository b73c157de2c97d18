"""ID numbers: keyed hash, mask, redaction of events and free text."""

from __future__ import annotations

import json

from onewindow.codec import get_codec
from onewindow.security.id_protection import IdProtector, event_from_json, is_id_like
from tests.read_model_support import read_jsonl

RID = "440106198503121237"
USCC = "91440101MA5CXYW123"


def test_hash_is_keyed_and_ignores_how_the_number_was_typed() -> None:
    p = IdProtector("k1")
    typed = [RID, "440106 19850312 1237", "440106-198503121237", "４４０１０６１９８５０３１２１２３７"]
    assert len({p.hash(t) for t in typed}) == 1
    assert p.hash(RID) != IdProtector("k2").hash(RID)
    assert len(p.hash(RID)) == 64 and RID not in p.hash(RID)
    assert p.protect(RID) == (p.hash(RID), "44**************37")
    assert p.protect(None) == (None, None) and p.protect(" - ") == (None, None)


def test_lowercase_x_check_character_hashes_like_upper_case() -> None:
    p = IdProtector("k")
    assert p.hash("11010519491231002x") == p.hash("11010519491231002X")


def test_scrub_masks_known_and_check_valid_numbers_in_free_text() -> None:
    p = IdProtector("k")
    text = f"applicant.id_number: '440106 19850312 1237' bad; 法人 {USCC}，证号４４０１０６１９８５０３１２１２３７"
    out = p.scrub(text, {RID})
    assert RID not in out and USCC not in out and "４４０１０６１９８５０３１２１２３７" not in out
    assert "44**************37" in out and "91**************23" in out
    # long codes and case ids stay as they are
    code = "11440100MB2C92018X4440117002011"
    assert p.scrub(f"service {code} case GZ20251009000123") == f"service {code} case GZ20251009000123"


def test_is_id_like() -> None:
    assert is_id_like(RID) and is_id_like(USCC) and is_id_like("440106 19850312 1237")
    assert not is_id_like("440106198503121230") and not is_id_like("FOOD-2025-001")


def test_redact_event_masks_parties_and_id_document_numbers(example_events_path) -> None:
    p = IdProtector("k")
    codec = get_codec()
    for event in read_jsonl(example_events_path):
        obj = codec.to_json(event)
        red = json.dumps(p.redact_event(obj), ensure_ascii=False)
        assert RID not in red and USCC not in red
        assert "440106 19850312 1237" not in red
        if event["type"] == "CaseAccepted":
            assert p.redact_event(obj)["applicant"]["id_masked"] == "91**************23"
            assert "id_number" not in p.redact_event(obj)["applicant"]
        if event["type"] == "CertificateIssued":
            # a licence number that is not an ID number stays readable
            assert p.redact_event(obj)["document_number"] == obj["document_number"]


def test_business_licence_number_is_the_uscc_so_it_is_hashed() -> None:
    p = IdProtector("k")
    assert p.is_sensitive_number(USCC, "BUSINESS_LICENSE", {USCC})
    assert p.is_sensitive_number(RID, "ID_CARD", set())
    assert not p.is_sensitive_number("JY14401060012345", "FOOD_LICENSE", {USCC})


# --------------------------------------------------------------------------- the stream's form


def test_protected_json_reads_back_with_its_hashes_and_no_number(example_events_path) -> None:
    p = IdProtector("k")
    codec = get_codec()
    for event in read_jsonl(example_events_path):
        obj = p.protect_event(codec.to_json(event))
        assert RID not in json.dumps(obj) and USCC not in json.dumps(obj)
        back = event_from_json(codec, json.loads(json.dumps(obj)))
        assert back == p.protect_event(event)  # the dict form, protected alike
        assert p.redact_event(obj) == p.redact_event(codec.to_json(event))
    plain = codec.to_json(read_jsonl(example_events_path)[1])
    assert event_from_json(codec, plain) == codec.from_json(plain)


def test_a_protected_certificate_without_its_number_still_reads() -> None:
    p = IdProtector("k")
    codec = get_codec()
    cert = {"type": "CertificateIssued", "event_id": "e", "case_id": "C", "department": "scjgj",
            "occurred_at": "2025-10-15T15:25:00+08:00", "task_id": "T",
            "certificate_id": "cert-1", "certificate_type": "BUSINESS_LICENSE",
            "document_number": USCC, "holder": {"id_type": "USCC", "id_number": USCC,
                                                "name": "花城"},
            "sha256": "b" * 64, "declared_fields": {"注册资本": "100万元"},
            "valid_until": "2030-10-14"}
    back = event_from_json(codec, p.protect_event(cert))
    assert "document_number" not in back
    assert back["document_number_hash"] == p.hash(USCC)
    assert back["document_number_masked"] == "91**************23"
    assert back["declared_fields_hash"].keys() == {"注册资本"}
    assert str(back["valid_until"]) == "2030-10-14"


def test_party_id_never_hashes_twice() -> None:
    p = IdProtector("k")
    party = {"kind": "PERSON", "id_type": "RESIDENT_ID", "id_number": RID, "name": "陈静"}
    protected = p.protect_party(party)
    assert protected == {"kind": "PERSON", "id_type": "RESIDENT_ID", "id_hash": p.hash(RID),
                         "id_masked": "44**************37", "name": "陈静"}
    assert p.party_id(protected) == p.party_id(party) == (p.hash(RID), "44**************37")
    assert p.protect_party(protected) == protected
    assert p.party_id(None) == (None, None)
