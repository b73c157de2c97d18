"""Crawl a process's HTTP port and search the answers for ID numbers (docs/privacy.md,
"Over HTTP"): used by tests/integration/test_http_no_plaintext_ids.py.

:func:`crawl` fetches ``/openapi.json``; when the process is a FastAPI app it fetches
every ``GET`` route of it (path parameters, required query parameters and any optional
one the caller has a sample for filled from ``samples``; a route taking ``max_seconds``,
a change feed, gets a short one so it ends), then every extra path the caller names. The
client carries whatever sign-in the caller gave it. :func:`plaintext_in_answers` then
looks for ID numbers as typed, normalised, lower case, with separators, and in any
spelling that normalises to them (full-width digits, dashes, zero-width spaces), in the
raw body and in the JSON decoded (so ``\\u2013`` escapes do not hide one).

:func:`listening_addresses` reads which addresses a process listens on from ``/proc``
(Linux), to check a worker binds the metrics host only.
"""

from __future__ import annotations

import json
import os
import re
import socket
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from onewindow.domain.normalise import normalise_number

#: seconds a streaming route (one with a ``max_seconds`` parameter) is read for
STREAM_SECONDS = 0.5
_PARAM = re.compile(r"{([^}/]+)}")


@dataclass(frozen=True)
class Answer:
    """One fetched path: what the crawl asked, the status and the body as sent."""

    path: str
    status: int
    body: bytes
    content_type: str

    def texts(self) -> list[str]:
        """The body as text, and decoded from JSON when it is JSON (escapes resolved)."""
        text = self.body.decode("utf-8", errors="replace")
        out = [text]
        try:
            out.append(json.dumps(json.loads(text), ensure_ascii=False))
        except ValueError:
            pass
        return out


def fill_path(template: str, samples: Mapping[str, str]) -> str:
    """``/api/cases/{case_id}`` with its parameters from ``samples`` (an error when one
    is missing: a new route is never skipped unnoticed)."""
    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in samples:
            raise AssertionError(f"no sample value for the path parameter {name!r} of "
                                 f"{template}: add one to the crawl's samples")
        return quote(str(samples[name]), safe="")
    return _PARAM.sub(one, template)


def _parameters(item: Mapping[str, Any], op: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [*item.get("parameters", []), *op.get("parameters", [])]


def openapi_paths(spec: Mapping[str, Any], samples: Mapping[str, str]) -> list[str]:
    """Every GET route of an OpenAPI document as paths to fetch: once with its required
    parameters, and once more with the optional query parameters ``samples`` has a value
    for (when there are any). A missing sample for a required parameter is an error, so a
    new route is never skipped unnoticed."""
    out: list[str] = []
    for template, item in spec.get("paths", {}).items():
        op = item.get("get")
        if op is None:
            continue
        path = fill_path(template, samples)
        required: dict[str, str] = {}
        optional: dict[str, str] = {}
        for p in _parameters(item, op):
            if p.get("in") != "query":
                continue
            name = p["name"]
            if name == "max_seconds":
                required[name] = str(STREAM_SECONDS)
            elif p.get("required"):
                if name not in samples:
                    raise AssertionError(f"no sample value for the query parameter {name!r}"
                                         f" of {template}: add one to the crawl's samples")
                required[name] = str(samples[name])
            elif name in samples:
                optional[name] = str(samples[name])
        out.append(f"{path}?{urlencode(required)}" if required else path)
        if optional:
            out.append(f"{path}?{urlencode({**required, **optional})}")
    return out


def fetch(client: httpx.Client, base_url: str, path: str) -> Answer:
    """One GET, redirects not followed. A connection the server drops (a route that
    crashed mid-answer) is an answer of status 0 whose body is the error: it sent no
    data, and the crawl goes on."""
    try:
        r = client.get(base_url.rstrip("/") + path, follow_redirects=False)
    except httpx.TransportError as exc:
        return Answer(path, 0, f"{type(exc).__name__}: {exc}".encode(), "")
    return Answer(path, r.status_code, r.content, r.headers.get("content-type", ""))


def crawl(client: httpx.Client, base_url: str, *, samples: Mapping[str, str] | None = None,
          extra_paths: Iterable[str] = (), spec: Mapping[str, Any] | None = None
          ) -> list[Answer]:
    """Every answer of the process at ``base_url``: ``/openapi.json``, every GET route
    of the OpenAPI document (``spec`` when the caller has it, e.g. built in-process for
    an app that serves it to signed-in users only; else the one fetched, when the process
    is a FastAPI app), then ``extra_paths``, each fetched once with ``client`` (its
    headers and cookies: the caller's sign-in, or none)."""
    samples = samples or {}
    answers = [fetch(client, base_url, "/openapi.json")]
    if spec is None and answers[0].status == 200:
        try:
            spec = json.loads(answers[0].body)
        except ValueError:
            spec = None
    paths: list[str] = []
    if isinstance(spec, dict) and "paths" in spec:
        paths += openapi_paths(spec, samples)
    paths += [p for p in dict.fromkeys(extra_paths) if p not in {"/openapi.json", *paths}]
    answers += [fetch(client, base_url, p) for p in paths]
    return answers


# --------------------------------------------------------------------------- searching


def spellings(number: str) -> set[str]:
    """A number as typed, normalised, lower case, and with a space or a dash between the
    groups a clerk types (resident ID 6-8-4, others in fours)."""
    n = normalise_number(number)
    groups = [n[:6], n[6:14], n[14:]] if len(n) == 18 and n[:17].isdigit() else \
        [n[i:i + 4] for i in range(0, len(n), 4)]
    out = {number, n, n.lower()}
    for sep in (" ", "-", "\u2013"):
        joined = sep.join(g for g in groups if g)
        out |= {joined, joined.lower()}
    return out


def found_in(text: str, numbers: Iterable[str]) -> list[str]:
    """The numbers in ``text``: any of their :func:`spellings`, or normalised in the
    normalised text (so any separator, full-width digit or case)."""
    squeezed = normalise_number(text)
    return sorted(n for n in numbers
                  if any(s in text for s in spellings(n)) or normalise_number(n) in squeezed)


def plaintext_in_answers(answers: Iterable[Answer],
                         numbers: Iterable[str]) -> list[tuple[str, int, str]]:
    """(path, status, number) for every number found in an answer."""
    numbers = sorted(set(numbers))
    return [(a.path, a.status, n) for a in answers
            for n in sorted({n for t in a.texts() for n in found_in(t, numbers)})]


# --------------------------------------------------------------------------- sockets


def _socket_inodes(pid: int) -> set[str]:
    fd_dir = f"/proc/{pid}/fd"
    out = set()
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(f"{fd_dir}/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            out.add(target[len("socket:["):-1])
    return out


def _address(hex_addr: str) -> tuple[str, int]:
    host, port = hex_addr.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        ip = socket.inet_ntop(socket.AF_INET, raw[::-1])
    else:  # IPv6: four little-endian 32-bit words
        ip = socket.inet_ntop(socket.AF_INET6, b"".join(
            struct.pack(">I", struct.unpack("<I", raw[i:i + 4])[0]) for i in range(0, 16, 4)))
    return ip, int(port, 16)


def listening_addresses(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket process ``pid`` listens on (Linux ``/proc``)."""
    inodes = _socket_inodes(pid)
    out = set()
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}") as f:
                rows = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            cols = row.split()
            if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                out.add(_address(cols[1]))
    return out
