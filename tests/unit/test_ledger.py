import multiprocessing
import sqlite3

import pytest
import sqlalchemy as sa

from riskcore.ledger import GENESIS, Ledger, LedgerError, entries, entry_hash

KEY = "test-ledger-key-0123456789abcdef"


@pytest.fixture
def ledger(tmp_path):
    ledger = Ledger.from_url(f"sqlite:///{tmp_path}/ledger.db")
    ledger.append("candidate_registered", "retail_pd/1", "pipeline", {"run": "a"})
    ledger.append("gate_results", "retail_pd/1", "pipeline", {"auc": 0.77, "passed": True})
    ledger.append("approval", "retail_pd/1", "alice@example.com", {"reason": "gates pass"})
    ledger.append("promotion", "retail_pd/1", "pipeline", {"alias": "champion"})
    return ledger


def _as_owner(ledger, statement):
    """Edit rows as the table's owner would: drop the append-only triggers first (the database refuses otherwise)."""
    with ledger.engine.begin() as connection:
        for (name,) in connection.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'governance_ledger'").all():
            connection.exec_driver_sql(f"DROP TRIGGER {name}")
        connection.execute(statement)


def test_a_clean_chain_verifies(ledger):
    result = ledger.verify()
    assert result.ok and result.entries == 4
    assert [e.kind for e in ledger.entries(subject="retail_pd/1")] == ["candidate_registered", "gate_results", "approval", "promotion"]
    assert ledger.verify(expected_head=(4, result.head)).ok


def test_an_edited_entry_is_named(ledger):
    _as_owner(ledger, entries.update().where(entries.c.seq == 2).values(payload='{"auc":0.99,"passed":true}'))
    result = ledger.verify()
    assert not result.ok and result.problem.startswith("entry 2 (gate_results retail_pd/1): its content was edited")


def test_a_deleted_entry_is_named(ledger):
    _as_owner(ledger, entries.delete().where(entries.c.seq == 3))
    result = ledger.verify()
    assert not result.ok and "entries 3..3 are missing" in result.problem


def test_reordered_entries_are_named(ledger):
    # Swap entries 2 and 3 (seq stays contiguous, content intact): the chain no longer links.
    _as_owner(ledger, entries.update().where(entries.c.seq == 2).values(seq=99))
    _as_owner(ledger, entries.update().where(entries.c.seq == 3).values(seq=2))
    _as_owner(ledger, entries.update().where(entries.c.seq == 99).values(seq=3))
    result = ledger.verify()
    assert not result.ok and result.problem.startswith("entry 2 (approval retail_pd/1): does not chain onto entry 1")


def test_a_deleted_tail_is_caught_against_the_published_head(ledger):
    published = ledger.verify()
    _as_owner(ledger, entries.delete().where(entries.c.seq == 4))
    assert ledger.verify().ok  # a shorter chain is still a chain...
    result = ledger.verify(expected_head=(published.entries, published.head))
    assert not result.ok and "entries 4..4 were deleted" in result.problem  # ...but not the published one


def test_rows_cannot_be_edited_or_deleted(ledger):
    with pytest.raises(sa.exc.IntegrityError, match="append-only: UPDATE refused"):
        with ledger.engine.begin() as connection:
            connection.execute(entries.update().where(entries.c.seq == 2).values(actor="mallory"))
    with pytest.raises(sa.exc.IntegrityError, match="append-only: DELETE refused"):
        with ledger.engine.begin() as connection:
            connection.execute(entries.delete().where(entries.c.seq == 4))
    assert ledger.verify().ok and ledger.head() == (4, ledger.verify().head)


def test_head_is_the_last_entry(tmp_path):
    ledger = Ledger.from_url(f"sqlite:///{tmp_path}/ledger.db", key=KEY)
    assert ledger.head() == (0, GENESIS)
    last = ledger.append("approval", "retail_pd/1", "alice@example.com", {})
    assert ledger.head() == (1, last.entry_hash) and ledger.verify(expected_head=ledger.head()).ok


def test_without_a_key_the_chain_is_not_authenticated(ledger):
    result = ledger.verify()
    assert result.ok and not result.authenticated
    assert {e.scheme for e in ledger.entries()} == {"sha256"}


def test_a_keyed_ledger_needs_its_key(tmp_path):
    url = f"sqlite:///{tmp_path}/ledger.db"
    keyed = Ledger.from_url(url, key=KEY)
    entry = keyed.append("approval", "retail_pd/1", "alice@example.com", {"reason": "gates pass"})
    assert entry.scheme.startswith("hmac-sha256:") and KEY not in entry.scheme and len(entry.scheme) == len("hmac-sha256:") + 12
    result = keyed.verify()
    assert result.ok and result.authenticated
    unkeyed = Ledger.from_url(url)
    result = unkeyed.verify()
    assert (
        not result.ok
        and not result.authenticated
        and result.problem == f"entry 1 (approval retail_pd/1): hashed with {entry.scheme}: verifying it needs that key"
    )
    with pytest.raises(LedgerError, match="appending without a key would break its authentication"):
        unkeyed.append("approval", "retail_pd/1", "bob@example.com", {})
    with pytest.raises(LedgerError, match="appending with hmac-sha256:[0-9a-f]{12} would break"):
        Ledger.from_url(url, key="another-key-of-enough-length").append("approval", "retail_pd/1", "bob@example.com", {})
    assert keyed.verify().ok and keyed.head()[0] == 1  # nothing was written by the refused appends


def test_a_short_key_is_refused(tmp_path):
    with pytest.raises(LedgerError, match="at least 16 bytes"):
        Ledger.from_url(f"sqlite:///{tmp_path}/ledger.db", key="secret")


OLD_SCHEMA = """CREATE TABLE governance_ledger (
    seq INTEGER NOT NULL, recorded_at VARCHAR(32) NOT NULL, kind VARCHAR(40) NOT NULL, subject VARCHAR(200) NOT NULL,
    actor VARCHAR(200) NOT NULL, payload TEXT NOT NULL, prev_hash VARCHAR(64) NOT NULL, entry_hash VARCHAR(64) NOT NULL,
    PRIMARY KEY (seq), UNIQUE (entry_hash))"""


def test_a_ledger_from_before_keys_opens_and_takes_a_key(tmp_path):
    path = tmp_path / "ledger.db"
    with sqlite3.connect(path) as connection:  # as the ledger wrote it before keys: no scheme column, no triggers
        connection.execute(OLD_SCHEMA)
        prev = GENESIS
        for seq, kind in enumerate(("candidate_registered", "approval"), start=1):
            row = (seq, f"2024-01-0{seq}T00:00:00.000000+00:00", kind, "retail_pd/1", "pipeline", "{}", prev)
            prev = entry_hash(*row)
            connection.execute("INSERT INTO governance_ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (*row, prev))
    connection.close()
    url = f"sqlite:///{path}"
    result = Ledger.from_url(url).verify()
    assert result.ok and result.entries == 2 and not result.authenticated
    with pytest.raises(sqlite3.IntegrityError, match="append-only"), sqlite3.connect(path) as connection:
        connection.execute("DELETE FROM governance_ledger")  # the triggers were added to the old table
    keyed = Ledger.from_url(url, key=KEY, legacy_entries=2)
    keyed.append("promotion", "retail_pd/1", "pipeline", {"alias": "champion"})
    result = keyed.verify()
    assert result.ok and result.authenticated and [e.scheme for e in keyed.entries()] == ["sha256", "sha256", keyed.scheme]
    result = Ledger.from_url(url, key=KEY).verify()  # not told that entries 1..2 predate the key
    assert not result.ok and result.problem.startswith("entry 1 (candidate_registered retail_pd/1): hashed with plain sha256, but the ledger is keyed")


def test_unknown_kinds_are_refused(ledger):
    with pytest.raises(LedgerError, match="unknown ledger entry kind 'promotoin'"):
        ledger.append("promotoin", "x", "y", {})


def _append_many(url: str, worker: int, n: int) -> None:
    ledger = Ledger.from_url(url)
    for i in range(n):
        ledger.append("override", f"case/{worker}/{i}", f"worker-{worker}", {"i": i})


def test_concurrent_writers_keep_one_chain(tmp_path):
    url = f"sqlite:///{tmp_path}/ledger.db"
    Ledger.from_url(url)
    workers = [multiprocessing.get_context("spawn").Process(target=_append_many, args=(url, w, 25)) for w in range(3)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(120)
        assert p.exitcode == 0
    result = Ledger.from_url(url).verify()
    assert result.ok and result.entries == 75
    with sa.create_engine(url).connect() as connection:
        assert connection.execute(sa.select(sa.func.count(sa.distinct(entries.c.subject)))).scalar() == 75
