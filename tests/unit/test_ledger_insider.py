"""An insider with the pipeline's database connection (and, later, the table owner's rights) but not
the ledger key tries to rewrite the governance trail: either the database refuses, or `verify` with
the key (and with the head kept outside the database, for truncation) names the entry."""

import contextlib
import sqlite3

import pytest
import sqlalchemy as sa

from riskcore.ledger import GENESIS, Ledger, entry_hash

KEY = "insider-test-ledger-key-0123456789"


@pytest.fixture
def path(tmp_path):
    path = tmp_path / "ledger.db"
    ledger = Ledger.from_url(f"sqlite:///{path}", key=KEY)
    ledger.append("candidate_registered", "retail_pd/1", "pipeline", {"run": "a"})
    ledger.append("gate_results", "retail_pd/1", "pipeline", {"auc": 0.71, "passed": False})
    ledger.append("rejection", "retail_pd/1", "alice@example.com", {"reason": "AUC below the floor"})
    ledger.append("approval", "retail_pd/2", "alice@example.com", {"reason": "gates pass"})
    return path


@pytest.fixture
def published(path):
    """The head as the pipeline published it (an MLflow tag, a report), out of the insider's reach."""
    return Ledger.from_url(f"sqlite:///{path}", key=KEY).head()


def verify(path, expected_head=None, key=KEY):
    return Ledger.from_url(f"sqlite:///{path}", key=key).verify(expected_head=expected_head)


@contextlib.contextmanager
def insider(path):
    """A plain sqlite3 connection to the ledger file, autocommitting each statement."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        yield connection
    finally:
        connection.close()


def drop_triggers(connection):
    """What an owner can do: the database stops refusing, the key and the published head remain."""
    for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'governance_ledger'").fetchall():
        connection.execute(f"DROP TRIGGER {name}")


def rechain(connection, scheme="sha256"):
    """Recompute every hash with plain SHA-256, the way someone with the code but not the key would."""
    prev = GENESIS
    for seq, recorded_at, kind, subject, actor, payload in connection.execute(
        "SELECT seq, recorded_at, kind, subject, actor, payload FROM governance_ledger ORDER BY seq"
    ).fetchall():
        digest = entry_hash(seq, recorded_at, kind, subject, actor, payload, prev)
        connection.execute("UPDATE governance_ledger SET prev_hash = ?, entry_hash = ?, scheme = ? WHERE seq = ?", (prev, digest, scheme, seq))
        prev = digest


def test_a_keyed_ledger_verifies_and_is_authenticated(path, published):
    result = verify(path, expected_head=published)
    assert result.ok and result.authenticated and (result.entries, result.head) == published


def test_a_wrong_key_fails_at_the_first_entry(path):
    result = verify(path, key="not-the-ledger-key-at-all-0123456")
    assert not result.ok and not result.authenticated
    assert result.problem.startswith("entry 1 (candidate_registered retail_pd/1): hashed with hmac-sha256:") and "not this ledger's key" in result.problem


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE governance_ledger SET actor = 'mallory@example.com' WHERE seq = 3",
        "DELETE FROM governance_ledger WHERE seq = 4",
        "DELETE FROM governance_ledger",
        "UPDATE governance_ledger SET seq = CASE seq WHEN 2 THEN 3 WHEN 3 THEN 2 END WHERE seq IN (2, 3)",
        # REPLACE deletes the colliding row without firing delete triggers: the insert trigger stops it.
        "INSERT OR REPLACE INTO governance_ledger SELECT seq, recorded_at, kind, subject, 'mallory@example.com', payload, prev_hash, entry_hash, scheme"
        " FROM governance_ledger WHERE seq = 3",
        "INSERT INTO governance_ledger SELECT seq, recorded_at, kind, subject, actor, payload, prev_hash, entry_hash, scheme"
        " FROM governance_ledger WHERE seq = 3 ON CONFLICT (seq) DO UPDATE SET actor = 'mallory@example.com'",
    ],
    ids=["update-actor", "delete-last", "delete-all", "swap-seq", "insert-or-replace", "upsert"],
)
def test_the_database_refuses_edits(path, published, statement):
    with insider(path) as connection, pytest.raises(sqlite3.IntegrityError, match="governance_ledger is append-only"):
        connection.execute(statement)
    assert verify(path, expected_head=published).ok


def test_sqlalchemy_on_the_same_file_is_refused_too(path):
    engine = sa.create_engine(f"sqlite:///{path}")
    with pytest.raises(sa.exc.IntegrityError, match="append-only: UPDATE refused"), engine.begin() as connection:
        connection.exec_driver_sql("UPDATE governance_ledger SET payload = '{}' WHERE seq = 2")
    engine.dispose()


def test_a_forged_plain_entry_at_the_end_is_named(path):
    with insider(path) as connection:  # an append is what the database allows: the key is what is missing
        seq, prev = connection.execute("SELECT seq, entry_hash FROM governance_ledger ORDER BY seq DESC LIMIT 1").fetchone()
        row = (seq + 1, "2024-06-01T00:00:00.000000+00:00", "promotion", "retail_pd/1", "alice@example.com", '{"alias":"champion"}', prev)
        connection.execute("INSERT INTO governance_ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'sha256')", (*row, entry_hash(*row)))
    result = verify(path)
    assert not result.ok
    assert result.problem == "entry 5 (promotion retail_pd/1): hashed with plain sha256 after keyed entries began at entry 1: written without the ledger key"


def test_a_forged_entry_claiming_the_key_is_named(path):
    with insider(path) as connection:
        seq, prev, scheme = connection.execute("SELECT seq, entry_hash, scheme FROM governance_ledger ORDER BY seq DESC LIMIT 1").fetchone()
        row = (seq + 1, "2024-06-01T00:00:00.000000+00:00", "promotion", "retail_pd/1", "alice@example.com", '{"alias":"champion"}', prev)
        connection.execute("INSERT INTO governance_ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (*row, entry_hash(*row), scheme))
    result = verify(path)
    assert not result.ok and result.problem.startswith(
        "entry 5 (promotion retail_pd/1): its content was edited after it was recorded (or it was written without"
    )


def test_an_owner_editing_and_rechaining_with_sha256_is_named(path, published):
    with insider(path) as connection:
        drop_triggers(connection)
        connection.execute("UPDATE governance_ledger SET actor = 'mallory@example.com' WHERE seq = 3")
        rechain(connection)
    result = verify(path)
    assert not result.ok and result.problem.startswith("entry 1 (candidate_registered retail_pd/1): hashed with plain sha256, but the ledger is keyed")
    assert not verify(path, expected_head=published).ok


def test_an_owner_rechaining_under_the_keys_label_is_named(path):
    with insider(path) as connection:
        drop_triggers(connection)
        scheme = connection.execute("SELECT scheme FROM governance_ledger WHERE seq = 1").fetchone()[0]
        connection.execute("UPDATE governance_ledger SET actor = 'mallory@example.com' WHERE seq = 3")
        rechain(connection, scheme=scheme)
    result = verify(path)
    assert not result.ok and result.problem.startswith("entry 1 (candidate_registered retail_pd/1): its content was edited")


def test_an_owner_editing_one_entry_is_named(path):
    with insider(path) as connection:
        drop_triggers(connection)
        connection.execute("""UPDATE governance_ledger SET payload = '{"auc":0.81,"passed":true}' WHERE seq = 2""")
    result = verify(path)
    assert not result.ok and result.problem.startswith("entry 2 (gate_results retail_pd/1): its content was edited")


def test_an_owner_swapping_entries_is_named(path):
    with insider(path) as connection:
        drop_triggers(connection)
        for old, new in ((2, 99), (3, 2), (99, 3)):
            connection.execute("UPDATE governance_ledger SET seq = ? WHERE seq = ?", (new, old))
    result = verify(path)
    assert not result.ok and result.problem.startswith("entry 2 (rejection retail_pd/1): does not chain onto entry 1")


def test_an_owner_deleting_the_last_entry_is_caught_against_the_published_head(path, published):
    with insider(path) as connection:
        drop_triggers(connection)
        connection.execute("DELETE FROM governance_ledger WHERE seq = 4")
    assert verify(path).ok  # a shorter keyed chain is still a chain...
    result = verify(path, expected_head=published)
    assert not result.ok and result.problem.endswith("entries 4..4 were deleted")  # ...but not the published one


def test_an_owner_deleting_everything_is_caught_against_the_published_head(path, published):
    with insider(path) as connection:
        drop_triggers(connection)
        connection.execute("DELETE FROM governance_ledger")
    result = verify(path, expected_head=published)
    assert not result.ok and result.problem.startswith("the ledger has 0 entries but 4 were published") and "entries 1..4 were deleted" in result.problem


def test_an_owner_dropping_the_table_is_caught_against_the_published_head(path, published):
    with insider(path) as connection:
        connection.execute("DROP TABLE governance_ledger")
    result = verify(path, expected_head=published)  # opening the ledger creates an empty one
    assert not result.ok and "entries 1..4 were deleted" in result.problem


def test_a_replaced_tail_is_caught_against_the_published_head(path, published):
    with insider(path) as connection:  # delete the last entry, then have the pipeline record something else in its place
        drop_triggers(connection)
        connection.execute("DELETE FROM governance_ledger WHERE seq = 4")
    Ledger.from_url(f"sqlite:///{path}", key=KEY).append("rejection", "retail_pd/2", "alice@example.com", {"reason": "changed my mind"})
    assert verify(path).ok
    result = verify(path, expected_head=published)
    assert (
        not result.ok
        and result.problem.startswith("entry 4 (rejection retail_pd/2) has hash")
        and f"not the published head {published[1][:12]}" in result.problem
    )


def test_reopening_the_ledger_restores_dropped_triggers(path):
    with insider(path) as connection:
        drop_triggers(connection)
    Ledger.from_url(f"sqlite:///{path}", key=KEY)
    with insider(path) as connection, pytest.raises(sqlite3.IntegrityError, match="append-only"):
        connection.execute("DELETE FROM governance_ledger WHERE seq = 4")


def test_an_owner_cutting_back_to_the_entries_before_the_key_is_not_authenticated(tmp_path):
    url = f"sqlite:///{tmp_path}/ledger.db"
    Ledger.from_url(url).append("candidate_registered", "retail_pd/1", "pipeline", {"run": "a"})  # before keys
    keyed = Ledger.from_url(url, key=KEY, legacy_entries=1)
    keyed.append("approval", "retail_pd/1", "alice@example.com", {"reason": "gates pass"})
    published = keyed.head()
    assert keyed.verify().authenticated
    with insider(tmp_path / "ledger.db") as connection:
        drop_triggers(connection)
        connection.execute("DELETE FROM governance_ledger WHERE seq = 2")
    result = keyed.verify()
    assert result.ok and not result.authenticated  # a caller insisting on authentication notices...
    result = keyed.verify(expected_head=published)
    assert not result.ok and result.problem.endswith("entries 2..2 were deleted")  # ...and the published head names it
