"""Logging for every process: plain lines for a terminal, or one JSON object per line.

``configure_logging(settings)`` reads ``ONEWINDOW_LOG_JSON`` (``settings.log_json``) and
``ONEWINDOW_LOG_LEVEL`` (``settings.log_level``). A JSON line holds ``ts`` (ISO 8601,
UTC), ``level``, ``logger``, ``msg`` and every extra field passed with
``log.info(..., extra={...})``, plus ``exc`` for an exception.

librdkafka (every confluent-kafka client: producers, consumers, admin clients) logs
through the logger ``onewindow.librdkafka`` (:func:`librdkafka_logger`, set as the
clients' ``logger`` by ``onewindow.security.kafka_auth.client_config``), never straight
to stderr. A process that configures logging (the workers, the sink, the counter: under
``onewindow up`` their log files) gets those lines at its level; a one-shot command
(``produce``, ``material``, ``provision``, ``simulate``) configures none, so they are
dropped and the command says what went wrong in its own one line.

No plaintext ID number reaches a log: every message, extra and traceback is passed
through :func:`scrub_ids`, which masks any 18-character token passing the GB 11643
(resident ID) or GB 32100 (unified social credit code) check, with any separators
between its characters (docs/privacy.md).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from onewindow.domain.protection import scrub

__all__ = ["LIBRDKAFKA_LOGGER", "JsonFormatter", "ScrubbingFormatter", "configure_logging",
           "librdkafka_logger", "scrub_ids"]

#: the logger librdkafka's own lines go to (``%3|...|FAIL|...`` and the like)
LIBRDKAFKA_LOGGER = "onewindow.librdkafka"

#: attributes every LogRecord has; anything else on a record is an ``extra``
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName"}


def scrub_ids(text: str) -> str:
    """``text`` with every check-valid resident ID or USCC number masked, however typed:
    the free-text rule of :func:`onewindow.domain.protection.scrub` (one scrubber for the
    logs and the derived topics)."""
    return scrub(text)


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_ids(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub_value(v) for v in value]
    return scrub_ids(str(value))


class ScrubbingFormatter(logging.Formatter):
    """The plain-text format, ID numbers masked."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub_ids(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": scrub_ids(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in out:
                out[key] = _scrub_value(value)
        if record.exc_info:
            out["exc"] = scrub_ids(self.formatException(record.exc_info))
        elif record.exc_text:
            out["exc"] = scrub_ids(record.exc_text)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(settings: Any, *, level: str | None = None,
                      stream: Any = None) -> logging.Handler:
    """Replace the root logger's handlers with one on ``stream`` (stderr): JSON when
    ``settings.log_json``, else plain text; level ``level`` or ``settings.log_level``.
    Returns the handler (tests read its stream)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if getattr(settings, "log_json", False):
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(ScrubbingFormatter(
            "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    name = (level or getattr(settings, "log_level", "INFO") or "INFO").upper()
    root.setLevel(getattr(logging, name, logging.INFO))
    logging.captureWarnings(True)
    return handler


def librdkafka_logger() -> logging.Logger:
    """The logger every confluent-kafka client of the project logs through (its
    ``logger`` setting). It propagates to the root logger, so a process that called
    :func:`configure_logging` writes librdkafka's lines where it writes its own; it also
    holds a ``NullHandler``, so in a process that configured nothing (a one-shot command)
    they are dropped instead of reaching the terminal through Python's last-resort
    handler."""
    log = logging.getLogger(LIBRDKAFKA_LOGGER)
    if not any(isinstance(h, logging.NullHandler) for h in log.handlers):
        log.addHandler(logging.NullHandler())
    return log
