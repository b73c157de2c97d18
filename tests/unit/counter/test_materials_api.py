"""Materials on file and a holder's documents (counter.materials_api)."""

from __future__ import annotations

from tests.unit.counter.helpers import RID, USCC


def test_material_with_links(client) -> None:
    body = client.get("/api/materials/mat-0002").json()
    assert body["avoidable"] is True and body["holder"]["id_masked"] == "44**************37"
    assert [(lk["material_id"], lk["verdict"]) for lk in body["links"]] == [
        ("mat-0001", "SAME_DOCUMENT")]
    assert body["document_number"] is None
    cert = client.get("/api/materials/cert-JY24401060012345").json()
    assert cert["document_number"] == "JY24401060012345" and cert["form"] == "ELECTRONIC"


def test_holder_documents_fold_duplicates(client) -> None:
    for typed in (RID, "440106 19850312 1237", "４４０１０６１９８５０３１２１２３７"):
        r = client.get("/api/holders/materials", params={"id_type": "RESIDENT_ID",
                                                          "id_number": typed})
        body = r.json()
        assert body["holder"]["id_masked"] == "44**************37"
        assert body["total_documents"] == 1
        doc = body["documents"][0]
        assert doc["times_submitted"] == 2 and doc["avoidable_submissions"] == 1
        assert [s["material_id"] for s in doc["submissions"]] == ["mat-0001", "mat-0002"]
        assert [s["avoidable"] for s in doc["submissions"]] == [False, True]
        assert RID not in r.text
    post = client.post("/api/holders/materials", json={"id_type": "USCC", "id_number": USCC})
    docs = post.json()["documents"]
    assert [d["first_material_id"] for d in docs] == ["cert-JY24401060012345"]
    none = client.get("/api/holders/materials", params={"id_type": "PASSPORT",
                                                         "id_number": "E1234567"}).json()
    assert none["documents"] == [] and none["holder"]["id_masked"] == "******67"


def test_holder_documents_page(client, events) -> None:
    holders = {}
    for e in events:
        if e["type"] == "MaterialSubmitted":
            k = (e["holder"]["id_type"], e["holder"]["id_number"])
            holders[k] = holders.get(k, 0) + 1
    (id_type, number), _ = max(holders.items(), key=lambda kv: kv[1])
    full = client.get("/api/holders/materials", params={"id_type": id_type,
                                                         "id_number": number}).json()
    assert full["total_documents"] >= 2
    page = client.get("/api/holders/materials", params={"id_type": id_type, "id_number": number,
                                                         "limit": 1, "offset": 1}).json()
    assert page["documents"] == full["documents"][1:2] and page["limit"] == 1


def test_an_implausible_id_number_is_a_422_naming_the_parameter(client) -> None:
    """`?id_number=../../` was a 200 with a mask of slashes and dots (issue 13, the
    leftovers): a number that is no ID or document number once normalised is refused,
    in the query string and in the body, without echoing it."""
    for typed in ("../../", "<script>1</script>", "N/A", "\u200b \u2014"):
        r = client.get("/api/holders/materials", params={"id_type": "PASSPORT",
                                                          "id_number": typed})
        assert r.status_code == 422, (typed, r.text)
        body = r.json()
        assert body["error"] == "invalid_request"
        assert [d["loc"] for d in body["detail"]] == [["query", "id_number"]]
        assert typed not in r.text
        r = client.post("/api/holders/materials", json={"id_type": "OTHER", "id_number": typed})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "id_number"]
        r = client.get("/api/cases", params={"applicant_id_type": "PASSPORT",
                                             "applicant_id_number": typed})
        assert r.status_code == 422
        assert r.json()["detail"][0]["loc"] == ["query", "applicant_id_number"]
    # a real number however typed still goes through
    assert client.get("/api/holders/materials", params={
        "id_type": "RESIDENT_ID", "id_number": "440106\u201419850312\u20141237"}).status_code == 200
