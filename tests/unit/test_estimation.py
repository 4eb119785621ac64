"""Performance estimated from calibrated PDs (CBPE) against labels drawn from those PDs, and where it breaks."""

import numpy as np
import pytest

from riskcore.estimation import early_warning, estimated_performance
from riskcore.metrics import roc_auc
from riskcore.monitoring_policy import load_monitoring_policy
from riskcore.performance import estimate_backtest, realised_performance

POLICY = load_monitoring_policy()
DRAWS = 2000


def _pds(n: int, seed: int = 0) -> np.ndarray:
    """PDs shaped like a retail book's: mean about 9%, a long right tail."""
    return 1 / (1 + np.exp(-np.random.default_rng(seed).normal(-2.6, 1.0, n)))


def _realised(p: np.ndarray, truth: np.ndarray | None = None, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Realised AUC of score p and default rate over DRAWS label sets drawn from `truth` (p itself when calibrated)."""
    rng, truth = np.random.default_rng(seed), p if truth is None else truth
    labels = [(rng.random(len(p)) < truth).astype(int) for _ in range(DRAWS)]
    return np.array([roc_auc(y, p) for y in labels]), np.array([y.mean() for y in labels])


def _nannyml_estimate_roc_auc(calibrated: np.ndarray, scores: np.ndarray) -> float:
    """NannyML 0.13.1's CBPE ROC AUC (nannyml/performance_estimation/confidence_based/metrics.py,
    `estimate_roc_auc`): the ROC curve of the expected confusion matrix, integrated by trapezoids."""
    order = np.argsort(scores)[::-1]
    tps = np.r_[0, np.cumsum(calibrated[order])]
    fps = np.r_[0, 1 + np.arange(len(order)) - tps[1:]]
    return float(np.trapezoid(tps / tps[-1], fps / fps[-1]))


def test_the_estimate_is_the_realised_auc_and_default_rate_expected_when_calibration_holds():
    p = _pds(2000)
    estimate = estimated_performance(p, POLICY.confidence)
    aucs, rates = _realised(p)
    assert estimate["estimated_auc"] == pytest.approx(aucs.mean(), abs=4 * aucs.std() / np.sqrt(DRAWS) + 1e-3)
    assert estimate["estimated_default_rate"] == pytest.approx(p.mean()) == pytest.approx(rates.mean(), abs=4 * rates.std() / np.sqrt(DRAWS))
    assert estimate["scored_rows"] == 2000


def test_the_bounds_cover_the_realised_values_at_about_the_nominal_rate():
    p = _pds(2000, seed=3)
    aucs, rates = _realised(p, seed=4)
    for confidence in (0.8, 0.95):
        estimate = estimated_performance(p, confidence)
        for name, realised in (("auc", aucs), ("default_rate", rates)):
            covered = np.mean((estimate[f"estimated_{name}_low"] <= realised) & (realised <= estimate[f"estimated_{name}_high"]))
            assert covered == pytest.approx(confidence, abs=0.025), (name, confidence, covered)


def test_agrees_with_nannyml_cbpe_roc_auc():
    for n in (500, 20_000):
        p = _pds(n, seed=n)
        assert estimated_performance(p, 0.95)["estimated_auc"] == pytest.approx(_nannyml_estimate_roc_auc(p, p), abs=2 / n)


def test_ties_count_half_and_equal_pds_separate_nothing():
    p = np.repeat([0.05, 0.2], [1500, 500])
    aucs, _ = _realised(p)
    estimate = estimated_performance(p, 0.95)
    assert estimate["estimated_auc"] == pytest.approx(aucs.mean(), abs=4 * aucs.std() / np.sqrt(DRAWS) + 1e-3)
    # by hand: pairs (a default, a non-default) across the two groups, minus self-pairs, ties half
    d, nd = p.sum(), (1 - p).sum()
    across = 500 * 0.2 * 1500 * 0.95
    within = 0.5 * (1500 * 0.05 * 1499 * 0.95 + 500 * 0.2 * 499 * 0.8)
    assert estimate["estimated_auc"] == pytest.approx((across + within) / (d * nd - np.sum(p * (1 - p))))
    flat = estimated_performance(np.full(1000, 0.1), 0.95)
    assert flat["estimated_auc"] == pytest.approx(0.5) and flat["estimated_default_rate"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="at least 2 scored rows"):
        estimated_performance(np.array([0.1]), 0.95)


def test_the_estimate_is_biased_once_calibration_breaks():
    """NannyML's documented limit: CBPE holds under covariate shift, not under concept drift."""
    p = _pds(2000, seed=5)
    estimate = estimated_performance(p, 0.95)
    logit = np.log(p / (1 - p))
    # a turn of the credit cycle: every applicant riskier than the features show (the macro term of economic_shock)
    _, rates = _realised(p, truth=1 / (1 + np.exp(-(logit + 0.45))))
    assert np.mean(rates > estimate["estimated_default_rate_high"]) > 0.99
    # a relation that weakened (the score's spread overstates the risk's): fewer defaults are where the PD says
    aucs, _ = _realised(p, truth=1 / (1 + np.exp(-(0.4 * (logit + 2.6) - 2.6))))
    assert np.mean(aucs < estimate["estimated_auc_low"]) > 0.99


def test_early_warning_against_the_champions_out_of_time_estimate_and_the_floor():
    estimate = {"estimated_auc": 0.74, "estimated_default_rate": 0.10}
    assert early_warning(estimate, 0.75, 0.09, POLICY) is None
    assert early_warning(estimate, None, None, POLICY) is None  # a version trained before the estimate was recorded: the floor alone
    assert "below the champion's out-of-time estimate 0.7900" in early_warning(estimate, 0.79, 0.09, POLICY)
    assert "1.43 times the champion's out-of-time mean PD 7.00%" in early_warning(estimate, 0.75, 0.07, POLICY)
    assert "below the floor 0.65" in early_warning({**estimate, "estimated_auc": 0.6}, None, None, POLICY)


def test_backtest_reports_the_error_and_whether_the_bounds_held():
    p = _pds(2000, seed=6)
    y = (np.random.default_rng(7).random(2000) < p).astype(int)
    estimate = {**estimated_performance(p, 0.95), "model_version": "1"}
    realised = realised_performance(y, p)
    backtest = estimate_backtest(estimate, realised)
    assert backtest["auc_estimate_error"] == pytest.approx(realised["auc"] - estimate["estimated_auc"])
    assert backtest["default_rate_estimate_error"] == pytest.approx(realised["default_rate"] - estimate["estimated_default_rate"])
    assert backtest["auc_within_estimate_bounds"] and backtest["default_rate_within_estimate_bounds"]
    shifted = estimate_backtest(estimate, {**realised, "default_rate": estimate["estimated_default_rate_high"] + 0.01})
    assert not shifted["default_rate_within_estimate_bounds"]


@pytest.mark.parametrize(
    ("line", "bad", "message"),
    [
        ("  confidence: 0.95", "  confidence: 1.5", "estimation.confidence must be between 0 and 1"),
        ("  auc_warning_drop: 0.03", "  auc_warning_drop: a lot", "estimation.auc_warning_drop must be a number, not 'a lot'"),
        ("  default_rate_warning_ratio: 1.2", "  default_rate_warning_ratio: 0.9", "estimation.default_rate_warning_ratio must be above 1"),
    ],
)
def test_a_bad_estimation_policy_is_refused_naming_the_key(tmp_path, line, bad, message):
    from pathlib import Path

    text = (Path(load_monitoring_policy.__code__.co_filename).parent / "policies" / "monitoring.yaml").read_text()
    assert line in text
    path = tmp_path / "monitoring.yaml"
    path.write_text(text.replace(line, bad))
    with pytest.raises(ValueError, match=message):
        load_monitoring_policy(path)
