"""Drift monitoring through the whole pipeline on data that never changes, and on one that does.

Real ingestion (contract, features), training (the reference profile logged with the model),
monthly drift reports, the retraining sensor ticked after each month as the daemon would, and its
decisions in the governance ledger: on the column shapes credit data has (a Pareto(1.1) tail, a
log-normal with sigma 1.5, zero inflation, a 999 sentinel, ties) and on German credit bootstrapped
into stationary months, nothing launches; a 0.3-sd shift in one column is flagged in its first
month and launches retraining once it persisted. The statistic-level tables over many seeds are
bench/drift_false_alarms.py's; `--pipeline` there runs these worlds over seeds.
"""

import dagster as dg
import pytest

from riskcore.months import months_between
from tests.dagster_instance import instance_for_test
from tests.integration.worlds import HEAVY_TAILS, World, german_credit_files, heavy_tail_files


@pytest.fixture
def world(tmp_path, mlflow_uri):
    with instance_for_test() as instance:
        yield lambda name, **kwargs: World(tmp_path, mlflow_uri, instance, name, **kwargs)


def _launches(decisions: dict) -> dict:
    return {m: d for m, d in decisions.items() if isinstance(d, dg.RunRequest)}


def _recorded_skips(world: World, months: list[str]) -> None:
    """The ledger holds the sensor's decision on every month: a skip, with the reason it gave."""
    decided = world.governance.ledger().entries(kind="retraining_decision")
    assert [e.payload["month"] for e in decided] == months
    assert {e.payload["decision"] for e in decided} == {"skip"} and all(e.payload["reason"] for e in decided)


def test_heavy_tailed_zero_inflated_and_sentinel_columns_launch_no_retraining_over_24_stationary_months(world):
    stable = world("heavy_tails", base=HEAVY_TAILS, deliver=heavy_tail_files(2000, seed=0))
    stable.train_baseline()
    months = months_between("2023-04", "2025-03")  # 24 months after the training window (2023-01..2023-03)
    decisions = stable.monitor(months)
    assert not _launches(decisions)
    # at a 0.1% false-alarm rate per column and month, 7 features x 24 months expect 0.17 flags
    flagged = {m: stable.drift(m)["drifted_features"] for m in months if stable.drift(m)["drifted_features"] != "none"}
    assert len(flagged) <= 1, flagged
    _recorded_skips(stable, months)
    # the shapes went through ingestion and features as they were drawn
    features = stable.store.read("application_features", "2025-03")
    assert 0.03 < (features["sentinel"] == 999).mean() < 0.07 and 0.6 < (features["zero_inflated"] == 0).mean() < 0.8
    assert features["pareto"].max() > 100 * features["pareto"].median()


def test_a_third_of_a_standard_deviation_shift_in_one_column_is_flagged_at_once_and_launches_once_it_persists(world):
    shift = "2023-07"
    shifted = world(
        "heavy_tails_shift",
        base=HEAVY_TAILS,
        deliver=heavy_tail_files(2000, seed=1, change=lambda month: {"changed": "normal", "shift": 0.3} if month >= shift else {}),
    )
    shifted.train_baseline()
    decisions = shifted.monitor(months_between("2023-05", "2023-08"))
    assert [shifted.drift(m)["drifted_features"] for m in months_between("2023-05", "2023-08")] == ["none", "none", "normal", "normal"]
    assert not _launches({m: d for m, d in decisions.items() if m <= shift}) and "did not persist" in decisions[shift].skip_message
    request = decisions["2023-08"]
    assert isinstance(request, dg.RunRequest) and request.run_key == "drift-retraining-2023-08"
    launch = shifted.governance.ledger().entries(kind="retraining_decision")[-1].payload
    assert launch["month"] == "2023-08" and launch["decision"] == "launch" and launch["reason"] == "drift persisted 2 months (2023-07, 2023-08)"


def test_german_credit_bootstrapped_into_stationary_months_launches_no_retraining(world, tmp_path):
    months = months_between("2023-01", "2024-02")  # 14 months of 300 applications drawn from the 1,000 (10 after the training window)
    german = world("german_stationary", base="german_credit.yaml", deliver=german_credit_files(str(tmp_path / "archives"), 300, seed=14, months=len(months)))
    german.train_baseline()
    decisions = german.monitor(months)
    assert not _launches(decisions)
    assert all(german.drift(m)["drift_share"] < 0.1 for m in months)
    _recorded_skips(german, months)
    assert len(german.store.read("applications", "2024-02")) == 300
