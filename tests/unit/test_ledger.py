import multiprocessing

import pytest
import sqlalchemy as sa

from riskcore.ledger import Ledger, LedgerError, entries


@pytest.fixture
def ledger(tmp_path):
    ledger = Ledger.from_url(f"sqlite:///{tmp_path}/ledger.db")
    ledger.append("candidate_registered", "retail_pd/1", "pipeline", {"run": "a"})
    ledger.append("gate_results", "retail_pd/1", "pipeline", {"auc": 0.77, "passed": True})
    ledger.append("approval", "retail_pd/1", "alice@example.com", {"reason": "gates pass"})
    ledger.append("promotion", "retail_pd/1", "pipeline", {"alias": "champion"})
    return ledger


def _sql(ledger, statement):
    with ledger.engine.begin() as connection:
        connection.execute(statement)


def test_a_clean_chain_verifies(ledger):
    result = ledger.verify()
    assert result.ok and result.entries == 4
    assert [e.kind for e in ledger.entries(subject="retail_pd/1")] == ["candidate_registered", "gate_results", "approval", "promotion"]
    assert ledger.verify(expected_head=(4, result.head)).ok


def test_an_edited_entry_is_named(ledger):
    _sql(ledger, entries.update().where(entries.c.seq == 2).values(payload='{"auc":0.99,"passed":true}'))
    result = ledger.verify()
    assert not result.ok and result.problem.startswith("entry 2 (gate_results retail_pd/1): its content was edited")


def test_a_deleted_entry_is_named(ledger):
    _sql(ledger, entries.delete().where(entries.c.seq == 3))
    result = ledger.verify()
    assert not result.ok and "entries 3..3 are missing" in result.problem


def test_reordered_entries_are_named(ledger):
    # Swap entries 2 and 3 (seq stays contiguous, content intact): the chain no longer links.
    _sql(ledger, entries.update().where(entries.c.seq == 2).values(seq=99))
    _sql(ledger, entries.update().where(entries.c.seq == 3).values(seq=2))
    _sql(ledger, entries.update().where(entries.c.seq == 99).values(seq=3))
    result = ledger.verify()
    assert not result.ok and result.problem.startswith("entry 2 (approval retail_pd/1): does not chain onto entry 1")


def test_a_deleted_tail_is_caught_against_the_published_head(ledger):
    published = ledger.verify()
    _sql(ledger, entries.delete().where(entries.c.seq == 4))
    assert ledger.verify().ok  # a shorter chain is still a chain...
    result = ledger.verify(expected_head=(published.entries, published.head))
    assert not result.ok and "entries 4..4 were deleted" in result.problem  # ...but not the published one


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
