"""The governance ledger: an append-only SQL table in which each entry carries the hash of the one before.

It holds against an insider in three layers, each covering what the one before cannot:

- the database refuses UPDATE, DELETE (and on PostgreSQL TRUNCATE) of its rows, by triggers;
- an owner can drop the triggers, so each entry's hash is an HMAC keyed by a ledger key the
  database does not hold: whoever edits an entry cannot recompute a chain that `verify` accepts;
- removing entries from the end leaves a shorter valid chain, so the head (count and last hash,
  `head()`) is kept outside the database and compared by `verify(expected_head=...)`.

Without a key the chain is plain SHA-256 (as ledgers were before keys), which shows accidents but
not an insider; `verify` then reports `authenticated=False` so a caller can insist on a key.

SQLAlchemy Core, so the same code runs on SQLite (embedded default) and PostgreSQL (production).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json
from dataclasses import dataclass

import sqlalchemy as sa

GENESIS = "0" * 64
PLAIN = "sha256"
MIN_KEY_BYTES = 16
KINDS = (
    "candidate_registered",
    "gate_results",
    "approval",
    "rejection",
    "promotion",
    "rollback",
    "contract_violation",
    "override",  # a person's final decision against the model's approve or decline (riskcore.review)
    "referral_decision",  # a person deciding a referral: the refer band the decision policy hands over, overriding nothing
    "confirm",  # a person upholding the model's approve or decline (an appealed decline declined again)
    "report_published",
    "retraining_decision",
    "rollout_canary",  # a staged rollout (riskcore.rollout): its start, each step, its rollback
    "rollout_advance",
    "rollout_rollback",
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
    sa.Column("scheme", sa.String(80), nullable=False, server_default=PLAIN),  # which hash made entry_hash: sha256 or hmac-sha256:<key id>
)

# Ledgers created before the scheme column: every row in them was hashed with plain SHA-256.
ADD_SCHEME_COLUMN = f"ALTER TABLE governance_ledger ADD COLUMN scheme VARCHAR(80) NOT NULL DEFAULT '{PLAIN}'"

SQLITE_APPEND_ONLY = (
    "CREATE TRIGGER IF NOT EXISTS governance_ledger_no_update BEFORE UPDATE ON governance_ledger"
    " BEGIN SELECT RAISE(ABORT, 'governance_ledger is append-only: UPDATE refused'); END",
    "CREATE TRIGGER IF NOT EXISTS governance_ledger_no_delete BEFORE DELETE ON governance_ledger"
    " BEGIN SELECT RAISE(ABORT, 'governance_ledger is append-only: DELETE refused'); END",
    # INSERT OR REPLACE deletes the row it collides with without firing delete triggers
    # (unless recursive_triggers is on, which an insider's connection need not set): refuse it here.
    "CREATE TRIGGER IF NOT EXISTS governance_ledger_insert_at_head BEFORE INSERT ON governance_ledger"
    " WHEN NEW.seq IS NOT (SELECT COALESCE(MAX(seq), 0) + 1 FROM governance_ledger)"
    " OR EXISTS (SELECT 1 FROM governance_ledger WHERE entry_hash = NEW.entry_hash)"
    " BEGIN SELECT RAISE(ABORT, 'governance_ledger is append-only: an INSERT must add the next seq and a new hash'); END",
)

# No percent signs in here: psycopg2 would read them as parameter markers.
POSTGRESQL_APPEND_ONLY = """
DO $ledger$
BEGIN
    IF to_regprocedure('governance_ledger_append_only()') IS NULL THEN
        CREATE FUNCTION governance_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
            RAISE EXCEPTION USING
                MESSAGE = 'governance_ledger is append-only: ' || TG_OP || ' refused',
                ERRCODE = 'restrict_violation';
        END
        $fn$;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'governance_ledger'::regclass AND tgname = 'governance_ledger_no_update_delete') THEN
        CREATE TRIGGER governance_ledger_no_update_delete BEFORE UPDATE OR DELETE ON governance_ledger
            FOR EACH ROW EXECUTE FUNCTION governance_ledger_append_only();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'governance_ledger'::regclass AND tgname = 'governance_ledger_no_truncate') THEN
        CREATE TRIGGER governance_ledger_no_truncate BEFORE TRUNCATE ON governance_ledger
            FOR EACH STATEMENT EXECUTE FUNCTION governance_ledger_append_only();
    END IF;
END
$ledger$
"""


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
    scheme: str = PLAIN


def entry_hash(seq: int, recorded_at: str, kind: str, subject: str, actor: str, payload_json: str, prev_hash: str, key: bytes | None = None) -> str:
    """HMAC-SHA256 under `key` of the canonical entry (which includes the previous hash); plain SHA-256 without one."""
    canonical = json.dumps([seq, recorded_at, kind, subject, actor, payload_json, prev_hash], separators=(",", ":")).encode()
    return hmac.new(key, canonical, hashlib.sha256).hexdigest() if key else hashlib.sha256(canonical).hexdigest()


def key_scheme(key: bytes) -> str:
    """The scheme a key's entries are recorded under: names the key (12 hex of its SHA-256) without revealing it."""
    return f"hmac-sha256:{hashlib.sha256(key).hexdigest()[:12]}"


def _payload_json(payload: dict) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


def _key_bytes(key: str | bytes | None) -> bytes | None:
    if key is None:
        return None
    key = key.encode() if isinstance(key, str) else key
    if len(key) < MIN_KEY_BYTES:
        # The key id and every entry hash are in the database: a short key can be guessed from them offline.
        raise LedgerError(f"the ledger key must be at least {MIN_KEY_BYTES} bytes (e.g. secrets.token_hex(32))")
    return key


class LedgerError(RuntimeError):
    pass


@dataclass(frozen=True)
class Verification:
    ok: bool
    entries: int
    head: str
    problem: str = ""
    authenticated: bool = False  # the chain up to its head is keyed with this ledger's key, not only hashed


class Ledger:
    """Append and verify; the engine is created by the caller (a URL from configuration).

    `key` authenticates entries (None: plain SHA-256, as before keys). `legacy_entries` is how many
    entries were recorded before the key was introduced and may be plain: a number kept outside the
    database like the head, since an insider rewriting the whole ledger in plain SHA-256 would
    otherwise pass as a ledger that never had a key."""

    def __init__(self, engine: sa.Engine, key: str | bytes | None = None, legacy_entries: int = 0):
        self.engine = engine
        self._key = _key_bytes(key)
        self.scheme = key_scheme(self._key) if self._key else PLAIN
        self.legacy_entries = legacy_entries
        _install(engine)

    @classmethod
    def from_url(cls, url: str, key: str | bytes | None = None, legacy_entries: int = 0) -> "Ledger":
        if not url.startswith("sqlite"):
            return cls(sa.create_engine(url), key, legacy_entries)
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _no_implicit_begin(dbapi_connection, _record):
            dbapi_connection.isolation_level = None  # SQLAlchemy's recipe: we issue BEGIN ourselves

        @sa.event.listens_for(engine, "begin")
        def _write_lock_at_begin(connection):
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # appends from several processes serialise

        return cls(engine, key, legacy_entries)

    def append(self, kind: str, subject: str, actor: str, payload: dict, attempts: int = 5) -> Entry:
        for _ in range(attempts):
            try:
                with self.exclusive() as record:  # a row lock on the last entry alone let racing PostgreSQL writers take the same seq
                    return record(kind, subject, actor, payload)
            except sa.exc.IntegrityError:
                continue  # another writer took this seq: read the new head and chain onto it
        raise LedgerError(f"could not append a {kind} entry after {attempts} attempts")

    @contextlib.contextmanager
    def exclusive(self):
        """A transaction holding the ledger's write lock: decisions made inside it (read the
        champion, move aliases, record) are serialised across processes, and so are appends.
        Yields an appender; if the block raises, nothing it appended is kept."""
        with self.locked() as (_, record):
            yield record

    @contextlib.contextmanager
    def locked(self):
        """`exclusive`, with its connection too: rows of other tables in the ledger's database (the
        review tables) written on it commit, or roll back, with the entries appended."""
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # An advisory lock, not LOCK TABLE: that needs UPDATE (or MAINTAIN) on the table, and the
                # pipeline's role may only SELECT and INSERT. Every append of this module takes it; a raw
                # INSERT that skips it still has to give the next seq and a hash the key authenticates.
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('governance_ledger.append'))")
            # SQLite: the engine began this transaction with BEGIN IMMEDIATE, the database write lock.
            yield connection, lambda kind, subject, actor, payload: self._append(connection, kind, subject, actor, payload)

    def _append(self, connection, kind: str, subject: str, actor: str, payload: dict) -> Entry:
        if kind not in KINDS:
            raise LedgerError(f"unknown ledger entry kind {kind!r}; kinds are {KINDS}")
        body = _payload_json(payload)
        last = connection.execute(sa.select(entries.c.seq, entries.c.entry_hash, entries.c.scheme).order_by(entries.c.seq.desc()).limit(1)).first()
        if last and last.scheme not in (PLAIN, self.scheme):
            # Entries are permanent now: one this ledger's verification would reject must not be written.
            how = f"with {self.scheme}" if self._key else "without a key"
            raise LedgerError(f"the ledger's head (entry {last.seq}) is hashed with {last.scheme}: appending {how} would break its authentication")
        seq, prev = (last.seq + 1, last.entry_hash) if last else (1, GENESIS)
        recorded_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")
        digest = entry_hash(seq, recorded_at, kind, subject, actor, body, prev, self._key)
        connection.execute(
            entries.insert().values(
                seq=seq, recorded_at=recorded_at, kind=kind, subject=subject, actor=actor, payload=body, prev_hash=prev, entry_hash=digest, scheme=self.scheme
            )
        )
        return Entry(seq, recorded_at, kind, subject, actor, json.loads(body), prev, digest, self.scheme)

    def entries(self, kind: str | None = None, subject: str | None = None) -> list[Entry]:
        query = sa.select(entries).order_by(entries.c.seq)
        if kind:
            query = query.where(entries.c.kind == kind)
        if subject:
            query = query.where(entries.c.subject == subject)
        with self.engine.connect() as connection:
            return [
                Entry(r.seq, r.recorded_at, r.kind, r.subject, r.actor, json.loads(r.payload), r.prev_hash, r.entry_hash, r.scheme)
                for r in connection.execute(query)
            ]

    def head(self) -> tuple[int, str]:
        """(entries, head hash), one indexed row: the value to keep outside the database and pass back as `verify(expected_head=...)`."""
        with self.engine.connect() as connection:
            last = connection.execute(sa.select(entries.c.seq, entries.c.entry_hash).order_by(entries.c.seq.desc()).limit(1)).first()
        return (last.seq, last.entry_hash) if last else (0, GENESIS)

    def verify(self, expected_head: tuple[int, str] | None = None) -> Verification:
        """Walk the chain in stored order; the first broken link is named by its seq and kind. With
        `expected_head` (a head kept outside the database), a shorter or rewritten chain is named too."""
        with self.engine.connect() as connection:
            rows = list(connection.execute(sa.select(entries).order_by(entries.c.seq)))
        prev, keyed_from = GENESIS, None
        for expected_seq, row in enumerate(rows, start=1):
            where = f"entry {row.seq} ({row.kind} {row.subject})"
            if row.seq != expected_seq:
                return Verification(False, len(rows), prev, f"{where}: expected entry {expected_seq} here; entries {expected_seq}..{row.seq - 1} are missing")
            if row.prev_hash != prev:
                return Verification(False, len(rows), prev, f"{where}: does not chain onto entry {row.seq - 1} (reordered, or the one before was replaced)")
            refused = self._scheme_problem(row, keyed_from)
            if refused:
                return Verification(False, len(rows), prev, f"{where}: {refused}")
            keyed = row.scheme != PLAIN
            recomputed = entry_hash(row.seq, row.recorded_at, row.kind, row.subject, row.actor, row.payload, row.prev_hash, self._key if keyed else None)
            if not hmac.compare_digest(recomputed, row.entry_hash):
                return Verification(
                    False, len(rows), prev, f"{where}: its content was edited after it was recorded{' (or it was written without the key)' if keyed else ''}"
                )
            if keyed and keyed_from is None:
                keyed_from = row.seq
            prev = row.entry_hash
        if expected_head is not None:
            count, head = expected_head
            if len(rows) < count:
                return Verification(
                    False,
                    len(rows),
                    prev,
                    f"the ledger has {len(rows)} entries but {count} were published (head {head[:12]}): entries {len(rows) + 1}..{count} were deleted",
                )
            if count and rows[count - 1].entry_hash != head:
                row = rows[count - 1]
                return Verification(
                    False,
                    len(rows),
                    prev,
                    f"entry {count} ({row.kind} {row.subject}) has hash {row.entry_hash[:12]}, not the published head {head[:12]}: the history up to it was rewritten",
                )
        # Each keyed hash covers the one before, so a keyed head authenticates the plain entries under it.
        authenticated = self._key is not None and (not rows or rows[-1].scheme == self.scheme)
        return Verification(True, len(rows), prev, authenticated=authenticated)

    def _scheme_problem(self, row, keyed_from: int | None) -> str:
        """Why this ledger cannot accept the scheme `row` was hashed with ('' when it can)."""
        if row.scheme == PLAIN:
            if self._key is None:
                return ""
            if keyed_from is not None:
                return f"hashed with plain sha256 after keyed entries began at entry {keyed_from}: written without the ledger key"
            if row.seq > self.legacy_entries:
                before = f"only entries 1..{self.legacy_entries} predate the ledger key" if self.legacy_entries else "the ledger is keyed from its first entry"
                return f"hashed with plain sha256, but {before}: written without the key"
            return ""
        if self._key is None:
            return f"hashed with {row.scheme}: verifying it needs that key"
        if row.scheme != self.scheme:
            return f"hashed with {row.scheme}, not this ledger's key ({self.scheme})"
        return ""


def _install(engine: sa.Engine) -> None:
    """Create the table, bring one from before keys up to date, and make the database refuse edits."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Pipeline processes open the ledger at once: one checks and creates at a time.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('governance_ledger'))")
        metadata.create_all(connection)
        if "scheme" not in {column["name"] for column in sa.inspect(connection).get_columns(entries.name)}:
            connection.exec_driver_sql(ADD_SCHEME_COLUMN)
        if connection.dialect.name == "sqlite":
            for statement in SQLITE_APPEND_ONLY:
                connection.exec_driver_sql(statement)
        elif connection.dialect.name == "postgresql":
            postgresql_append_only(connection)


def postgresql_append_only(connection: sa.Connection) -> None:
    """PostgreSQL: a trigger function refusing UPDATE, DELETE and TRUNCATE of ledger rows, and its triggers.
    Idempotent and creates only what is missing, so a pipeline role that does not own the table (and
    so cannot drop the triggers) opens a ledger its owner installed."""
    connection.exec_driver_sql(POSTGRESQL_APPEND_ONLY)
