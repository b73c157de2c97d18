"""The operator's list of known-valid USCCs failing their check character (domain.md
section 2): accepted instead of INVALID_ID_NUMBER by every path that validates, and each
acceptance counted by the case-state worker."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from onewindow.codec import get_codec
from onewindow.departments import load_registry
from onewindow.domain.calendar import WeekdayCalendar
from onewindow.domain.identifiers import is_valid_uscc
from onewindow.domain.validation import INVALID_ID_NUMBER, uscc_exception_used, validate
from onewindow.errors import ConfigError
from onewindow.inputs import prepare_record
from onewindow.security.id_protection import IdProtector
from onewindow.topics import Topics
from onewindow.uscc_exceptions import load_uscc_exceptions, parse_uscc_exceptions
from producers.jsonl import read_events
from producers.materials import MaterialFileError, material_event_from_file
from stream_apps.case_processor import APPLIED, DEAD_LETTERED, CaseProcessor
from stream_apps.metrics import WorkerMetrics
from stream_apps.records import InRecord
from tests.unit.domain.helpers import VALID_USCC, accepted, material

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
REGISTRY = load_registry()
#: a USCC in real use, issued before GB 32100 was enforced: its check character is wrong
LEGACY = VALID_USCC[:-1] + ("4" if VALID_USCC[-1] != "4" else "5")
TYPED = f"  {LEGACY[:8].lower()}—{LEGACY[8:]}\u200b"  # as a department system wrote it


def _accepted(number: str = TYPED, event_id: str = "acc-1") -> dict:
    ev = accepted(event_id)
    ev["applicant"] = dict(ev["applicant"], id_number=number)
    return ev


def _validate(event: dict, exceptions: frozenset[str] = frozenset()) -> str | None:
    rejection = validate(event, topic_department=event["department"],
                         departments=REGISTRY.codes, counters=REGISTRY.counter_codes, now=NOW,
                         uscc_exceptions=exceptions)
    return None if rejection is None else rejection.reason


def test_the_file_is_normalised_and_commented(tmp_path: Path) -> None:
    assert not is_valid_uscc(LEGACY)
    f = tmp_path / "uscc.txt"
    f.write_text(f"\ufeff# known exceptions\n\n{LEGACY[:9]} {LEGACY[9:]}  # 某公司\n"
                 f"{LEGACY.lower()}\n９１{LEGACY[2:]}\n", encoding="utf-8")
    assert load_uscc_exceptions(f) == {LEGACY}
    assert load_uscc_exceptions(None) == frozenset()


@pytest.mark.parametrize("text", ["9144010", "91440101MA5CXYW12345", "91440101MA5CXYW12?"])
def test_a_line_that_is_no_uscc_is_refused_with_its_line(text: str) -> None:
    with pytest.raises(ConfigError, match="uscc.txt:2:"):
        parse_uscc_exceptions(f"{LEGACY}\n{text}\n", "uscc.txt")


def test_unreadable_files_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ONEWINDOW_USCC_EXCEPTIONS_FILE"):
        load_uscc_exceptions(tmp_path / "absent.txt")
    (tmp_path / "latin1.txt").write_bytes(b"\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_uscc_exceptions(tmp_path / "latin1.txt")


def test_validation_accepts_a_listed_uscc_however_typed_and_nothing_else() -> None:
    listed = frozenset({LEGACY})
    assert _validate(_accepted()) == INVALID_ID_NUMBER
    assert _validate(_accepted(), listed) is None
    assert uscc_exception_used(_accepted(), listed) is True
    assert uscc_exception_used(_accepted(), frozenset()) is False
    assert uscc_exception_used(_accepted(VALID_USCC), listed) is False  # passes anyway
    # another failing USCC is still refused; a resident ID has no such list
    other = LEGACY[:-2] + ("Q" if LEGACY[-2] != "Q" else "R") + LEGACY[-1]
    assert not is_valid_uscc(other) and _validate(_accepted(other), listed) == INVALID_ID_NUMBER
    person = accepted()
    person["applicant"] = dict(person["applicant"], id_type="RESIDENT_ID", id_number=LEGACY)
    assert _validate(person, listed) == INVALID_ID_NUMBER
    # a holder too (MaterialSubmitted)
    held = material()
    held["holder"] = {"id_type": "USCC", "id_number": TYPED, "name": "某公司"}
    assert _validate(held) == INVALID_ID_NUMBER
    assert _validate(held, listed) is None and uscc_exception_used(held, listed)


def test_the_producer_paths_agree_with_the_worker(tmp_path: Path) -> None:
    """`onewindow produce` (read_events), the SDK and the gateway (prepare_record) and
    `onewindow material` accept what the worker accepts, with the same list."""
    listed = frozenset({LEGACY})
    codec = get_codec()
    for exceptions, expected in ((frozenset(), INVALID_ID_NUMBER), (listed, None)):
        prepared = prepare_record(_accepted(), owner="zwfw", departments=REGISTRY.codes,
                                  counters=REGISTRY.counter_codes, now=NOW, codec=codec,
                                  uscc_exceptions=exceptions)
        assert getattr(prepared, "reason", None) == expected
    line = tmp_path / "events.jsonl"
    line.write_text(json.dumps(codec.to_json(_accepted()), ensure_ascii=False) + "\n",
                    encoding="utf-8")
    for exceptions, bad in ((frozenset(), 1), (listed, 0)):
        _events, lines = read_events(line, topics=Topics(), departments=REGISTRY.codes,
                                     topic=None, check=True, now=NOW,
                                     counters=REGISTRY.counter_codes,
                                     uscc_exceptions=exceptions)
        assert len(lines) == bad
    scan = tmp_path / "scan.png"
    scan.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    kwargs = {"case_id": "C-1", "department": "scjgj", "material_type": "BUSINESS_LICENSE",
              "holder": {"id_type": "USCC", "id_number": TYPED, "name": "某公司"},
              "departments": REGISTRY.codes}
    with pytest.raises(MaterialFileError, match=INVALID_ID_NUMBER):
        material_event_from_file(scan, **kwargs)
    assert material_event_from_file(scan, **kwargs, uscc_exceptions=listed)["holder"]


def test_the_worker_applies_and_counts_each_acceptance() -> None:
    ids = IdProtector("unit-test-id-hash-key-0123456789abcdef")
    processor = CaseProcessor(codec=get_codec(), topics=Topics(), departments=REGISTRY.codes,
                              counters=REGISTRY.counter_codes, calendar=WeekdayCalendar(),
                              ids=ids, clock=lambda: NOW, uscc_exceptions={LEGACY})
    events = [_accepted(), _accepted(), _accepted(VALID_USCC, "acc-2"),
              _accepted(LEGACY[:-1] + "0", "acc-3")]
    recs = [InRecord(Topics().input("zwfw"), 0, i, b"C-1", get_codec().encode(e), None)
            for i, e in enumerate(events)]
    result = processor.process(recs, lambda _c, _r: None)
    assert [(t.result, t.uscc_exception) for t in result.tallies] == [
        (APPLIED, True), ("duplicate", False), (APPLIED, False), (DEAD_LETTERED, False)]
    metrics = WorkerMetrics()
    metrics.count(result.tallies)
    assert metrics.registry.get_sample_value("onewindow_uscc_exceptions_accepted_total",
                                             {"department": "zwfw"}) == 1.0
