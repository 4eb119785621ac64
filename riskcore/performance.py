"""Realised performance once labels mature, and when it calls for a rollback."""

from __future__ import annotations

import numpy as np

from riskcore.metrics import brier, ks_statistic, roc_auc
from riskcore.monitoring_policy import MonitoringPolicy


def realised_performance(y: np.ndarray, pd_: np.ndarray) -> dict[str, float]:
    """What a validator reads first on matured labels: discrimination, separation, accuracy, level."""
    y, pd_ = np.asarray(y, dtype="int64"), np.asarray(pd_, dtype="float64")
    auc = roc_auc(y, pd_)
    return {
        "rows": float(len(y)),
        "defaults": float(y.sum()),
        "default_rate": float(y.mean()),
        "mean_pd": float(pd_.mean()),
        "auc": auc,
        "gini": 2 * auc - 1,
        "ks": ks_statistic(y, pd_),
        "brier": brier(y, pd_),
    }


def estimate_backtest(estimated: dict, realised: dict[str, float]) -> dict:
    """How far the estimate made before the labels existed (riskcore.estimation) was off: realised
    minus estimated, and whether the realised value fell inside the estimate's bounds."""
    backtest: dict = {"estimated_before_labels": True}
    for metric in ("auc", "default_rate"):
        value, low, high = (float(estimated[f"estimated_{metric}{end}"]) for end in ("", "_low", "_high"))
        backtest |= {
            f"estimated_{metric}": value,
            f"estimated_{metric}_low": low,
            f"estimated_{metric}_high": high,
            f"{metric}_estimate_error": realised[metric] - value,
            f"{metric}_within_estimate_bounds": bool(low <= realised[metric] <= high),
        }
    return backtest


def rollback_decision(months: dict[str, dict[str, float | None]], policy: MonitoringPolicy) -> tuple[bool, str]:
    """(roll back?, why) from the champion's matured months: each month's `rows`, realised `auc` and
    `compared_auc` (the version it replaced, same rows; None when it replaced none). Months are
    pooled by rows: once `min_matured_months` are in, a small bad month weighs what its rows weigh."""
    if len(months) < policy.min_matured_months:
        return False, f"{len(months)} matured month(s) scored by the champion; {policy.min_matured_months} needed before judging"
    span = f"{min(months)}..{max(months)}" if len(months) > 1 else min(months)
    weights = np.array([m["rows"] for m in months.values()], dtype="float64")
    own = float(np.average([m["auc"] for m in months.values()], weights=weights))
    compared = [(m["compared_auc"], m["rows"]) for m in months.values() if m.get("compared_auc") is not None]
    other = float(np.average([a for a, _ in compared], weights=[r for _, r in compared])) if len(compared) == len(months) else None
    versus = f"; the replaced version scored {other:.4f} on the same rows" if other is not None else ""
    if own < policy.auc_floor:
        return True, f"realised AUC {own:.4f} over {span} is below the floor {policy.auc_floor}{versus}"
    if other is not None and other - own > policy.auc_tolerance:
        return True, f"realised AUC {own:.4f} over {span} trails the replaced version's {other:.4f} on the same rows by more than {policy.auc_tolerance}"
    if other is not None:
        return False, f"realised AUC {own:.4f} over {span}, replaced version {other:.4f}: within tolerance {policy.auc_tolerance}"
    return False, f"realised AUC {own:.4f} over {span}: above the floor {policy.auc_floor}"
