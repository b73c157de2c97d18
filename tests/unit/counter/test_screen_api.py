"""The counter screen's JSON (counter.screen_api): card, search, board, lookup."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.unit.counter.helpers import CASE, RID, USCC


def test_card_has_working_days_left_and_documents_on_file(client, clock) -> None:
    clock.now = datetime(2025, 9, 30, 6, 0, tzinfo=UTC)  # the day both cases were accepted
    r = client.get("/api/cases/GZOPEN0001/card")
    assert r.status_code == 200
    body = r.json()
    assert body["case"]["due_date"] == "2025-10-14" and body["case"]["working_days_left"] == 5
    assert body["case"]["sla_status"] == "ON_TRACK"
    # the applicant (the company) is first; its documents on file came from the other case
    applicant = body["holders"][0]
    assert applicant["is_applicant"] and applicant["holder"]["id_masked"] == "91**************23"
    cert = applicant["documents"][0]
    assert cert["first_material_id"] == "cert-JY24401060012345"
    assert cert["reusable"] is True and cert["in_this_case"] is False
    assert RID not in r.text and USCC not in r.text

    card = client.get(f"/api/cases/{CASE}/card").json()
    assert card["case"]["working_days_left"] is None  # closed
    holders = {h["holder"]["id_masked"]: h for h in card["holders"]}
    id_card = holders["44**************37"]["documents"][0]
    assert id_card["times_submitted"] == 2 and id_card["avoidable_submissions"] == 1
    assert id_card["reusable"] is True and id_card["in_this_case"] is True
    assert card["avoidable_submissions"] == 1 and card["conflicts"] == 0
    assert client.get("/api/cases/NOPE/card").status_code == 404


def test_working_days_left_counts_down_and_goes_negative(client, clock) -> None:
    clock.now = datetime(2025, 10, 13, 2, 0, tzinfo=UTC)
    assert client.get("/api/cases/GZOPEN0001/card").json()["case"]["working_days_left"] == 1
    clock.now = datetime(2025, 10, 16, 2, 0, tzinfo=UTC)
    case = client.get("/api/cases/GZOPEN0001/card").json()["case"]
    assert case["working_days_left"] == -2 and case["sla_status"] == "OVERDUE"


def test_search_by_case_number_or_any_applicant_id(client) -> None:
    r = client.post("/api/search", json={"q": f" {CASE} "})
    assert r.json()["match"] == "case" and [c["case_id"] for c in r.json()["items"]] == [CASE]
    for typed in (USCC, "914401 01MA5CXYW123", USCC.lower()):
        r = client.post("/api/search", json={"q": typed})
        body = r.json()
        assert body["match"] == "applicant", typed
        assert [c["case_id"] for c in body["items"]] == [CASE, "GZOPEN0001"]
        assert USCC not in r.text
    assert client.post("/api/search", json={"q": "NOPE"}).json() == {"match": "none",
                                                                     "items": []}
    r = client.post("/api/search", json={"q": ""})
    assert r.status_code == 422


def test_board_lists_a_windows_cases_of_a_day(client, clock) -> None:
    clock.now = datetime(2025, 9, 30, 6, 0, tzinfo=UTC)
    body = client.get("/api/board").json()
    assert body["date"] == body["today"] == "2025-09-30"
    assert {"window_id": "W07", "accepted": 2} in body["windows"]
    assert {c["case_id"] for c in body["items"]} == {CASE, "GZOPEN0001"}
    w07 = client.get("/api/board", params={"window_id": "W07"}).json()
    assert {c["case_id"] for c in w07["items"]} == {CASE, "GZOPEN0001"}
    assert client.get("/api/board", params={"window_id": "W99"}).json()["items"] == []
    other = client.get("/api/board", params={"date": "2025-10-01"}).json()
    assert other["items"] == [] and other["latest_accepted_on"] >= "2025-09-30"
    assert client.get("/api/board", params={"date": "yesterday"}).status_code == 422
    for day in ("2025-09-30T00:00", "20250930", "1759190400"):  # the day, but not YYYY-MM-DD
        r = client.get("/api/board", params={"date": day})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "date"], day
