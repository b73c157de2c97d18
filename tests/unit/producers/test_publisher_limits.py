"""The SDK refuses what the worker would dead-letter TOO_LARGE (domain.md section 2): an
event within every field limit whose encoded record is still over 256 KiB. No broker is
reached: the refusal comes before anything is queued."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from onewindow.codec import get_codec
from onewindow.domain.limits import MAX_RECORD_BYTES
from onewindow.logs import librdkafka_logger
from onewindow.topics import Topics
from producers.publisher import Publisher, RejectedEvent

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def _accepted(task_name_chars: int) -> dict:
    tasks = [{"task_id": f"T{i:03d}", "department": "scjgj", "name": "x" * task_name_chars}
             for i in range(100)]
    return {"type": "CaseAccepted", "event_id": "big-1", "case_id": "GZBIG0001",
            "department": "zwfw", "occurred_at": NOW - timedelta(minutes=5),
            "service_code": "S1", "service_name": "开办餐饮店", "case_kind": "JOINT",
            "channel": "COUNTER", "window_id": "W01",
            "applicant": {"kind": "ORGANIZATION", "id_type": "USCC",
                          "id_number": "91440101MA5CXYW123", "name": "广州花城餐饮管理有限公司"},
            "promise": {"amount": 5, "unit": "WORKING_DAY"}, "tasks": tasks}


def test_a_record_over_256_kib_is_refused_before_it_is_queued(no_broker: str) -> None:
    pub = Publisher(no_broker, topics=Topics(""),
                    departments=["zwfw", "scjgj"], codec=get_codec(), clock=lambda: NOW,
                    counters=["zwfw"], config={"security.protocol": "PLAINTEXT",
                                               "logger": librdkafka_logger()})
    small = _accepted(10)
    pub.check(small)  # valid by every field rule
    big = _accepted(3000)  # 100 names of 3,000 characters: each within its limit
    pub.check(big)
    assert len(get_codec().encode(big)) > MAX_RECORD_BYTES
    with pytest.raises(RejectedEvent, match="TOO_LARGE"):
        pub.send(big)
    assert pub.send(small) == "dept.zwfw.events"
