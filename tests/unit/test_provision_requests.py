"""Provisioning sends an admin request again when it timed out (issue 17: CreateAcls sent
to a node frozen mid-connection timed out and provisioning failed), and only then."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from onewindow import provision
from onewindow.broker_wait import BrokerUnreachable
from onewindow.errors import DeliveryError
from onewindow.provision import ProvisionError, _admin_request

#: an address nothing listens on: the client is built, never asked (the fake sends)
CONF: dict[str, object] = {"bootstrap.servers": "127.0.0.1:9"}


@pytest.fixture(autouse=True)
def _no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provision.time, "sleep", lambda _s: None)


def _fails(*codes: int) -> tuple[list[Any], Any]:
    """A request failing with each of `codes` in turn, then answering "ok"; the clients
    and request timeouts it was given."""
    seen: list[Any] = []
    todo = list(codes)

    def send(admin: Any, timeout: float) -> str:
        seen.append((admin, timeout))
        if todo:
            raise KafkaException(KafkaError(todo.pop(0)))
        return "ok"
    return seen, send


def test_a_timed_out_request_is_sent_again_through_a_new_client() -> None:
    seen, send = _fails(KafkaError._TIMED_OUT, KafkaError.REQUEST_TIMED_OUT)  # noqa: SLF001
    told: list[str] = []
    assert _admin_request(CONF, send, "creating ACLs", timeout=60, say=told.append) == "ok"
    assert len(told) == 2 and all(t.startswith("creating ACLs: ") and
                                  t.endswith("; asking again") for t in told)
    assert len(seen) == 3
    assert len({id(admin) for admin, _ in seen}) == 3  # each attempt a new connection
    assert all(0 < t <= provision.REQUEST_TIMEOUT for _, t in seen)


def test_a_refusal_is_not_sent_again_and_says_what_failed() -> None:
    seen, send = _fails(KafkaError.CLUSTER_AUTHORIZATION_FAILED)
    with pytest.raises(ProvisionError, match="^creating ACLs: "):
        _admin_request(CONF, send, "creating ACLs", timeout=60)
    assert len(seen) == 1


def test_it_gives_up_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(range(0, 1000, 20))  # every reading 20 s later
    monkeypatch.setattr(provision.time, "monotonic", lambda: float(next(clock)))
    seen, send = _fails(*[KafkaError._TIMED_OUT] * 50)  # noqa: SLF001
    # a broker that never answered: exit status 1 (DeliveryError), not a refusal's 2
    with pytest.raises(BrokerUnreachable,
                       match=r"^listing ACLs: no broker answered within 60s \(.+\)$"):
        _admin_request(CONF, send, "listing ACLs", timeout=60)
    assert 1 < len(seen) < 5
    assert issubclass(BrokerUnreachable, DeliveryError)


def test_a_deletion_found_done_on_its_retry_is_done() -> None:
    seen, send = _fails(KafkaError._TIMED_OUT, KafkaError.RESOURCE_NOT_FOUND)  # noqa: SLF001
    assert _admin_request(CONF, send, "deleting the credential of dept-x", timeout=60,
                          done_on_retry=lambda e: e.code() == KafkaError.RESOURCE_NOT_FOUND
                          ) is None
    assert len(seen) == 2
    # the same answer to a first attempt is an error: nothing says it was done before
    seen, send = _fails(KafkaError.RESOURCE_NOT_FOUND)
    with pytest.raises(ProvisionError):
        _admin_request(CONF, send, "deleting", timeout=60,
                       done_on_retry=lambda e: e.code() == KafkaError.RESOURCE_NOT_FOUND)
