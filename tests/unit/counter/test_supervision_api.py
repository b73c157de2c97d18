"""The supervisor view's API and the home page's (counter.supervision_api), on the model of
tests/unit/counter/conftest.py (15 scenario cases accepted on 2025-03-03 from 09:03, the
worked example and an open case of 2025-09-30 at window W07), on SQLite and PostgreSQL.
The numbers themselves are checked by hand in tests/unit/read_model; here: the tables,
their CSV, the parameters, the roles and the access log."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from counter.supervision_api import DATASETS
from onewindow.staff import sessions, users
from onewindow.staff.tables import ACCESS_LOG
from tests.read_model_support import case_outputs, load_model
from tests.unit.counter.helpers import CASE, PASSWORD

MARCH = {"from": "2025-03-01", "to": "2025-03-04"}
#: the parameters and the roles are the app's, whatever the database: checked on one
ONE_DATABASE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _csv_rows(r) -> list[list[str]]:
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith("\ufeff".encode())
    assert r.headers["content-disposition"].startswith("attachment; filename=\"supervision-")
    return list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))


def test_every_dataset_is_a_table_and_the_same_table_as_csv(client) -> None:
    for dataset, columns in DATASETS.items():
        r = client.get(f"/api/supervision/{dataset}", params=MARCH)
        assert r.status_code == 200, (dataset, r.text)
        body = r.json()
        assert body["dataset"] == dataset and body["columns"] == list(columns)
        assert body["scope"] == {"from": "2025-03-01", "to": "2025-03-04",
                                 "today": "2025-03-04", "department": None,
                                 "service_code": None}
        assert all(list(row) == list(columns) for row in body["rows"]), dataset
        table = _csv_rows(client.get(f"/api/supervision/{dataset}",
                                     params=MARCH | {"format": "csv"}))
        assert table[0] == list(columns) and len(table) == len(body["rows"]) + 1, dataset
        for row, line in zip(body["rows"], table[1:], strict=True):
            assert line == ["" if v is None else str(v).lower() if isinstance(v, bool)
                            else ";".join(v) if isinstance(v, list) else str(v)
                            for v in row.values()], dataset

    days = client.get("/api/supervision/cases", params=MARCH).json()["rows"]
    assert [d["day"] for d in days] == ["2025-03-01", "2025-03-02", "2025-03-03", "2025-03-04"]
    assert sum(d["accepted"] for d in days) == 15  # every scenario case, on the 3rd
    # every open case of these has a deadline or is paused: today's SLA point counts them all
    sla = client.get("/api/supervision/sla", params=MARCH).json()["rows"]
    assert sum(sla[-1][k] for k in ("on_track", "due_soon", "overdue", "paused")) == \
        days[-1]["open_at_end"] > 0
    decisions = client.get("/api/supervision/decision-times", params=MARCH).json()["rows"]
    assert decisions and all(r["elapsed_p90_h"] >= r["elapsed_median_h"] >= 0
                             and r["active_median_h"] <= r["elapsed_median_h"] + 1e-9
                             for r in decisions)
    services = client.get("/api/supervision/services", params=MARCH).json()["rows"]
    assert sum(s["cases"] for s in services) == 15
    # a filter narrows every dataset; its scope says so
    code = services[0]["service_code"]
    one = client.get("/api/supervision/cases", params=MARCH | {"service_code": code}).json()
    assert one["scope"]["service_code"] == code
    assert sum(d["accepted"] for d in one["rows"]) == services[0]["cases"]


@ONE_DATABASE
def test_the_default_period_and_bad_parameters(client, clock) -> None:
    clock.now = datetime(2025, 10, 1, 2, 0, tzinfo=UTC)
    body = client.get("/api/supervision/cases").json()
    assert (body["scope"]["from"], body["scope"]["to"]) == ("2025-09-02", "2025-10-01")
    assert len(body["rows"]) == 30
    # a default start never before the first day a period may name
    early = client.get("/api/supervision/cases", params={"to": "2000-01-05"}).json()
    assert (early["scope"]["from"], early["scope"]["to"]) == ("2000-01-01", "2000-01-05")
    # the links of this model were all found on 2026-01-01 (tests/read_model_support.py)
    conflicts = client.get("/api/supervision/conflicts",
                           params={"from": "2025-12-01", "to": "2026-01-01", "limit": 1})
    page = conflicts.json()
    assert page["limit"] == 1 and page["total"] >= 1 and len(page["rows"]) == 1
    assert page["next_offset"] == (1 if page["total"] > 1 else None)

    # a bad parameter is a 422 naming it, never a 500
    bad = [
        ("cases", {"from": "2025-13-01"}, "from"),
        ("cases", {"from": "yesterday"}, "from"),
        ("sla", {"from": "2025-03-05", "to": "2025-03-01"}, "from"),
        ("sla", {"from": "2024-01-01", "to": "2025-03-01"}, "to"),  # over 366 days
        ("avoidable", {"to": "1999-12-31"}, "to"),
        ("decision-times", {"department": "nope"}, "department"),
        ("dead-letters", {"department": "x" * 40}, "department"),
        ("open-cases", {"service_code": "x" * 257}, "service_code"),  # over an event's 256
        ("open-cases", {"service_code": "a\x00b"}, "service_code"),  # stored as U+FFFD
        # a day is YYYY-MM-DD and nothing else (pydantic's lax date took these)
        ("cases", {"from": "2026-11-01T00:00"}, "from"),
        ("cases", {"from": "20261101"}, "from"),
        ("sla", {"to": "1740960000"}, "to"),  # 2025-03-03 00:00 UTC as a Unix time
        ("cases", {"to": "2025-03-04 00:00Z"}, "to"),
        ("cases", {"from": "2025-02-30"}, "from"),
        ("resubmitted", {"format": "xml"}, "format"),
        ("conflicts", {"limit": 0}, "limit"),
        ("conflicts", {"offset": -1}, "offset"),
    ]
    for dataset, params, name in bad:
        r = client.get(f"/api/supervision/{dataset}", params=params)
        assert r.status_code == 422, (dataset, params, r.status_code, r.text)
        body = r.json()
        assert body["error"] == "invalid_request"
        assert any(d["loc"][-1] == name for d in body["detail"]), (dataset, body)
    assert client.get("/api/home", params={"limit": 0}).status_code == 422
    # a leap year's 366 days are one period
    assert client.get("/api/supervision/cases",
                      params={"from": "2024-01-01", "to": "2024-12-31"}).status_code == 200


#: service codes a CaseAccepted may carry (domain.md section 1 gives them no format;
#: an event's check bounds them at 256 characters): the filter matches each as written
ODD_CODES = ("=1+1", "a b", "50%_x", "50a_x", "事项/01", "x" * 256)


def test_a_service_code_is_matched_as_it_is_written(client, clock, engine, topics, settings,
                                                    events) -> None:
    """A code that passes the event checks can be chosen in the filter, and only its own
    cases answer: ``%`` and ``_`` are not wildcards, ``+`` is not a blank."""
    clock.now = datetime(2025, 10, 1, 2, 0, tzinfo=UTC)
    accepted = events[0]  # the worked example's CaseAccepted, 2025-09-30
    odd = [dict(accepted, case_id=f"GZODD{i:04d}", event_id=f"odd-{i}", service_code=code,
                tasks=[]) for i, code in enumerate(ODD_CODES)]
    outputs = case_outputs(odd, topics)
    assert all(topic != topics.dead_letters for topic, _ in outputs)  # every one valid
    load_model(engine, topics, outputs, settings)
    day = {"from": "2025-09-30", "to": "2025-09-30"}
    listed = client.get("/api/supervision/services", params=day).json()["rows"]
    assert set(ODD_CODES) <= {r["service_code"] for r in listed}
    for code in ODD_CODES:
        r = client.get("/api/supervision/cases", params=day | {"service_code": code})
        assert r.status_code == 200, (code, r.text)
        assert r.json()["scope"]["service_code"] == code
        assert [d["accepted"] for d in r.json()["rows"]] == [1], code
    # in the CSV a code a spreadsheet would compute stays text
    table = _csv_rows(client.get("/api/supervision/services", params=day | {"format": "csv"}))
    assert "'=1+1" in [row[0] for row in table[1:]]


@ONE_DATABASE
def test_a_clerk_is_refused_and_every_read_is_in_the_access_log(client, user_client,
                                                                  engine) -> None:
    clerk = user_client("clerk", name="clerk-s")
    for path in ("/api/supervision/cases", "/api/supervision/conflicts?format=csv",
                 "/supervision"):
        r = clerk.get(path)
        assert r.status_code == 403, path
        assert r.json()["error"] == "forbidden"
    assert client.get("/supervision").status_code == 200
    assert "supervision.js" in client.get("/supervision").text
    client.get("/api/supervision/avoidable", params=MARCH | {"department": "scjgj"})
    client.get("/api/supervision/dead-letters", params=MARCH | {"format": "csv"})
    with engine.connect() as c:
        rows = c.execute(select(ACCESS_LOG.c.name, ACCESS_LOG.c.action, ACCESS_LOG.c.target,
                                ACCESS_LOG.c.result, ACCESS_LOG.c.detail)
                         .order_by(ACCESS_LOG.c.id)).all()
    reads = [r for r in rows if r.action == "supervision.read"]
    assert [(r.name, r.target) for r in reads[-2:]] == [("staff", "avoidable"),
                                                        ("staff", "dead-letters")]
    assert "department=scjgj" in reads[-2].detail and "format=csv" in reads[-1].detail
    denied = [r for r in rows if r.name == "clerk-s"]
    assert len(denied) == 3 and {r.result for r in denied} == {"denied"}


def _window_client(app, engine, clock, name: str, window: str | None) -> TestClient:
    users.add_user(engine, name, ["clerk"], PASSWORD, clock.now, window_id=window)
    token = users.issue_token(engine, name, "test", clock.now)
    return TestClient(app, headers={"Authorization": f"Bearer {token}"})


@ONE_DATABASE  # its queries are checked on both in tests/unit/read_model
def test_home_shows_today_and_the_latest_cases_of_the_signed_in_window(app, engine, clock,
                                                                        client) -> None:
    clock.now = datetime(2025, 9, 30, 6, 0, tzinfo=UTC)  # both W07 cases were accepted today
    with _window_client(app, engine, clock, "clerk-w07", "W07") as w07, \
            _window_client(app, engine, clock, "clerk-none", None) as anywhere:
        home = w07.get("/api/home").json()
        assert home["today"] == "2025-09-30" and home["window_id"] == "W07"
        # newest first: today's two, then the window's earlier ones (scenario cases)
        assert [c["case_id"] for c in home["cases"][:2]] == [CASE, "GZOPEN0001"]
        assert {c["window_id"] for c in home["cases"]} == {"W07"} and len(home["cases"]) > 2
        f = home["figures"]
        assert f["accepted"] == 2 and f["window_accepted"] == 2 and f["window_open"] == 1
        assert f["open"] >= 1 and f["avoidable"] >= 1
        assert f["dead_letters"] is None  # a clerk may not read dead letters, nor count them
        assert isinstance(client.get("/api/home").json()["figures"]["dead_letters"], int)
        assert w07.get("/api/session").json()["window_id"] == "W07"
        other = anywhere.get("/api/home", params={"limit": 3}).json()
        assert other["window_id"] is None and other["figures"]["window_accepted"] is None
        assert len(other["cases"]) == 3 and other["cases"][0]["case_id"] == CASE
    # the window follows the user store; a session keeps the one it was opened with
    users.set_window(engine, "clerk-none", "W03")
    principal = users.authenticate(engine, "clerk-none", PASSWORD, clock.now)
    assert principal is not None and principal.window_id == "W03"
    token, _csrf = sessions.open_session(engine, principal, clock.now)
    users.set_window(engine, "clerk-none", None)
    resolved = sessions.resolve(engine, token, clock.now)
    assert resolved is not None and resolved[0].window_id == "W03"
    assert [u.window_id for u in users.list_users(engine) if u.username == "clerk-none"] == [None]
