"""Bulk loading of the read model, for ``onewindow rebuild`` (sinks/rebuild.py).

The live sink writes batches of a few thousand records through SQLAlchemy, row by row
(:func:`sinks.unit_of_work.write_batch`). A rebuild reads every record of the output
topics into a model it has just emptied, so this module reads and writes in chunks of
tens of thousands of records, with the same final rows:

* :class:`ChunkReducer` turns a chunk of records into the :class:`~sinks.rows.Batch`
  that :meth:`Ingestor.add <sinks.ingest.Ingestor.add>` over each of them would give,
  but maps (the one row mapping: the ``Ingestor`` and its
  :class:`~sinks.rows.RowMaker`) only the case-state records that survive: of each
  case, the highest version (on a tie the later record). Which one survives is read
  from the record's ``case_id`` and ``version`` alone (:class:`CaseStateKeys`: a
  fastavro read with a reader schema of those two fields, about half a full decode);
  when the survivor cannot be read or mapped after all, the next one is tried, as the
  record-by-record path would have kept it. Activity, link and dead-letter records go
  through ``Ingestor.add`` one by one, as in the live sink: almost all of them are
  kept.
* :class:`BulkLoader` writes such batches into an empty model, each in one transaction
  (the caller's), with the semantics of ``write_batch``: cases upserted when their
  version is higher or equal (tasks replaced when it grows), the first copy of every
  other row kept. SQLite: one ``executemany`` per table of rows already converted by
  the columns' own bind processors (no per-row SQLAlchemy work); PostgreSQL: ``COPY``
  into a temporary staging table, then one ``INSERT ... SELECT ... ON CONFLICT``. The
  secondary indexes are dropped before the load and created again after it
  (:meth:`BulkLoader.finish`), with the names and columns of the migrations, so Alembic
  sees the schema at head; ``materials.avoidable`` is set once, at the end, from every
  link, the decision-time summary (``task_decisions``) is computed once, at the end,
  from every case's rows (``sinks.decisions.refresh_all``), and the consumed offsets are
  stored in that last transaction. Until then no
  offset is stored: a rebuild stopped half-way leaves rows but no offsets, so a sink
  started on it reads every topic from the beginning again (every write is idempotent)
  and ``onewindow rebuild`` run again starts over (:func:`restore_indexes` first).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from io import BytesIO
from operator import itemgetter
from typing import Any

from fastavro import parse_schema, schemaless_reader
from sqlalchemy import (
    Column,
    Connection,
    Index,
    MetaData,
    Table,
    delete,
    inspect,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from onewindow.codec import HEADER_LEN, Codec, SchemaVersion
from onewindow.errors import DecodeError
from onewindow.read_model.tables import (
    CASES,
    DEAD,
    LINKS,
    MATERIALS,
    OFFSETS,
    TASK_DECISIONS,
    TASKS,
    TIMELINE,
    metadata,
)
from sinks.decisions import refresh_all
from sinks.ingest import Ingestor
from sinks.rows import Batch
from sinks.unit_of_work import write_batch

__all__ = ["BulkLoader", "CaseStateKeys", "ChunkReducer", "restore_indexes"]

CASE_STATE = "CaseState"
#: SQLite's limit of host parameters per statement is 32,766 (3.32+); IN lists stay under
IN_CHUNK = 5000

#: result of a case-state record left out because a higher (or later equal) version of its
#: case was kept from the same chunk (it is never mapped)
SUPERSEDED = "superseded"


# --------------------------------------------------------------------------- reading


class CaseStateKeys:
    """``(case_id, version)`` of an encoded CaseState record, without decoding the rest:
    fastavro with a reader schema holding only those two fields (Avro schema resolution
    skips the others). ``None`` when the bytes are not a CaseState record this way
    (the caller then goes the whole way, which counts why)."""

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self._readers: dict[SchemaVersion, Any] = {}

    def _reader(self, sv: SchemaVersion) -> Any:
        reader = self._readers.get(sv)
        if reader is None:
            fields = [f for f in sv.schema["fields"] if f["name"] in ("case_id", "version")]
            reader = parse_schema({"type": "record", "name": sv.schema["name"],
                                   "namespace": sv.namespace, "fields": fields})
            self._readers[sv] = reader
        return reader

    def read(self, value: bytes | None) -> tuple[str, int] | None:
        if value is None:
            return None
        try:
            sv = self.codec.schema_of(value)
        except DecodeError:
            return None
        if sv.name != CASE_STATE:
            return None
        buf = BytesIO(value)
        buf.seek(HEADER_LEN)
        try:
            rec = schemaless_reader(buf, sv.parsed, self._reader(sv))
            case_id, version = rec["case_id"], rec["version"]
        except Exception:  # noqa: BLE001 - anything odd goes the whole way (Ingestor.add)
            return None
        if not isinstance(case_id, str) or not isinstance(version, int):
            return None
        return case_id, version


class ChunkReducer:
    """One chunk of output records into one :class:`~sinks.rows.Batch`, equal to what
    ``Ingestor.add`` of every record, in order, gives (rows, offsets, record count; not
    the per-record latency ``stamps``, which only the live sink's metrics use).

    ``add`` every record of the chunk in the order read, then ``finish()`` once.
    ``results`` counts what happened to the records (``Ingestor.add``'s results, and
    ``superseded`` for case states never mapped)."""

    def __init__(self, ingestor: Ingestor, keys: CaseStateKeys) -> None:
        self.ingestor = ingestor
        self.keys = keys
        self.case_topics = frozenset(t for t, kind in ingestor.kind.items()
                                     if kind == CASE_STATE)
        self.batch = Batch()
        self.results: Counter[str] = Counter()
        #: case_id -> [(version, sequence, topic, partition, offset, value)]
        self._cases: dict[str, list[tuple[int, int, str, int, int, bytes]]] = {}
        self._seq = 0

    def add(self, topic: str, partition: int, offset: int, value: bytes | None) -> None:
        if topic in self.case_topics:
            kv = self.keys.read(value)
            if kv is not None and value is not None:
                self.batch.consumed(topic, partition, offset)
                self._cases.setdefault(kv[0], []).append(
                    (kv[1], self._seq, topic, partition, offset, value))
                self._seq += 1
                return
        self.results[self.ingestor.add(self.batch, topic, partition, offset, value)] += 1

    def finish(self) -> Batch:
        """The batch: each case's survivor mapped now (the highest ``(version, order)``
        that maps; records the whole way finds unreadable are skipped as they would be
        one by one)."""
        batch, ingestor = self.batch, self.ingestor
        for candidates in self._cases.values():
            if len(candidates) > 1:
                candidates.sort(key=lambda c: (c[0], c[1]), reverse=True)
            for i, (_v, _s, topic, partition, offset, value) in enumerate(candidates):
                one = Batch()
                result = ingestor.add(one, topic, partition, offset, value)
                self.results[result] += 1
                if one.cases:
                    for row, tasks in one.cases.values():
                        batch.add_case(row, tasks)
                    self.results[SUPERSEDED] += len(candidates) - i - 1
                    break
        self._cases = {}
        return batch


# --------------------------------------------------------------------------- writing


def _secondary_indexes() -> list[Index]:
    return [ix for t in metadata.sorted_tables
            for ix in sorted(t.indexes, key=lambda ix: [c.name for c in ix.columns])]


def restore_indexes(conn: Connection) -> None:
    """Create every index of the model that is missing (a bulk load stopped before
    :meth:`BulkLoader.finish` leaves them dropped; the migrations' downgrade drops them
    by name, so ``onewindow rebuild`` restores them first). Only tables that exist."""
    names = set(inspect(conn).get_table_names())
    for ix in _secondary_indexes():
        if ix.table is not None and ix.table.name in names:
            ix.create(conn, checkfirst=True)


class _Columns:
    """A table's columns in order, and each value as SQLAlchemy would bind it (the bind
    processor of the column type's dialect implementation: ``UTCDateTime`` to UTC, then
    SQLite's text forms of instants and dates)."""

    def __init__(self, table: Table, conn: Connection) -> None:
        self.table = table
        self.names = [c.name for c in table.columns]
        procs = [c.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
                 for c in table.columns]
        self.defaults = [c.default.arg if c.default is not None and c.default.is_scalar
                         else None for c in table.columns]
        self.recorded_at = self.names.index("recorded_at") if "recorded_at" in self.names \
            else None
        self.recorded_proc = None if self.recorded_at is None else procs[self.recorded_at]
        # the row's own values, read in C; recorded_at is the chunk's
        self._own = [n for n in self.names if n != "recorded_at"]
        self._get = itemgetter(*self._own)
        self._procs = [(i, p) for i, p in enumerate(procs)
                       if p is not None and i != self.recorded_at]

    def tuples(self, rows: Iterable[dict[str, Any]], recorded_at: datetime | None
               ) -> list[tuple[Any, ...]]:
        """Each row as a tuple in column order, ``recorded_at`` (when the table has it)
        set to ``recorded_at``, a missing value as the column's default."""
        at, procs, get = self.recorded_at, self._procs, self._get
        stamp = recorded_at if recorded_at is None or self.recorded_proc is None \
            else self.recorded_proc(recorded_at)
        out = []
        for row in rows:
            try:
                values = list(get(row))
            except KeyError:
                values = [row.get(n, d) for n, d in zip(self.names, self.defaults, strict=True)
                          if n != "recorded_at"]
            if at is not None:
                values.insert(at, stamp)
            for i, proc in procs:
                v = values[i]
                if v is not None:
                    values[i] = proc(v)
            out.append(tuple(values))
        return out


class BulkLoader:
    """Writes batches (:class:`~sinks.rows.Batch`) into an empty read model on ``conn``
    (SQLite or PostgreSQL), with the semantics of ``write_batch`` (module docstring).

    ``prepare()`` once (checks the model is empty, drops the secondary indexes), then
    ``write(batch, now)`` per chunk, each in its own transaction, then ``finish(offsets,
    now)`` in the last one (``materials.avoidable``, the indexes, the offsets).
    ``rows`` counts the rows written per table (upserts that changed nothing included)."""

    def __init__(self, conn: Connection) -> None:
        if conn.dialect.name not in ("sqlite", "postgresql"):
            raise NotImplementedError(f"read model on {conn.dialect.name!r} is not supported")
        self.conn = conn
        self.pg = conn.dialect.name == "postgresql"
        self.cols = {t.name: _Columns(t, conn) for t in (CASES, TASKS, TIMELINE, MATERIALS,
                                                          LINKS, DEAD)}
        self.rows: Counter[str] = Counter()
        self._stages: dict[str, Table] = {}

    # ------------------------------------------------------------------ the load

    def prepare(self) -> None:
        """Refuses a model that holds rows (a bulk load assumes it starts empty), then
        drops the secondary indexes (created again by :meth:`finish`)."""
        for table in (CASES, TASKS, TIMELINE, MATERIALS, LINKS, DEAD, TASK_DECISIONS, OFFSETS):
            if self.conn.execute(select(1).select_from(table).limit(1)).first() is not None:
                raise RuntimeError(f"bulk load into a read model that holds rows ({table.name})")
        for ix in _secondary_indexes():
            ix.drop(self.conn)

    def write(self, batch: Batch, now: datetime) -> None:
        """The batch's rows (not its offsets: :meth:`finish` stores them), in the caller's
        transaction."""
        if batch.cases:
            self._cases(batch, now)
        for table, rows, keys in (
                (TIMELINE, batch.timeline, ("case_id", "event_id")),
                (MATERIALS, batch.materials, ("material_id",)),
                (LINKS, batch.links, ("material_a", "material_b")),
                (DEAD, batch.dead_letters, ("source_topic", "source_partition",
                                            "source_offset"))):
            if rows:
                self._upsert(table, self.cols[table.name].tuples(rows.values(), now), keys)
                self.rows[table.name] += len(rows)

    def finish(self, offsets: dict[tuple[str, int], int], now: datetime) -> None:
        """``materials.avoidable`` from every link (the live sink sets it per batch; the
        same final rows), the secondary indexes created again, the decision-time summary
        of every case (``sinks.decisions.refresh_all``: the live sink keeps it per batch;
        the same final rows), and the next offsets."""
        linked = select(LINKS.c.avoidable_material).where(
            LINKS.c.avoidable_material.is_not(None))
        self.conn.execute(update(MATERIALS).where(MATERIALS.c.avoidable.is_(False),
                                                  MATERIALS.c.material_id.in_(linked))
                          .values(avoidable=True))
        for ix in _secondary_indexes():
            ix.create(self.conn)
        self.rows[TASK_DECISIONS.name] += refresh_all(self.conn)
        if offsets:
            write_batch(self.conn, Batch(offsets=dict(offsets)), now)

    # ------------------------------------------------------------------ tables

    def _cases(self, batch: Batch, now: datetime) -> None:
        stored = self._stored_versions(list(batch.cases))
        rows, grew = [], []
        for case_id, (row, _tasks) in batch.cases.items():
            old = stored.get(case_id)
            if old is not None and old > row["version"]:
                continue  # an older version never overwrites a newer one
            rows.append(row)
            if old is None or old < row["version"]:
                grew.append(case_id)
        if rows:
            self._upsert(CASES, self.cols["cases"].tuples(rows, now), ("case_id",),
                         newest=True)
            self.rows["cases"] += len(rows)
        if grew:
            for i in range(0, len(grew), IN_CHUNK):
                self.conn.execute(delete(TASKS).where(TASKS.c.case_id.in_(grew[i:i + IN_CHUNK])))
            tasks = [t for cid in grew for t in batch.cases[cid][1]]
            if tasks:
                self._insert(TASKS, self.cols["tasks"].tuples(tasks, None))
                self.rows["tasks"] += len(tasks)

    def _stored_versions(self, ids: Sequence[str]) -> dict[str, int]:
        stored: dict[str, int] = {}
        for i in range(0, len(ids), IN_CHUNK):
            stored.update(self.conn.execute(select(CASES.c.case_id, CASES.c.version)
                                            .where(CASES.c.case_id.in_(ids[i:i + IN_CHUNK])))
                          .all())
        return stored

    # ------------------------------------------------------------------ statements

    def _insert(self, table: Table, rows: list[tuple[Any, ...]]) -> None:
        """Rows that cannot conflict (the tasks of cases whose tasks were just deleted)."""
        if self.pg:
            self._copy(table, rows)
        else:
            self._executemany(sqlite.insert(table), rows)

    def _upsert(self, table: Table, rows: list[tuple[Any, ...]], keys: Sequence[str],
                newest: bool = False) -> None:
        """Insert, or on a key that exists: nothing (the first copy wins), or with
        ``newest`` (cases) update when the stored version is lower or equal."""
        if self.pg:
            stage = self._stage(table)
            self._copy(stage, rows)
            stmt: Any = postgresql.insert(table).from_select(
                [c.name for c in table.columns], select(*stage.columns))
        else:
            stmt = sqlite.insert(table)
        if newest:
            stmt = stmt.on_conflict_do_update(
                index_elements=list(keys),
                set_={c.name: stmt.excluded[c.name] for c in table.columns
                      if c.name not in keys},
                where=table.c.version <= stmt.excluded.version)
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
        if self.pg:
            self.conn.execute(stmt)
        else:
            self._executemany(stmt, rows)

    def _executemany(self, stmt: Any, rows: list[tuple[Any, ...]]) -> None:
        """SQLite: the statement compiled once, with the rows' tuples as they are (one
        ``executemany`` of the driver: no per-row work of SQLAlchemy)."""
        compiled = stmt.compile(dialect=self.conn.dialect)
        names = self.cols[stmt.table.name].names
        if list(compiled.positiontup or []) != names:
            raise RuntimeError(f"unexpected parameters of {stmt.table.name}'s insert")
        self.conn.exec_driver_sql(str(compiled), rows)

    def _stage(self, table: Table) -> Table:
        """PostgreSQL: a temporary table with ``table``'s columns, emptied at every
        commit, created once per connection."""
        stage = self._stages.get(table.name)
        if stage is None:
            stage = Table(f"bulk_stage_{table.name}", MetaData(),
                          *(Column(c.name, c.type) for c in table.columns),
                          prefixes=["TEMPORARY"], postgresql_on_commit="DELETE ROWS")
            stage.create(self.conn, checkfirst=False)
            self._stages[table.name] = stage
        return stage

    def _copy(self, table: Table, rows: list[tuple[Any, ...]]) -> None:
        """PostgreSQL: ``COPY table (columns) FROM STDIN`` of the rows (psycopg 3, text
        format: each value adapted by its Python type)."""
        # psycopg is the optional `postgres` extra: loaded only on PostgreSQL
        from psycopg import sql as pgsql  # noqa: PLC0415

        query = pgsql.SQL("COPY {} ({}) FROM STDIN").format(
            pgsql.Identifier(table.name),
            pgsql.SQL(", ").join(pgsql.Identifier(c.name) for c in table.columns))
        cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            with cursor.copy(query) as cp:
                for row in rows:
                    cp.write_row(row)
        finally:
            cursor.close()
