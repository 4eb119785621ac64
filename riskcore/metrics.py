"""Discrimination and calibration measures a credit-risk reviewer expects."""

from __future__ import annotations

import numpy as np
import pandas as pd


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Mann-Whitney AUC with ties counted half; O(n log n)."""
    y = np.asarray(y, dtype="int64")
    ranks = pd.Series(np.asarray(score, dtype="float64")).rank(method="average").to_numpy()
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs both defaults and non-defaults")
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def ks_statistic(y: np.ndarray, score: np.ndarray) -> float:
    """max(TPR - FPR) over all thresholds."""
    y = np.asarray(y, dtype="int64")
    order = np.argsort(-np.asarray(score, dtype="float64"), kind="mergesort")
    s, yy = np.asarray(score)[order], y[order]
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    tpr = np.cumsum(yy)[last_of_tie] / yy.sum()
    fpr = np.cumsum(1 - yy)[last_of_tie] / (len(yy) - yy.sum())
    return float(np.max(tpr - fpr))


def brier(y: np.ndarray, pd_: np.ndarray) -> float:
    return float(np.mean((np.asarray(pd_, dtype="float64") - np.asarray(y, dtype="float64")) ** 2))


def bayes_optimal_auc(true_pd: np.ndarray) -> float:
    """Expected AUC of the true PD used as the score, labels drawn from the true PD.

    P(score of a default > score of a non-default), each pair (i, j), i != j, weighted by
    p_i (1 - p_j); ties count half. No model can beat it in expectation on these rows.
    Sorting makes it O(n log n).
    """
    p = np.sort(np.asarray(true_pd, dtype="float64"))
    q = 1.0 - p
    # Pairs with strictly lower score, and ties, by groups of equal p.
    values, starts, counts = np.unique(p, return_index=True, return_counts=True)
    group_q = np.add.reduceat(q, starts)
    group_p = np.add.reduceat(p, starts)
    q_below = np.cumsum(group_q) - group_q
    numerator = np.sum(group_p * q_below)
    # Ties within a group (i != j): sum_i p_i * (group_q - q_i), counted half.
    within = group_p * group_q - np.add.reduceat(p * q, starts)
    numerator += 0.5 * np.sum(within)
    denominator = p.sum() * q.sum() - np.sum(p * q)
    return float(numerator / denominator)


def calibration_by_decile(y: np.ndarray, pd_: np.ndarray) -> pd.DataFrame:
    """Observed vs expected default rate by PD decile (decile 10 = riskiest)."""
    frame = pd.DataFrame({"y": np.asarray(y, dtype="float64"), "pd": np.asarray(pd_, dtype="float64")})
    frame["decile"] = pd.qcut(frame["pd"].rank(method="first"), 10, labels=range(1, 11)).astype("int64")
    table = frame.groupby("decile").agg(rows=("y", "size"), expected_rate=("pd", "mean"), observed_rate=("y", "mean"))
    return table.reset_index()
