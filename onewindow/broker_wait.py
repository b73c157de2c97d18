"""Wait until the Kafka cluster answers, with backoff, instead of dying at start.

Every process that needs the broker from its first second (the stream workers before
Faust starts, `onewindow provision`, `onewindow up` on an external broker) calls
:func:`wait_for_broker`: a metadata request as the process's own principal, repeated with
:class:`onewindow.backoff.Backoff` delays until it answers, one line per failed attempt
naming the broker and librdkafka's last error (connection refused, authentication
failed, ...). docs/operations.md, "Supervision".
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from onewindow.backoff import Backoff
from onewindow.errors import DeliveryError

__all__ = ["BrokerUnreachable", "wait_for_broker", "waiting_line"]

#: how long one metadata request may take (a stopping process waits at most this long)
ATTEMPT_SECONDS = 3.0

#: librdkafka's codes of a broker that answered and refused the credentials
_SIGN_IN_REFUSED = frozenset({KafkaError._AUTHENTICATION,  # noqa: SLF001
                              KafkaError.SASL_AUTHENTICATION_FAILED})


class BrokerUnreachable(DeliveryError):
    """No broker answered within the wait (exit status 1 on the command line)."""


def waiting_line(command: str, wait: float, bootstrap: str,
                 stream: TextIO | None = None) -> Callable[[str], None]:
    """The ``say`` of a one-shot command (`onewindow provision`, `onewindow rebuild`): on
    the first failed attempt one line on ``stream`` (stderr), ``onewindow COMMAND: waiting
    up to WAITs for Kafka on BOOTSTRAP ...``, and nothing for the later ones (the final
    line, :class:`BrokerUnreachable`'s, says what went wrong)."""
    told: list[str] = []

    def say(line: str) -> None:
        if not told:
            told.append(line)
            print(f"onewindow {command}: waiting up to {wait:g}s for Kafka on "  # noqa: T201
                  f"{bootstrap} ...", file=stream or sys.stderr, flush=True)

    return say


def wait_for_broker(conf: dict[str, Any], *, stop: threading.Event | None = None,
                    timeout: float | None = None, backoff: Backoff | None = None,
                    say: Callable[[str], None] | None = None,
                    attempt_seconds: float = ATTEMPT_SECONDS) -> bool:
    """Block until the cluster of ``conf`` (librdkafka settings of an admin or producer
    client, signed in as the caller's principal) answers a metadata request.

    Returns True once it answers, False if ``stop`` is set first. With ``timeout``
    (seconds) it raises :class:`BrokerUnreachable` (one line: the bootstrap and the last
    error, or that the broker refused the sign-in) when nothing answered by then; without, it waits as long as it takes. Each
    failed attempt is reported through ``say`` in one line; attempts are
    ``attempt_seconds`` long and ``backoff`` (1 s doubling to 30 s) apart."""
    backoff = backoff or Backoff(first=1.0, cap=30.0)
    last: list[str] = []

    refused: list[bool] = [False]  # the last cause was a refused sign-in

    def on_error(err: KafkaError) -> None:
        # `_ALL_BROKERS_DOWN` ("1/1 brokers are down") follows the real cause (connection
        # refused, authentication failed): keep the cause
        if err.code() != KafkaError._ALL_BROKERS_DOWN or not last:
            last[:] = [err.str()]
            refused[0] = err.code() in _SIGN_IN_REFUSED

    admin = AdminClient({**conf, "error_cb": on_error})
    bootstrap = conf.get("bootstrap.servers", "?")
    deadline = None if timeout is None else time.monotonic() + timeout
    attempt = 0
    while True:
        if stop is not None and stop.is_set():
            return False
        budget = attempt_seconds if deadline is None \
            else max(0.1, min(attempt_seconds, deadline - time.monotonic()))
        try:
            if admin.list_topics(timeout=budget).brokers:
                return True
        except KafkaException as exc:
            admin.poll(0)  # serves the error callbacks: the cause, not "transport failure"
            if not last:
                err = exc.args[0] if exc.args else None
                last[:] = [err.str() if isinstance(err, KafkaError) else str(exc)]
        attempt += 1
        reason = last[0] if last else "no answer"
        delay = backoff.delay(attempt)
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                if refused[0]:  # it answered: "no broker answered" sent a newcomer astray
                    raise BrokerUnreachable(
                        f"Kafka on {bootstrap} refused the sign-in as "
                        f"{conf.get('sasl.username', '?')} for {timeout:g}s ({reason}): "
                        "check the password (ONEWINDOW_KAFKA_PASSWORD, or the "
                        "principal's file in the credentials directory)")
                raise BrokerUnreachable(f"no Kafka broker answered on {bootstrap} within "
                                        f"{timeout:g}s ({reason})")
            delay = min(delay, left)
        if say is not None:
            say(f"Kafka on {bootstrap} does not answer ({reason}); "
                f"retrying in {delay:.3g}s")
        if stop is not None:
            if stop.wait(delay):
                return False
        else:
            time.sleep(delay)
