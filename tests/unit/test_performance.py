import numpy as np
import pytest

from riskcore.metrics import roc_auc
from riskcore.monitoring_policy import load_monitoring_policy
from riskcore.performance import realised_performance, rollback_decision

POLICY = load_monitoring_policy()


def test_realised_performance_reads_the_labels():
    rng = np.random.default_rng(0)
    pd_ = rng.uniform(0.01, 0.4, 20_000)
    y = (rng.random(20_000) < pd_).astype(int)
    measured = realised_performance(y, pd_)
    assert measured["auc"] == pytest.approx(roc_auc(y, pd_)) and measured["gini"] == pytest.approx(2 * measured["auc"] - 1)
    assert measured["default_rate"] == pytest.approx(y.mean()) and measured["mean_pd"] == pytest.approx(pd_.mean())
    assert 0 < measured["brier"] < 0.25 and measured["rows"] == 20_000
    # a calibrated score's level matches the realised rate; a constant score separates nothing
    assert abs(measured["mean_pd"] - measured["default_rate"]) < 0.01
    assert realised_performance(y, np.full(len(y), 0.2))["auc"] == 0.5


def _month(auc, compared=None, rows=1000):
    return {"rows": rows, "auc": auc, "compared_auc": compared}


def test_no_judgement_before_enough_months_matured():
    roll_back, why = rollback_decision({}, POLICY)
    assert not roll_back and "0 matured month" in why


def test_rolls_back_when_trailing_the_replaced_version_on_the_same_rows():
    roll_back, why = rollback_decision({"2024-01": _month(0.70, 0.76), "2024-02": _month(0.71, 0.75)}, POLICY)
    assert roll_back and "trails the replaced version's" in why and "2024-01..2024-02" in why
    roll_back, why = rollback_decision({"2024-01": _month(0.745, 0.76)}, POLICY)
    assert not roll_back and "within tolerance" in why


def test_rolls_back_below_the_floor_even_with_nothing_to_compare():
    roll_back, why = rollback_decision({"2024-01": _month(0.55)}, POLICY)
    assert roll_back and "below the floor" in why
    assert not rollback_decision({"2024-01": _month(0.72)}, POLICY)[0]


def test_months_are_pooled_by_rows():
    # one tiny bad month does not outweigh a large good one
    months = {"2024-01": _month(0.60, 0.76, rows=50), "2024-02": _month(0.76, 0.76, rows=5000)}
    assert not rollback_decision(months, POLICY)[0]
