"""`onewindow produce FILE`: validate a whole JSON-lines file, then publish it.

Nothing is sent unless every line is good: a half-sent file is the worst outcome for
an integrator replaying a day's events, so bad lines are all reported first
(`file:line: REASON: detail`) and the command exits with status 2. Bad input (a file
that cannot be read, is not UTF-8, or has bad lines; an unknown department) is status 2;
a delivery the broker did not acknowledge (unreachable, timed out, refused) status 1
(`DeliveryFailed`, one line).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.domain.validation import validate
from onewindow.errors import DecodeError, OneWindowError
from onewindow.security.kafka_auth import department_principal, producer_config
from onewindow.topics import Topics
from onewindow.uscc_exceptions import load_uscc_exceptions
from producers.publisher import DeliveryFailed, DepartmentPublishers, Publisher

#: what a file saved by Windows tools may start with (read as if it were not there)
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class BadLine:
    line: int
    reason: str
    detail: str


def read_events(path: Path, *, topics: Topics, departments: frozenset[str],
                topic: str | None, check: bool, now: datetime | None = None,
                counters: frozenset[str] | None = None,
                uscc_exceptions: frozenset[str] = frozenset(),
                ) -> tuple[list[dict[str, Any]], list[BadLine]]:
    """Parse (and unless `check` is False, validate) every line; blank lines are skipped.
    `uscc_exceptions`: the operator's known-valid USCCs failing their check
    (`onewindow.uscc_exceptions`), accepted as the worker accepts them."""
    codec = get_codec()
    now = now or datetime.now(UTC)
    owner = topics.department_of(topic) if topic else None
    events: list[dict[str, Any]] = []
    bad: list[BadLine] = []
    try:
        # bytes, decoded line by line: a line that is not UTF-8 is named exactly; a file
        # saved with a byte-order mark (as Windows tools do) reads the same; CRLF line
        # ends are white space to the JSON parser
        handle = path.open("rb")
    except OSError as exc:
        raise OneWindowError(f"cannot read {path}: {exc.strerror}") from exc
    with handle:
        try:
            for n, raw in enumerate(handle, 1):
                if n == 1 and raw.startswith(_BOM):
                    raw = raw[len(_BOM):]
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise OneWindowError(
                        f"{path}:{n}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column "
                        f"{exc.start + 1}); save the file as UTF-8") from exc
                if not line.strip():
                    continue
                try:
                    event = codec.loads_json_line(line)
                except DecodeError as exc:
                    bad.append(BadLine(n, exc.reason, str(exc)))
                    continue
                if check:
                    target_owner = owner if topic else event.get("department")
                    rejection = validate(event, topic_department=target_owner,
                                         departments=departments, counters=counters, now=now,
                                         uscc_exceptions=uscc_exceptions)
                    if rejection is not None:
                        bad.append(BadLine(n, rejection.reason, rejection.detail))
                        continue
                events.append(event)
        except OSError as exc:
            raise OneWindowError(f"cannot read {path}: {exc.strerror}") from exc
    return events, bad


def produce_file(settings: Settings, path: Path, *, topic: str | None, validate: bool,
                 out: TextIO, err: TextIO, as_department: str | None = None,
                 timeout: float = 30.0) -> int:
    """Publish a JSON-lines file; exit status 0, or 2 with every bad line named. Raises
    OneWindowError for other bad input, DeliveryFailed when the broker has not
    acknowledged every event within `timeout` seconds (librdkafka's message timeout).

    Each event is published signed in as its own department's principal (`dept-<code>`,
    interfaces.md: a department writes only its own topic; with `topic`, as that topic's
    owner), or, with `as_department`,
    every event as that one department, as an integrator's system would: then an event
    for another department's topic is refused before anything is sent, and the broker
    refuses it too if asked anyway."""
    registry = load_registry(settings.departments_file)
    topics = Topics(settings.topic_prefix)
    if as_department is not None and as_department not in registry.codes:
        raise OneWindowError(f"--as {as_department}: not a registered department")
    events, bad = read_events(path, topics=topics, departments=registry.codes, topic=topic,
                              check=validate, counters=registry.counter_codes,
                              uscc_exceptions=load_uscc_exceptions(
                                  settings.uscc_exceptions_file))
    if as_department is not None and not bad:
        own = topics.input(as_department)
        for n, event in enumerate(events, 1):
            target = topic or topics.input(str(event.get("department")))
            if target != own:
                raise OneWindowError(f"department {as_department} may not write {target} "
                                     f"(event {n} of {path}); nothing was sent")
    if bad:
        for b in bad:
            print(f"{path}:{b.line}: {b.reason}: {b.detail}", file=err)  # noqa: T201
        print(f"onewindow produce: {len(bad)} bad line(s) in {path}; nothing was sent",  # noqa: T201
              file=err)
        return 2
    codec = get_codec()
    args: dict[str, Any] = {"topics": topics, "departments": registry.codes, "codec": codec}
    limit = {"message.timeout.ms": max(1, round(timeout * 1000))}
    pub: Publisher | DepartmentPublishers
    if as_department is not None:
        pub = Publisher(settings.kafka_bootstrap, **args, config={
            **producer_config(settings, department_principal(as_department)), **limit})
    else:  # each event as the owner of the topic it goes to
        pub = DepartmentPublishers(
            settings.kafka_bootstrap, **args,
            config_for=lambda d: {**producer_config(settings, department_principal(d)),
                                  **limit})
    try:
        with pub:
            for event in events:
                pub.send(event, validate_first=False, topic=topic)
            # a little past the message timeout, so every record has its delivery report
            pub.flush(timeout + 5)
    except DeliveryFailed as exc:
        missing = len(events) - pub.report.total
        raise DeliveryFailed(f"{missing} of {len(events)} events from {path} not delivered "
                             f"within {timeout:g}s: {exc}") from exc
    delivered = pub.report.delivered
    per_topic = ", ".join(f"{t}={n}" for t, n in sorted(delivered.items()))
    print(f"sent {sum(delivered.values())} events from {path}"  # noqa: T201
          + (f": {per_topic}" if per_topic else ""), file=out)
    return 0
