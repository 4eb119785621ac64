"""Performance estimated before labels mature: confidence-based performance estimation (CBPE).

A default flag matures a performance window after the decision; until then the champion's own
calibrated PDs are the best account of the labels to come. Treating each label as an independent
Bernoulli(p_i) draw (their sum is Poisson-binomial):

- the expected default rate is mean(p);
- the expected AUC is the AUC of the scores with every pair (i, j) weighted by p_i (1 - p_j), ties
  half: riskcore.metrics.bayes_optimal_auc with the PDs as the truth. This is NannyML's CBPE ROC AUC
  (its `estimate_roc_auc` integrates the ROC curve of the expected confusion matrix, which is the
  same sum up to the self-pairs it keeps, an O(1/n) difference);
- the bounds are where the realised value will fall with probability `confidence` if calibration
  holds: the realised AUC is (S - N(N+1)/2) / (N(n - N)) with S the sum of the defaults' mid-ranks
  and N the number of defaults, both sums of independent terms with known means, variances and
  covariance; its spread comes from the delta method (a normal approximation: exact sums, O(n),
  no random draws; tests check it against Monte Carlo label draws). NannyML's bands are +-3
  sampling errors scaled from the reference data: the same idea, read here from the month itself.

CBPE assumes calibration holds on the month: P(default | score) unchanged since training. It holds
under covariate shift (applicants change, the score moves with them) and fails under concept drift,
e.g. a turn of the credit cycle that raises every applicant's risk beyond what the features show:
then the estimate is biased (too few defaults expected), which is why every estimate is back-tested
against the realised performance once labels mature (assets.monitoring.model_performance).
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd

from riskcore.metrics import bayes_optimal_auc
from riskcore.monitoring_policy import MonitoringPolicy


def estimated_performance(pd_: np.ndarray, confidence: float) -> dict[str, float]:
    """Expected AUC and default rate of a month's rows from their calibrated PDs, with the bounds
    within which the realised values fall with probability `confidence` if calibration holds."""
    p = np.asarray(pd_, dtype="float64")
    n = len(p)
    if n < 2:
        raise ValueError(f"estimating performance needs at least 2 scored rows, not {n}")
    q = 1.0 - p
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    rate, rate_sd = float(p.mean()), float(np.sqrt(np.sum(p * q)) / n)
    auc, auc_sd = bayes_optimal_auc(p), _realised_auc_sd(p, q)
    return {
        "scored_rows": float(n),
        "estimated_auc": auc,
        "estimated_auc_low": max(0.0, auc - z * auc_sd),
        "estimated_auc_high": min(1.0, auc + z * auc_sd),
        "estimated_default_rate": rate,
        "estimated_default_rate_low": max(0.0, rate - z * rate_sd),
        "estimated_default_rate_high": min(1.0, rate + z * rate_sd),
    }


def _realised_auc_sd(p: np.ndarray, q: np.ndarray) -> float:
    """Standard deviation of the realised AUC when labels are Bernoulli(p): delta method on
    AUC = (S - N(N+1)/2) / (N(n - N)), S = sum of mid-ranks r over defaults, N = number of defaults."""
    n = len(p)
    r = pd.Series(p).rank(method="average").to_numpy()
    pq = p * q
    s, d = float(np.sum(r * p)), float(np.sum(p))  # means of S and N
    var_s, var_d, cov = float(np.sum(r * r * pq)), float(np.sum(pq)), float(np.sum(r * pq))
    if not 0 < d < n:
        return float("nan")
    u, v = s - d * (d + 1) / 2, d * (n - d)
    grad_s, grad_d = 1 / v, (-(2 * d + 1) / 2 * v - u * (n - 2 * d)) / v**2
    return float(np.sqrt(max(0.0, grad_s**2 * var_s + 2 * grad_s * grad_d * cov + grad_d**2 * var_d)))


def early_warning(estimate: dict, reference_auc: float | None, reference_default_rate: float | None, policy: MonitoringPolicy) -> str | None:
    """Why a month's estimate warns (None when it does not): its estimated AUC below the floor or
    `auc_warning_drop` under the champion's estimate on its out-of-time rows, or its estimated
    default rate `default_rate_warning_ratio` times the champion's out-of-time mean PD or more.
    A warning is an alert for people: an estimate rests on calibration, so it never acts alone."""
    auc, rate = estimate["estimated_auc"], estimate["estimated_default_rate"]
    reasons = []
    if auc < policy.auc_floor:
        reasons.append(f"estimated AUC {auc:.4f} is below the floor {policy.auc_floor}")
    if reference_auc is not None and reference_auc - auc > policy.auc_warning_drop:
        reasons.append(f"estimated AUC {auc:.4f} is more than {policy.auc_warning_drop} below the champion's out-of-time estimate {reference_auc:.4f}")
    if reference_default_rate is not None and rate >= policy.default_rate_warning_ratio * reference_default_rate:
        reasons.append(
            f"estimated default rate {rate:.2%} is {rate / reference_default_rate:.2f} times the champion's out-of-time mean PD {reference_default_rate:.2%}"
            f" (warning from {policy.default_rate_warning_ratio})"
        )
    return "; ".join(reasons) or None
