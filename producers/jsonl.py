"""`onewindow produce FILE`: validate a whole JSON-lines file, then publish it.

Nothing is sent unless every line is good: a half-sent file is the worst outcome for
an integrator replaying a day's events, so bad lines are all reported first
(`file:line: REASON: detail`) and the command exits non-zero.
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
from onewindow.topics import Topics
from producers.publisher import Publisher


@dataclass(frozen=True)
class BadLine:
    line: int
    reason: str
    detail: str


def read_events(path: Path, *, topics: Topics, departments: frozenset[str],
                topic: str | None, check: bool,
                now: datetime | None = None) -> tuple[list[dict[str, Any]], list[BadLine]]:
    """Parse (and unless `check` is False, validate) every line; blank lines are skipped."""
    codec = get_codec()
    now = now or datetime.now(UTC)
    owner = topics.department_of(topic) if topic else None
    events: list[dict[str, Any]] = []
    bad: list[BadLine] = []
    try:
        handle = path.open("r", encoding="utf-8")
    except OSError as exc:
        raise OneWindowError(f"cannot read {path}: {exc.strerror}") from exc
    with handle:
        for n, line in enumerate(handle, 1):
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
                                     departments=departments, now=now)
                if rejection is not None:
                    bad.append(BadLine(n, rejection.reason, rejection.detail))
                    continue
            events.append(event)
    return events, bad


def produce_file(settings: Settings, path: Path, *, topic: str | None, validate: bool,
                 out: TextIO, err: TextIO) -> int:
    registry = load_registry(settings.departments_file)
    topics = Topics(settings.topic_prefix)
    events, bad = read_events(path, topics=topics, departments=registry.codes, topic=topic,
                              check=validate)
    if bad:
        for b in bad:
            print(f"{path}:{b.line}: {b.reason}: {b.detail}", file=err)  # noqa: T201
        print(f"onewindow produce: {len(bad)} bad line(s) in {path}; nothing was sent",  # noqa: T201
              file=err)
        return 1
    with Publisher(settings.kafka_bootstrap, topics=topics, departments=registry.codes,
                   codec=get_codec()) as pub:
        for event in events:
            pub.send(event, validate_first=False, topic=topic)
    report = pub.report
    per_topic = ", ".join(f"{t}={n}" for t, n in sorted(report.delivered.items()))
    print(f"sent {report.total} events from {path}: {per_topic}", file=out)  # noqa: T201
    return 0
