"""The schema registry and the one codec of the project.

Every ``<Name>.v<N>.avsc`` under ``schemas/avro/`` is loaded once, parsed by fastavro and
fingerprinted (CRC-64-AVRO of its Parsing Canonical Form). Values are Avro single-object
encoded: ``C3 01``, the 8-byte little-endian fingerprint, then the binary body. Data is
always written with the latest version of its record and read into the latest version
(Avro schema resolution), so callers only ever see the newest shape.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, partial
from importlib import resources
from io import BytesIO
from pathlib import Path
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint as _fastavro_fingerprint
from fastavro.schema import to_parsing_canonical_form

from onewindow.codec.canonical import canonical_form
from onewindow.codec.compat import check_backward_compatible
from onewindow.codec.jsonform import (
    FromJson,
    ToJson,
    compile_converters,
    compile_naive_check,
)
from onewindow.errors import DecodeError, OneWindowError

MAGIC = b"\xc3\x01"
HEADER_LEN = 10
EVENTS_NAMESPACE = "onewindow.events"
OUTPUT_NAMESPACE = "onewindow.output"
SCHEMA_DIR_ENV = "ONEWINDOW_SCHEMA_DIR"

_FILE_RE = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)\.v(?P<version>[1-9][0-9]*)\.avsc")


class SchemaRegistryError(OneWindowError):
    """The schema directory is unusable: a bad file name, a fingerprint clash, an
    incompatible new version."""


class EncodeError(OneWindowError, ValueError):
    """A record does not fit its schema (a bug of the producer, not a dead letter)."""


def default_schema_dir() -> Path:
    """``$ONEWINDOW_SCHEMA_DIR``, else the ``avro`` folder of the ``schemas`` package
    (package data: ``schemas/avro/`` of the repository; installs are unzipped, so it is
    a real directory)."""
    override = os.environ.get(SCHEMA_DIR_ENV)
    if override:
        return Path(override)
    return Path(str(resources.files("schemas") / "avro"))


def crc64_fingerprint(canonical_form: str) -> bytes:
    """CRC-64-AVRO of a Parsing Canonical Form, as the 8 little-endian bytes of the header."""
    return bytes.fromhex(_fastavro_fingerprint(canonical_form, "CRC-64-AVRO"))


@dataclass(frozen=True, eq=False)
class SchemaVersion:
    """One released version of one record schema."""

    name: str  # short record name, the "type" of a decoded dict
    full_name: str
    namespace: str
    version: int
    path: Path
    schema: dict[str, Any]  # the .avsc JSON as written
    parsed: dict[str, Any] = field(repr=False)  # fastavro-parsed, reused for every call
    canonical_form: str = field(repr=False)
    fingerprint: bytes  # 8 bytes, little-endian, as in the single-object header
    header: bytes = field(repr=False)
    # Fingerprints other implementations compute for this schema (Apache Avro Python's
    # canonical form keeps {"type":"long"} for logical types): accepted when decoding.
    alias_fingerprints: tuple[bytes, ...] = ()

    @property
    def fingerprint_hex(self) -> str:
        return self.fingerprint.hex()

    @property
    def is_event(self) -> bool:
        return self.namespace == EVENTS_NAMESPACE

    @classmethod
    def from_file(cls, path: Path) -> SchemaVersion:
        match = _FILE_RE.fullmatch(path.name)
        if match is None:
            raise SchemaRegistryError(f"{path}: schema files are named <Name>.v<N>.avsc")
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SchemaRegistryError(f"{path}: unreadable schema: {exc}") from exc
        return cls.from_json(schema, path=path, version=int(match["version"]), name=match["name"])

    @classmethod
    def from_json(
        cls,
        schema: dict[str, Any],
        *,
        version: int,
        path: Path | None = None,
        name: str | None = None,
    ) -> SchemaVersion:
        where = path or f"{schema.get('name')} v{version}"
        if not isinstance(schema, dict) or schema.get("type") != "record":
            raise SchemaRegistryError(f"{where}: the top-level schema must be a record")
        raw_name = schema["name"]
        namespace = schema.get("namespace", "")
        if "." in raw_name:
            namespace, _, raw_name = raw_name.rpartition(".")
        if name is not None and raw_name != name:
            raise SchemaRegistryError(f"{where}: file is named {name} but the record is {raw_name}")
        if namespace not in (EVENTS_NAMESPACE, OUTPUT_NAMESPACE):
            raise SchemaRegistryError(
                f"{where}: namespace must be {EVENTS_NAMESPACE} or {OUTPUT_NAMESPACE}"
            )
        try:
            # A fresh named_schemas per file: every file defines its own nested types, and
            # two versions of one record reuse the same names.
            parsed = parse_schema(schema, named_schemas={})
            canonical = to_parsing_canonical_form(schema)
        except Exception as exc:  # fastavro raises several exception types
            raise SchemaRegistryError(f"{where}: invalid Avro schema: {exc}") from exc
        fp = crc64_fingerprint(canonical)
        apache_variant = crc64_fingerprint(canonical_form(schema, logical_as_object=True))
        return cls(
            name=raw_name,
            full_name=f"{namespace}.{raw_name}",
            namespace=namespace,
            version=version,
            path=path or Path(f"{raw_name}.v{version}.avsc"),
            schema=schema,
            parsed=parsed,
            canonical_form=canonical,
            fingerprint=fp,
            header=MAGIC + fp,
            alias_fingerprints=(apache_variant,) if apache_variant != fp else (),
        )


class _Latest:
    """Per record name: the latest version and everything compiled from it."""

    __slots__ = ("version", "to_json", "from_json", "naive_check")

    def __init__(self, version: SchemaVersion) -> None:
        self.version = version
        converters: tuple[ToJson, FromJson] = compile_converters(version.parsed)
        self.to_json, self.from_json = converters
        self.naive_check = compile_naive_check(version.parsed)


class Codec:
    """All schema versions of the project, and encoding/decoding with them.

    Build it with ``Codec.load(path)`` or use the cached ``get_codec()``; it is immutable
    after construction, so one instance can be shared by threads (the writers of
    `writer` are made on first use: two threads may both make one, either is right).
    """

    def __init__(self, versions: Iterable[SchemaVersion], *, check_compatibility: bool = True):
        self._versions: dict[str, list[SchemaVersion]] = {}
        self._by_fingerprint: dict[bytes, SchemaVersion] = {}
        versions_list = list(versions)
        for sv in sorted(versions_list, key=lambda v: (v.name, v.version)):
            same = self._versions.setdefault(sv.name, [])
            if same and same[-1].version == sv.version:
                raise SchemaRegistryError(f"{sv.name} v{sv.version} is defined twice")
            if same and same[0].namespace != sv.namespace:
                raise SchemaRegistryError(f"{sv.name} v{sv.version} changed its namespace")
            same.append(sv)
            clash = self._by_fingerprint.get(sv.fingerprint)
            if clash is not None and clash.name != sv.name:
                raise SchemaRegistryError(
                    f"{sv.path} and {clash.path} have the same fingerprint {sv.fingerprint_hex}"
                )
            # Versions differing only in docs or defaults share a Parsing Canonical Form and
            # so a fingerprint (and the binary layout): the newest one is used to read.
            self._by_fingerprint[sv.fingerprint] = sv
        for sv in sorted(versions_list, key=lambda v: (v.name, v.version)):
            for alias in sv.alias_fingerprints:
                clash = self._by_fingerprint.get(alias)
                if clash is None or (clash.name == sv.name and clash.version < sv.version):
                    self._by_fingerprint[alias] = sv
                elif clash.name != sv.name:
                    raise SchemaRegistryError(
                        f"{sv.path}: alias fingerprint {alias.hex()} clashes with {clash.path}"
                    )
        self._latest: dict[str, _Latest] = {
            name: _Latest(vs[-1]) for name, vs in self._versions.items()
        }
        #: the writers of `writer`, made on first use
        self._writers: dict[str, Callable[[Mapping[str, Any]], bytes]] = {}
        self._event_types = tuple(sorted(n for n, vs in self._versions.items() if vs[-1].is_event))
        if check_compatibility:
            problems = self.compatibility_problems(engine="builtin")
            if problems:
                raise SchemaRegistryError("incompatible schema versions: " + "; ".join(problems))

    # ---- construction ----------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path | str | None = None, *, check_compatibility: bool = True) -> Codec:
        """Every ``*.avsc`` in ``path`` (default: ``default_schema_dir()``)."""
        directory = Path(path) if path is not None else default_schema_dir()
        files = sorted(directory.glob("*.avsc"))
        if not files:
            raise SchemaRegistryError(f"no .avsc schema files in {directory}")
        return cls(
            (SchemaVersion.from_file(f) for f in files), check_compatibility=check_compatibility
        )

    # ---- introspection ---------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._versions))

    @property
    def event_types(self) -> tuple[str, ...]:
        return self._event_types

    def versions(self, name: str) -> list[SchemaVersion]:
        """Every version of ``name``, oldest first."""
        try:
            return list(self._versions[name])
        except KeyError:
            raise KeyError(f"unknown record name {name!r}") from None

    def latest(self, name: str) -> SchemaVersion:
        return self._latest_of(name).version

    def by_fingerprint(self, fingerprint: bytes) -> SchemaVersion | None:
        return self._by_fingerprint.get(bytes(fingerprint))

    def compatibility_problems(self, *, engine: str = "auto") -> list[str]:
        """For each record name, can the latest version read every older one?"""
        problems = []
        for name, vs in sorted(self._versions.items()):
            latest = vs[-1]
            for old in vs[:-1]:
                for p in check_backward_compatible(latest.schema, old.schema, engine=engine):  # type: ignore[arg-type]
                    problems.append(f"{name} v{latest.version} cannot read v{old.version}: {p}")
        return problems

    # ---- Avro single-object encoding -------------------------------------------------------

    def encode(self, event: dict[str, Any]) -> bytes:
        """An input event (dict with ``type``) in the latest version of its schema."""
        name = event.get("type")
        if name not in self._event_types:
            raise EncodeError(
                f"type: {name!r} is not an input event type (one of {', '.join(self._event_types)})"
            )
        return self._encode(self._latest[name], event)

    def encode_record(
        self, name: str, record: dict[str, Any], *, version: int | None = None
    ) -> bytes:
        """Any record (outputs included) by name; ``version`` only to produce old-version
        data in tests and migrations."""
        latest = self._latest_of(name)
        if version is None or version == latest.version.version:
            return self._encode(latest, record)
        sv = next((v for v in self._versions[name] if v.version == version), None)
        if sv is None:
            raise KeyError(f"{name} has no version {version}")
        return self._write(sv, record)

    def _encode(self, latest: _Latest, record: dict[str, Any]) -> bytes:
        if latest.naive_check is not None:
            where = latest.naive_check(record)
            if where is not None:
                raise EncodeError(
                    f"{latest.version.name}.{where}: naive datetime; timestamps must be "
                    "timezone-aware"
                )
        return self._write(latest.version, record)

    def writer(self, name: str, *, sorted_maps: bool = False) -> Callable[
            [Mapping[str, Any]], bytes]:
        """``record -> bytes``: what `encode_record` writes for ``name`` (its latest
        version, fastavro's writer over its parsed schema), for records known to fit the
        schema: decoded by this codec or built by the project's own code; it skips
        `encode_record`'s naive-datetime check and raises fastavro's own error on a record
        that does not fit (use `encode_record` for anything from outside).
        ``sorted_maps``: the record's map fields (top level: the only maps of the
        project's schemas) written in the order of their keys, so equal records have
        equal bytes (the general writer keeps each mapping's order)."""
        key = f"{name}/sorted" if sorted_maps else name
        write = self._writers.get(key)
        if write is None:
            latest = self._latest_of(name).version
            maps = tuple(f["name"] for f in latest.schema["fields"]
                         if _is_map(f["type"])) if sorted_maps else ()
            write = self._writers[key] = partial(_write_fast, latest.header,
                                                 latest.parsed, maps)
        return write

    @staticmethod
    def _write(sv: SchemaVersion, record: dict[str, Any]) -> bytes:
        out = BytesIO()
        out.write(sv.header)
        try:
            schemaless_writer(out, sv.parsed, record)
        except Exception as exc:  # fastavro raises ValueError, TypeError, KeyError, ...
            raise EncodeError(f"{sv.name} v{sv.version}: {exc}") from exc
        return out.getvalue()

    def decode(self, data: bytes) -> dict[str, Any]:
        """An input event, read into the latest version of its schema, with ``type``.

        Raises DecodeError("UNDECODABLE") for a bad header, a truncated or garbage body,
        and DecodeError("UNKNOWN_SCHEMA") for a fingerprint that is not an input event's.
        """
        sv = self._header(data)
        if not sv.is_event:
            raise DecodeError(
                "UNKNOWN_SCHEMA",
                f"fingerprint {sv.fingerprint_hex} is {sv.full_name}, not an input event",
            )
        return self._read(sv, data)

    def decode_record(self, data: bytes, name: str | None = None) -> dict[str, Any]:
        """Any record of the registry (outputs included), with ``type`` = its record name;
        with ``name``, a record of another name is UNKNOWN_SCHEMA."""
        sv = self._header(data)
        if name is not None and sv.name != name:
            raise DecodeError(
                "UNKNOWN_SCHEMA", f"expected a {name} record, got {sv.full_name} v{sv.version}"
            )
        return self._read(sv, data)

    def schema_of(self, data: bytes) -> SchemaVersion:
        """The writer schema named by a single-object header (raises like ``decode``)."""
        return self._header(data)

    def _header(self, data: bytes) -> SchemaVersion:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise DecodeError("UNDECODABLE", f"expected bytes, got {type(data).__name__}")
        if len(data) < HEADER_LEN:
            raise DecodeError(
                "UNDECODABLE", f"{len(data)} bytes: shorter than the 10-byte single-object header"
            )
        if data[0] != 0xC3 or data[1] != 0x01:
            raise DecodeError(
                "UNDECODABLE",
                f"bad magic {bytes(data[:2]).hex()}: not Avro single-object encoding (c301)",
            )
        fp = bytes(data[2:HEADER_LEN])
        sv = self._by_fingerprint.get(fp)
        if sv is None:
            raise DecodeError("UNKNOWN_SCHEMA", f"unknown schema fingerprint {fp.hex()}")
        return sv

    def _read(self, sv: SchemaVersion, data: bytes) -> dict[str, Any]:
        latest = self._latest[sv.name].version
        buf = BytesIO(data)
        buf.seek(HEADER_LEN)
        try:
            record = schemaless_reader(buf, sv.parsed, None if latest is sv else latest.parsed)
        except Exception as exc:  # EOFError, UnicodeDecodeError, IndexError, OverflowError...
            raise DecodeError(
                "UNDECODABLE",
                f"{sv.name} v{sv.version}: body does not decode: {type(exc).__name__}: {exc}",
            ) from exc
        consumed = buf.tell()
        if consumed != len(data):
            raise DecodeError(
                "UNDECODABLE",
                f"{sv.name} v{sv.version}: {len(data) - consumed} trailing bytes after the body",
            )
        if not isinstance(record, dict):
            raise DecodeError("UNDECODABLE", f"{sv.name} v{sv.version}: body is not a record")
        record["type"] = sv.name
        return record

    # ---- JSON form -------------------------------------------------------------------------

    def to_json(self, record: dict[str, Any]) -> dict[str, Any]:
        """The JSON form of an event (or any record with ``type``); None fields omitted."""
        name = record.get("type")
        if not isinstance(name, str) or name not in self._latest:
            raise EncodeError(f"type: unknown record type {name!r}")
        return {"type": name, **self._latest[name].to_json(record)}

    def record_to_json(self, name: str, record: dict[str, Any]) -> dict[str, Any]:
        """The JSON form of a record given its name (no ``type`` key in the result)."""
        return self._latest_of(name).to_json(record)

    def from_json(self, obj: Any) -> dict[str, Any]:
        """An event from its JSON form; DecodeError("INVALID_FIELD", "<path>: <problem>")."""
        if not isinstance(obj, dict):
            raise DecodeError("INVALID_FIELD", f"(event): expected a JSON object, got {obj!r:.60}")
        if "type" not in obj:
            raise DecodeError("INVALID_FIELD", "type: missing required field")
        name = obj["type"]
        if not isinstance(name, str) or name not in self._event_types:
            raise DecodeError(
                "INVALID_FIELD",
                f"type: unknown event type {name!r} (one of {', '.join(self._event_types)})",
            )
        event = self._latest[name].from_json(obj, "")
        event["type"] = name
        return event

    def record_from_json(self, name: str, obj: Any) -> dict[str, Any]:
        """Any record from its JSON form (no ``type`` key expected or added)."""
        return self._latest_of(name).from_json(obj, "")

    def loads_json_line(self, line: str | bytes) -> dict[str, Any]:
        """One line of a JSON-lines file to an event."""
        try:
            obj = json.loads(line)
        except (ValueError, UnicodeDecodeError) as exc:
            raise DecodeError("UNDECODABLE", f"not valid JSON: {exc}") from exc
        return self.from_json(obj)

    def _latest_of(self, name: str) -> _Latest:
        try:
            return self._latest[name]
        except KeyError:
            raise KeyError(f"unknown record name {name!r}") from None


def _is_map(avro_type: Any) -> bool:
    """Whether a field's type is a map, or a union with a map branch."""
    if isinstance(avro_type, list):
        return any(_is_map(t) for t in avro_type)
    return isinstance(avro_type, dict) and avro_type.get("type") == "map"


def _write_fast(header: bytes, parsed: Any, maps: tuple[str, ...],
                record: Mapping[str, Any]) -> bytes:
    """``header`` then ``record`` in Avro binary (fastavro), its ``maps`` fields sorted by
    key (`Codec.writer`)."""
    if maps:
        record = {**record, **{f: dict(sorted(record[f].items())) for f in maps
                               if record.get(f)}}
    out = BytesIO()
    out.write(header)
    schemaless_writer(out, parsed, record)
    return out.getvalue()


@cache
def get_codec() -> Codec:
    """The process-wide codec over ``default_schema_dir()``, built on first use."""
    return Codec.load()
