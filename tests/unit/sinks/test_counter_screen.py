"""The counter screen's JSON (card, search, board, lookup) and its pages (no Kafka)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from counter.pages import STATIC
from tests.unit.sinks import test_counter_api as base
from tests.unit.sinks.test_counter_api import CASE, RID, USCC

# the same model as the API tests: the worked example, scenario cases and an open case
client, clock, events = base.client, base.clock, base.events

NAME = "广州花城餐饮管理有限公司"


def test_card_has_working_days_left_and_documents_on_file(client, clock) -> None:
    clock.now = datetime(2025, 9, 30, 6, 0, tzinfo=UTC)  # the day both cases were accepted
    r = client.get("/api/cases/GZOPEN0001/card")
    assert r.status_code == 200
    body = r.json()
    assert body["case"]["due_date"] == "2025-10-14" and body["case"]["working_days_left"] == 5
    assert body["case"]["sla_status"] == "ON_TRACK"
    # the applicant (the company) is first; its documents on file came from the other case
    applicant = body["holders"][0]
    assert applicant["is_applicant"] and applicant["holder"]["id_masked"] == "914401********W123"
    cert = applicant["documents"][0]
    assert cert["first_material_id"] == "cert-JY24401060012345"
    assert cert["reusable"] is True and cert["in_this_case"] is False
    assert RID not in r.text and USCC not in r.text

    card = client.get(f"/api/cases/{CASE}/card").json()
    assert card["case"]["working_days_left"] is None  # closed
    holders = {h["holder"]["id_masked"]: h for h in card["holders"]}
    id_card = holders["440106********1237"]["documents"][0]
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


def test_lookup_needs_the_last_four_and_masks(client) -> None:
    for last4 in ("W123", "w123", "Ｗ１２３"):
        r = client.post("/api/lookup", json={"case_id": CASE, "id_last4": last4})
        assert r.status_code == 200, last4
        body = r.json()
        assert body["applicant"] == {"kind": "ORGANIZATION", "id_type": "USCC",
                                     "name_masked": "广州******有限公司",
                                     "id_masked": "914401********W123"}
        assert body["status"] == "APPROVED" and body["sla_status"] == "ON_TIME"
        assert [t["status"] for t in body["tasks"]] == ["APPROVED", "APPROVED"]
        assert {s["event_type"] for s in body["steps"]} <= {
            "CaseAccepted", "TaskUpdated", "CertificateIssued", "CaseWithdrawn"}
        assert USCC not in r.text and NAME not in r.text and "陈静" not in r.text
        assert "officer" not in r.text and "sha256" not in r.text
    wrong = client.post("/api/lookup", json={"case_id": CASE, "id_last4": "1237"})
    unknown = client.post("/api/lookup", json={"case_id": "GZNOPE", "id_last4": "W123"})
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.json() == unknown.json()  # no hint whether the case exists
    assert client.post("/api/lookup", json={"case_id": CASE, "id_last4": "12"}).status_code == 422
    assert client.post("/api/lookup", json={"case_id": "a b", "id_last4": "W123"}
                       ).status_code == 422


def test_lookup_is_rate_limited_per_client(client) -> None:
    codes = [client.post("/api/lookup", json={"case_id": CASE, "id_last4": f"{i:04d}"}
                         ).status_code for i in range(31)]
    assert codes[:30] == [404] * 30 and codes[30] == 429


def test_mask_name() -> None:
    from counter.present import mask_name

    assert mask_name("陈静", "PERSON") == "陈*"
    assert mask_name("欧阳娜娜", "PERSON") == "欧***"
    assert mask_name("李", "PERSON") == "*"
    assert mask_name(NAME, "ORGANIZATION") == "广州******有限公司"
    assert mask_name(None, "PERSON") == ""


def test_pages_and_assets_are_served_by_the_app(client) -> None:
    for path, marker in (("/", "counter.js"), ("/board", "counter.js"),
                         ("/lookup", "lookup.js")):
        r = client.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert marker in r.text and 'name="viewport"' in r.text
        assert "default-src 'self'" in r.headers["content-security-policy"]
    for name in ("counter.js", "lookup.js", "common.js", "i18n.js", "style.css"):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200, name
    assert "javascript" in client.get("/static/counter.js").headers["content-type"]
    assert client.get("/static/nope.js").status_code == 404
    assert "/" not in client.get("/openapi.json").json()["paths"]
    deps = {d["code"]: d for d in client.get("/api/departments").json()}
    assert deps["scjgj"]["name"] == "市场监督管理局"


def test_no_external_assets() -> None:
    """No CDN, no font or script from elsewhere: every URL in the pages is the app's own."""
    for f in STATIC.iterdir():
        text = f.read_text("utf-8")
        assert not re.search(r"https?://|//cdn|@import", text), f.name
        if f.suffix == ".html":
            for url in re.findall(r'(?:src|href)="([^"]+)"', text):
                assert url.startswith("/") or url.startswith("data:"), (f.name, url)
