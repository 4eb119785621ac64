"""The governance ledger: an append-only SQL table in which each entry carries the hash of the one before.

Any edit, deletion or reordering of past entries breaks the chain, and `verify` names the first
entry where it breaks. Removing entries from the end leaves a shorter valid chain: compare the
head (count and last hash) with one recorded elsewhere (`verify(expected_head=...)`), which the
pipeline does with the head it published last time.

SQLAlchemy Core, so the same code runs on SQLite (embedded default) and PostgreSQL (production).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
from dataclasses import dataclass

import sqlalchemy as sa

GENESIS = "0" * 64
KINDS = (
    "candidate_registered",
    "gate_results",
    "approval",
    "rejection",
    "promotion",
    "rollback",
    "contract_violation",
    "override",
    "report_published",
)

metadata = sa.MetaData()
entries = sa.Table(
    "governance_ledger",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("recorded_at", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("entry_hash", sa.String(64), nullable=False, unique=True),
)


@dataclass(frozen=True)
class Entry:
    seq: int
    recorded_at: str
    kind: str
    subject: str
    actor: str
    payload: dict
    prev_hash: str
    entry_hash: str


def entry_hash(seq: int, recorded_at: str, kind: str, subject: str, actor: str, payload_json: str, prev_hash: str) -> str:
    canonical = json.dumps([seq, recorded_at, kind, subject, actor, payload_json, prev_hash], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _payload_json(payload: dict) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


class LedgerError(RuntimeError):
    pass


@dataclass(frozen=True)
class Verification:
    ok: bool
    entries: int
    head: str
    problem: str = ""


class Ledger:
    """Append and verify; the engine is created by the caller (a URL from configuration)."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine
        metadata.create_all(engine)

    @classmethod
    def from_url(cls, url: str) -> "Ledger":
        if not url.startswith("sqlite"):
            return cls(sa.create_engine(url))
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _no_implicit_begin(dbapi_connection, _record):
            dbapi_connection.isolation_level = None  # SQLAlchemy's recipe: we issue BEGIN ourselves

        @sa.event.listens_for(engine, "begin")
        def _write_lock_at_begin(connection):
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # appends from several processes serialise

        return cls(engine)

    def append(self, kind: str, subject: str, actor: str, payload: dict, attempts: int = 5) -> Entry:
        for _ in range(attempts):
            try:
                with self.engine.begin() as connection:
                    return self._append(connection, kind, subject, actor, payload)
            except sa.exc.IntegrityError:
                continue  # another writer took this seq: read the new head and chain onto it
        raise LedgerError(f"could not append a {kind} entry after {attempts} attempts")

    @contextlib.contextmanager
    def exclusive(self):
        """A transaction holding the ledger's write lock: decisions made inside it (read the
        champion, move aliases, record) are serialised across processes. Yields an appender;
        if the block raises, nothing it appended is kept."""
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql("LOCK TABLE governance_ledger IN SHARE ROW EXCLUSIVE MODE")
            # SQLite: the engine began this transaction with BEGIN IMMEDIATE, the database write lock.
            yield lambda kind, subject, actor, payload: self._append(connection, kind, subject, actor, payload)

    def _append(self, connection, kind: str, subject: str, actor: str, payload: dict) -> Entry:
        if kind not in KINDS:
            raise LedgerError(f"unknown ledger entry kind {kind!r}; kinds are {KINDS}")
        body = _payload_json(payload)
        last = connection.execute(sa.select(entries.c.seq, entries.c.entry_hash).order_by(entries.c.seq.desc()).limit(1).with_for_update()).first()
        seq, prev = (last.seq + 1, last.entry_hash) if last else (1, GENESIS)
        recorded_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")
        digest = entry_hash(seq, recorded_at, kind, subject, actor, body, prev)
        connection.execute(
            entries.insert().values(seq=seq, recorded_at=recorded_at, kind=kind, subject=subject, actor=actor, payload=body, prev_hash=prev, entry_hash=digest)
        )
        return Entry(seq, recorded_at, kind, subject, actor, json.loads(body), prev, digest)

    def entries(self, kind: str | None = None, subject: str | None = None) -> list[Entry]:
        query = sa.select(entries).order_by(entries.c.seq)
        if kind:
            query = query.where(entries.c.kind == kind)
        if subject:
            query = query.where(entries.c.subject == subject)
        with self.engine.connect() as connection:
            return [
                Entry(r.seq, r.recorded_at, r.kind, r.subject, r.actor, json.loads(r.payload), r.prev_hash, r.entry_hash) for r in connection.execute(query)
            ]

    def verify(self, expected_head: tuple[int, str] | None = None) -> Verification:
        """Walk the chain in stored order; the first broken link is named by its seq and kind."""
        with self.engine.connect() as connection:
            rows = list(connection.execute(sa.select(entries).order_by(entries.c.seq)))
        prev, expected_seq = GENESIS, 1
        for row in rows:
            where = f"entry {row.seq} ({row.kind} {row.subject})"
            if row.seq != expected_seq:
                return Verification(False, len(rows), prev, f"{where}: expected entry {expected_seq} here; entries {expected_seq}..{row.seq - 1} are missing")
            if row.prev_hash != prev:
                return Verification(False, len(rows), prev, f"{where}: does not chain onto entry {row.seq - 1} (reordered, or the one before was replaced)")
            recomputed = entry_hash(row.seq, row.recorded_at, row.kind, row.subject, row.actor, row.payload, row.prev_hash)
            if recomputed != row.entry_hash:
                return Verification(False, len(rows), prev, f"{where}: its content was edited after it was recorded")
            prev, expected_seq = row.entry_hash, expected_seq + 1
        if expected_head is not None:
            count, head = expected_head
            if len(rows) < count:
                return Verification(
                    False, len(rows), prev, f"the ledger has {len(rows)} entries but {count} were published: entries {len(rows) + 1}..{count} were deleted"
                )
            if count and rows[count - 1].entry_hash != head:
                return Verification(False, len(rows), prev, f"entry {count} no longer has the published hash")
        return Verification(True, len(rows), prev)
