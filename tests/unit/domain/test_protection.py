"""onewindow.domain.protection: ID numbers replaced by a keyed hash and a mask (pure; the
keyed hash is an argument, here a test stand-in)."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from typing import Any

import pytest

from onewindow.domain.case import event_fingerprint, fold, project
from onewindow.domain.identifiers import mask_id
from onewindow.domain.materials import all_links, material_from_event
from onewindow.domain.normalise import normalise_number
from onewindow.domain.protection import (
    DECLARED_HASH,
    NUMBER_HASH,
    NUMBER_MASKED,
    id_hash,
    is_protected,
    protect_event,
    redact_event,
    scrub,
)
from tests.unit.domain.helpers import (
    CAL_2025,
    VALID_RID,
    VALID_RID_2,
    VALID_USCC,
    accepted,
    t,
    task,
)


def keyed(text: str) -> str:
    """A stand-in for HMAC under a key: deterministic, and not the identity."""
    return hashlib.sha256(b"test-key\x00" + text.encode()).hexdigest()


def _strings(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)


def _plaintext(obj: Any, *numbers: str) -> list[str]:
    """The numbers (as typed and normalised) found in ``obj``'s JSON text."""
    text = _strings(obj)
    return [n for n in numbers for form in {n, normalise_number(n)} if form in text]


def submitted(**over: Any) -> dict[str, Any]:
    event = {
        "type": "MaterialSubmitted", "event_id": "m-ev-1", "case_id": "C-1",
        "department": "gaj", "occurred_at": t("2025-09-30 10:05"), "material_id": "mat-1",
        "material_type": "ID_CARD", "name": "身份证",
        "holder": {"id_type": "RESIDENT_ID", "id_number": VALID_RID_2, "name": "陈静"},
        "document_number": "440106 19850312 1237", "sha256": "a" * 64, "pages": 1,
        "size_bytes": 1000, "form": "COPY",
        "declared_fields": {"name": "陈静", "valid_until": "2035-03-12"}, "task_id": None,
    }
    event.update(over)
    return event


def certificate(**over: Any) -> dict[str, Any]:
    event = {
        "type": "CertificateIssued", "event_id": "c-ev-1", "case_id": "C-1",
        "department": "scjgj", "occurred_at": t("2025-10-15 15:25"), "task_id": "T1",
        "certificate_id": "cert-1", "certificate_type": "BUSINESS_LICENSE",
        "document_number": VALID_USCC,
        "holder": {"id_type": "USCC", "id_number": VALID_USCC, "name": "花城餐饮"},
        "sha256": "b" * 64, "declared_fields": {"经营者名称": "花城餐饮"},
        "valid_until": date(2030, 10, 14),
    }
    event.update(over)
    return event


# --------------------------------------------------------------------------- every ID field


def test_the_applicant_of_a_case_accepted() -> None:
    ev = accepted()
    out = protect_event(ev, keyed)
    assert out["applicant"] == {"kind": "ORGANIZATION", "id_type": "USCC",
                                "id_hash": keyed(VALID_USCC),
                                "id_masked": "91**************23",
                                "name": "广州花城餐饮管理有限公司"}
    assert _plaintext(out, VALID_USCC) == []
    # everything else as it was
    assert {k: v for k, v in out.items() if k != "applicant"} == \
        {k: v for k, v in ev.items() if k != "applicant"}
    assert ev["applicant"]["id_number"] == VALID_USCC  # the input is not modified


def test_the_holder_and_an_id_card_number_of_a_material() -> None:
    out = protect_event(submitted(), keyed)
    assert out["holder"] == {"id_type": "RESIDENT_ID", "id_hash": keyed(VALID_RID_2),
                             "id_masked": "44**************37", "name": "陈静"}
    # the card's number is the holder's ID number, typed with spaces: one hash, masked
    assert "document_number" not in out
    assert out[NUMBER_HASH] == keyed(VALID_RID_2)
    assert out[NUMBER_MASKED] == "44**************37"
    assert _plaintext(out, VALID_RID_2, "440106 19850312 1237") == []


def test_a_business_licence_number_is_its_holder_uscc() -> None:
    out = protect_event(certificate(certificate_type="FOOD_LICENSE_X",
                                    document_number="914401 01MA5CXYW123"), keyed)
    assert "document_number" not in out and out[NUMBER_HASH] == keyed(VALID_USCC)
    assert out[NUMBER_MASKED] == mask_id(VALID_USCC)
    assert out["valid_until"] == date(2030, 10, 14)
    assert _plaintext(out, VALID_USCC) == []


def test_a_passport_number_equal_to_the_holder_is_hidden_though_it_passes_no_check() -> None:
    ev = submitted(material_type="PASSPORT", document_number="E1234 5678",
                   holder={"id_type": "PASSPORT", "id_number": "E12345678", "name": "Li"},
                   declared_fields={"number": "E12345678", "name": "Li"})
    out = protect_event(ev, keyed)
    assert _plaintext(out, "E12345678") == []
    assert out[NUMBER_MASKED] == "*******78"
    assert out["declared_fields"] == {"number": "*******78", "name": "Li"}


def test_a_number_that_is_no_id_number_stays_readable_and_is_hashed_for_comparing() -> None:
    out = protect_event(certificate(certificate_type="FOOD_BUSINESS_LICENSE",
                                    document_number="JY24401060012345"), keyed)
    assert out["document_number"] == "JY24401060012345"
    assert out[NUMBER_HASH] == keyed("JY24401060012345") and NUMBER_MASKED not in out
    assert out["holder"]["id_hash"] == keyed(VALID_USCC)


def test_an_id_number_typed_into_another_documents_number_is_masked_there() -> None:
    """Found by the fuzz test (issue 13): a number that is no ID number as a whole stayed
    readable as typed with someone else's ID number inside it."""
    typed = "权证：４４０１０６１９８５０３１２１２３７："
    out = protect_event(certificate(certificate_type="PROPERTY_CERT", document_number=typed),
                        keyed)
    assert out["document_number"] == "权证：44**************37："
    assert out[NUMBER_HASH] == keyed(normalise_number(typed)) and NUMBER_MASKED not in out
    assert redact_event(out, keyed) == redact_event(
        certificate(certificate_type="PROPERTY_CERT", document_number=typed), keyed)


def test_no_number_or_a_blank_one_adds_nothing() -> None:
    for blank in (None, "", " - "):
        out = protect_event(submitted(document_number=blank, material_type="CONTRACT"), keyed)
        assert out["document_number"] == blank and NUMBER_HASH not in out


def test_declared_fields_are_masked_for_display_and_hashed_for_comparing() -> None:
    ev = submitted(material_type="MARRIAGE_CERT", document_number="J440106-2020-001",
                   declared_fields={"持证人": "陈静", "身份证号": "440106-19850312-1237",
                                    "登记日期": "2020-05-20", "配偶身份证号": VALID_RID})
    out = protect_event(ev, keyed)
    assert out["declared_fields"] == {"持证人": "陈静", "身份证号": "44**************37",
                                      "登记日期": "2020-05-20",
                                      "配偶身份证号": "11**************2X"}
    # every value with a digit is compared by its keyed hash (digit-free ones as they are)
    assert set(out[DECLARED_HASH]) == {"身份证号", "登记日期", "配偶身份证号"}
    assert _plaintext(out, VALID_RID, VALID_RID_2) == []


# --------------------------------------------------------------------------- free text


@pytest.mark.parametrize("typed", [
    VALID_RID_2,
    "440106 19850312 1237",
    "440106-19850312-1237",
    "440106\u201319850312\u20141237",           # en and em dashes
    "440106\u200b198503121237",                 # a zero-width space
    "４４０１０６１９８５０３１２１２３７",      # full-width digits
    "440106  19850312  1237",                   # double spaces
    "440106198503121237".lower(),
])
def test_notes_with_an_id_number_however_typed(typed: str) -> None:
    ev = task("e2", "T1", "SUPPLEMENT_REQUESTED", "2025-10-09 09:00", officer="李敏",
              note=f"请补充身份证（{typed}）复印件")
    out = protect_event(ev, keyed)
    assert out["note"] == "请补充身份证（44**************37）复印件"
    assert typed not in out["note"] and "19850312" not in out["note"]


@pytest.mark.parametrize("before", [
    "2025 0001 ",            # another number in groups: its first 18 characters fail
    "0123456789\u200b",      # digits, then a zero-width space
    "1\n",
])
def test_a_typed_number_after_other_separated_characters_is_masked(before: str) -> None:
    """Found by the fuzz test (issue 13): a token that starts inside a longer run of
    characters joined by separators was missed when the run's first 18 failed the check."""
    for typed in ("440106 19850312 1237", "\u200b".join(VALID_RID_2)):
        out = scrub(f"合同 {before}{typed}")
        assert out.endswith("44**************37"), out
        assert "19850312" not in normalise_number(out)


def test_a_known_number_that_passes_no_check_is_masked_in_the_event_text() -> None:
    ev = submitted(holder={"id_type": "PASSPORT", "id_number": "E12345678", "name": "Li"},
                   material_type="CONTRACT", document_number=None,
                   name="合同 (护照 E 1234-5678)")
    assert protect_event(ev, keyed)["name"] == "合同 (护照 *******78)"


def test_reasons_and_names_are_scrubbed_identifiers_are_not() -> None:
    withdrawn = {"type": "CaseWithdrawn", "event_id": f"w-{VALID_RID}", "case_id": "C-1",
                 "department": "zwfw", "occurred_at": t("2025-10-01 09:00"),
                 "reason": f"申请人 {VALID_RID} 主动撤回"}
    out = protect_event(withdrawn, keyed)
    assert out["reason"] == "申请人 11**************2X 主动撤回"
    # an identifier is a key the pipeline joins on: never rewritten (docs/privacy.md)
    assert out["event_id"] == withdrawn["event_id"]
    acc = accepted(service_name=f"为 {VALID_RID_2} 办理",
                   tasks=[("T1", "scjgj", f"核验 {VALID_RID_2}")])
    out = protect_event(acc, keyed)
    assert out["service_name"] == "为 44**************37 办理"
    assert out["tasks"] == [{"task_id": "T1", "department": "scjgj",
                             "name": "核验 44**************37"}]


def test_events_without_an_id_number_are_unchanged() -> None:
    for ev in (task("e2", "T1", "APPROVED", "2025-10-09 09:00", officer="李敏",
                    note="请补充后厨布局平面图 2 份，电话 020-83331234"),
               {"type": "CaseWithdrawn", "event_id": "w1", "case_id": "C-1",
                "department": "zwfw", "occurred_at": t("2025-10-01 09:00"), "reason": None}):
        assert protect_event(ev, keyed) == ev
        assert not is_protected(ev)


def test_scrub_leaves_codes_and_text_without_digits() -> None:
    code = "11440100MB2C92018X4440117002011"
    assert scrub(f"service {code} case GZ20251009000123") == \
        f"service {code} case GZ20251009000123"
    assert scrub("请补充材料") == "请补充材料"
    assert scrub(None) is None and scrub(3) == 3


# --------------------------------------------------------------------------- properties


def test_idempotent_and_recognised() -> None:
    for ev in (accepted(), submitted(), certificate()):
        once = protect_event(ev, keyed)
        assert is_protected(once) and not is_protected(ev)
        assert protect_event(once, keyed) == once  # never hashed twice


def test_deterministic_equal_events_stay_equal_different_numbers_differ() -> None:
    a, b = submitted(), submitted(document_number="440106198503121237")
    # the same number typed two ways: the same protected content, the same fingerprint
    assert protect_event(a, keyed) == protect_event(b, keyed)
    assert event_fingerprint(protect_event(a, keyed)) == event_fingerprint(protect_event(b, keyed))
    other = submitted(holder={"id_type": "RESIDENT_ID", "id_number": VALID_RID, "name": "陈静"})
    assert event_fingerprint(protect_event(other, keyed)) != \
        event_fingerprint(protect_event(a, keyed))
    # a number hidden entirely still counts in the fingerprint
    card = submitted(document_number=VALID_RID)
    assert event_fingerprint(protect_event(card, keyed)) != \
        event_fingerprint(protect_event(a, keyed))


def test_the_json_form_is_protected_alike() -> None:
    ev = submitted()
    as_json = {**ev, "occurred_at": ev["occurred_at"].isoformat()}
    assert protect_event(as_json, keyed) == {**protect_event(ev, keyed),
                                              "occurred_at": as_json["occurred_at"]}


def test_the_fold_keeps_the_protected_applicant() -> None:
    view = project(fold([protect_event(accepted(), keyed),
                         protect_event(task("e2", "T1", "RECEIVED", "2025-10-01 09:00"),
                                       keyed)]),
                   CAL_2025)
    assert view["applicant"] == {"kind": "ORGANIZATION", "id_type": "USCC", "id_number": None,
                                 "id_hash": keyed(VALID_USCC),
                                 "id_masked": "91**************23",
                                 "name": "广州花城餐饮管理有限公司"}
    assert view["version"] == 2


def test_materials_compare_by_hashes_with_the_same_links() -> None:
    plain = [submitted(), submitted(material_id="mat-2", event_id="m-ev-2",
                                    document_number=VALID_RID_2, sha256="c" * 64,
                                    declared_fields={"name": "陈静", "valid_until": "2036-01-01"}),
             certificate(), certificate(certificate_id="cert-2", event_id="c-ev-2",
                                        document_number="914401-01MA5CXYW123",
                                        sha256="d" * 64)]
    protected = [protect_event(e, keyed) for e in plain]
    mats = [material_from_event(e) for e in protected]
    assert mats[0].holder.identity == keyed(VALID_RID_2)
    assert mats[0].document_number == keyed(VALID_RID_2)
    assert all_links(mats) == all_links(material_from_event(e) for e in plain)
    assert {str(lk.verdict) for lk in all_links(mats)} == {"CONFLICT", "SAME_DOCUMENT"}


def test_redacted_copy_is_the_same_from_the_plain_and_the_protected_form() -> None:
    for ev in (accepted(), submitted(), certificate(), certificate(
            certificate_type="FOOD_BUSINESS_LICENSE", document_number="JY24401060012345"),
            task("e2", "T1", "RECEIVED", "2025-10-01 09:00", note=f"证件 {VALID_RID}")):
        as_json = {k: v.isoformat() if isinstance(v, datetime | date) else v
                   for k, v in ev.items()}
        assert redact_event(protect_event(as_json, keyed), keyed) == \
            redact_event(as_json, keyed)


def test_id_hash_normalises_as_section_5() -> None:
    assert id_hash("440106 19850312 1237", keyed) == id_hash("４４０１０６１９８５０３１２１２３７", keyed) \
        == keyed(VALID_RID_2)
    assert id_hash("11010519491231002x", keyed) == keyed(VALID_RID)


def test_an_id_number_in_mathematical_digits_is_masked() -> None:
    """Validation reads any digit NFKC makes ASCII (U+1D7CE.. MATHEMATICAL BOLD DIGIT), so
    the masking must find those too (the fuzz test's note, issue 13)."""
    bold = "".join(chr(0x1D7CE + int(c)) if c.isdigit() else c for c in VALID_RID_2)
    out = scrub(f"申请人 {bold} 到场")
    assert "19850312" not in normalise_number(out) and out.endswith("44**************37 到场")
