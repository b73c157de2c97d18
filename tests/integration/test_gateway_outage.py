"""A broker outage under the gateway: a request it cannot get acknowledged is answered
503 with Retry-After, nothing is reported accepted that was not, and once the broker is
back the same request is answered and every event is in the topic exactly once (the
records of the 503'd try that the broker took late are not sent again).

The broker is the test's own (`LocalKafka` in a temporary directory, secured like every
other), so stopping it disturbs no other test."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest

from onewindow.config import Settings, get_settings
from onewindow.departments import load_registry
from onewindow.kafka_local import LocalKafka, free_port
from onewindow.provision import provision
from onewindow.security.kafka_auth import ADMIN, client_config
from onewindow.topics import Topics
from tests.integration.gateway_support import gateway_process, read_events
from tests.integration.test_gateway import EVENTS, task

pytestmark = pytest.mark.integration


def test_an_outage_is_503_and_loses_nothing_reported_accepted(tmp_path: Path) -> None:
    creds = tmp_path / "credentials"
    broker = LocalKafka(data_dir=tmp_path / "broker", port=free_port(),
                        controller_port=free_port(), cache_dir=get_settings().cache_dir,
                        credentials_dir=creds)
    broker.start()
    try:
        settings = Settings(kafka_bootstrap=broker.bootstrap, kafka_credentials_dir=creds,
                            partitions=2)
        provision(settings, load_registry().codes)
        topic = Topics("").input("scjgj")
        case = f"OUT{uuid.uuid4().hex[:8]}"
        batch = {name: [task(case, f"{name}{i}") for i in range(5)] for name in "ABC"}
        with gateway_process(tmp_path / "gw", broker.bootstrap, "", credentials_dir=str(creds),
                             GATEWAY_ACK_TIMEOUT_SECONDS="2") as gw:
            key = gw.key("scjgj")

            def send(events: list[dict[str, object]]) -> httpx.Response:
                return httpx.post(gw.base + EVENTS, json=events, headers=key, timeout=60)

            before = send(batch["A"])
            assert before.status_code == 200 and before.json()["accepted"] == 5
            broker.stop()
            during = send(batch["B"])
            assert during.status_code == 503, during.text
            assert during.json()["error"] == "unavailable"
            assert int(during.headers["retry-after"]) >= 1
            assert "accepted" not in during.json()
            assert httpx.get(f"{gw.base}/healthz", timeout=30).status_code == 503
            broker.start()
            deadline = time.monotonic() + 120
            while (after := send(batch["B"])).status_code == 503:
                assert time.monotonic() < deadline, after.text
                time.sleep(1)
            assert after.status_code == 200, after.text
            assert [r["status"] for r in after.json()["results"]] == ["accepted"] * 5
            assert send(batch["C"]).json()["accepted"] == 5
        records = read_events(client_config(settings, ADMIN), topic)
        got = Counter(e["event_id"] for _p, _k, e in records if e["case_id"] == case)
        assert got == Counter(e["event_id"] for events in batch.values() for e in events)
        assert set(got.values()) == {1}
    finally:
        broker.stop()
