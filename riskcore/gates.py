"""Promotion gates: what a challenger must show, on the same out-of-time rows as the champion,
before anyone may approve it. Thresholds come from a versioned policy file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from riskcore.metrics import calibration_by_decile, ks_statistic, roc_auc

DEFAULT_PROMOTION_POLICY = Path(__file__).parent / "policies" / "promotion.yaml"
AUTO_APPROVE = ("never", "bootstrap", "always")


@dataclass(frozen=True)
class PromotionPolicy:
    policy_id: str
    version: str
    auc_tolerance: float
    min_auc: float
    min_ks: float
    max_calibration_z: float
    min_hosmer_lemeshow_p: float
    max_score_psi: float
    min_adverse_impact_ratio: float
    min_group_size: int
    approvers: tuple[str, ...]
    auto_approve: str

    @property
    def label(self) -> str:
        return f"{self.policy_id}@{self.version}"


def load_promotion_policy(path: str | Path = DEFAULT_PROMOTION_POLICY, auto_approve: str | None = None) -> PromotionPolicy:
    """`auto_approve` overrides the file's setting: the environment decides (development only)."""
    doc = yaml.safe_load(Path(path).read_text())
    gates, approval = doc["gates"], doc["approval"]
    policy = PromotionPolicy(
        policy_id=doc["policy_id"], version=str(doc["version"]),
        auc_tolerance=float(gates["auc_tolerance_vs_champion"]), min_auc=float(gates["min_auc"]), min_ks=float(gates["min_ks"]),
        max_calibration_z=float(gates["max_calibration_z_per_decile"]), min_hosmer_lemeshow_p=float(gates["min_hosmer_lemeshow_p"]),
        max_score_psi=float(gates["max_score_psi"]), min_adverse_impact_ratio=float(gates["min_adverse_impact_ratio"]),
        min_group_size=int(gates.get("min_group_size", 30)),
        approvers=tuple(approval["approvers"]), auto_approve=auto_approve or approval.get("auto_approve", "never"),
    )
    if policy.auto_approve not in AUTO_APPROVE:
        raise ValueError(f"{path}: auto_approve must be one of {AUTO_APPROVE}, not {policy.auto_approve!r}")
    return policy


@dataclass(frozen=True)
class Gate:
    name: str
    value: float | None
    threshold: str
    passed: bool


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """Population stability index of `actual` against `expected`, on expected's decile edges."""
    expected, actual = np.asarray(expected, dtype="float64"), np.asarray(actual, dtype="float64")
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)))
    edges[0], edges[-1] = -np.inf, np.inf
    e = np.histogram(expected, edges)[0] / len(expected)
    a = np.histogram(actual, edges)[0] / len(actual)
    e, a = np.clip(e, 1e-6, None), np.clip(a, 1e-6, None)
    return float(np.sum((a - e) * np.log(a / e)))


def calibration_max_z(y: np.ndarray, pd_: np.ndarray) -> float:
    """Largest gap between observed and expected default rate over PD deciles, in binomial
    standard errors: comparable across sample sizes (a 300-row and a 60,000-row test)."""
    table = calibration_by_decile(y, pd_)
    se = np.sqrt(table["expected_rate"] * (1 - table["expected_rate"]) / table["rows"]).clip(lower=1e-9)
    return float(((table["observed_rate"] - table["expected_rate"]).abs() / se).max())


def hosmer_lemeshow_p(y: np.ndarray, pd_: np.ndarray, groups: int = 10) -> float:
    """p-value of the Hosmer-Lemeshow test over PD deciles (chi-square, groups - 2 df)."""
    from scipy.stats import chi2

    table = calibration_by_decile(y, pd_)
    observed = table["observed_rate"] * table["rows"]
    expected = table["expected_rate"] * table["rows"]
    variance = expected * (1 - table["expected_rate"])
    statistic = float(((observed - expected) ** 2 / variance.clip(lower=1e-9)).sum())
    return float(chi2.sf(statistic, groups - 2))


def adverse_impact_ratio(approved: np.ndarray, group: pd.Series, min_group_size: int) -> tuple[float | None, dict]:
    """Lowest approval rate of a group over the highest (groups smaller than `min_group_size` left out)."""
    frame = pd.DataFrame({"approved": np.asarray(approved, dtype="float64"), "group": group.astype("string").to_numpy()}).dropna()
    stats = frame.groupby("group")["approved"].agg(["mean", "size"])
    stats = stats[stats["size"] >= min_group_size]
    if len(stats) < 2 or stats["mean"].max() == 0:
        return None, {}
    rates = {str(k): round(float(v), 4) for k, v in stats["mean"].items()}
    return float(stats["mean"].min() / stats["mean"].max()), rates


def evaluate_gates(
    policy: PromotionPolicy, y: np.ndarray, challenger_pd: np.ndarray, champion_pd: np.ndarray | None,
    challenger_train_pd: np.ndarray, approved: np.ndarray, sensitive: pd.DataFrame, signature_ok: bool,
) -> list[Gate]:
    """Every gate of the policy, on the same out-of-time rows for challenger and champion.

    The adverse impact ratio is the lowest over all sensitive attributes."""
    auc = roc_auc(y, challenger_pd)
    gates = [Gate("auc", auc, f">= {policy.min_auc}", auc >= policy.min_auc)]
    if champion_pd is not None:
        champion_auc = roc_auc(y, champion_pd)
        gates.append(Gate("auc_vs_champion", auc - champion_auc, f">= -{policy.auc_tolerance}", auc >= champion_auc - policy.auc_tolerance))
    ks = ks_statistic(y, challenger_pd)
    gates.append(Gate("ks", ks, f">= {policy.min_ks}", ks >= policy.min_ks))
    z = calibration_max_z(y, challenger_pd)
    gates.append(Gate("calibration_max_decile_z", z, f"<= {policy.max_calibration_z}", z <= policy.max_calibration_z))
    p_value = hosmer_lemeshow_p(y, challenger_pd)
    gates.append(Gate("hosmer_lemeshow_p", p_value, f">= {policy.min_hosmer_lemeshow_p}", p_value >= policy.min_hosmer_lemeshow_p))
    stability = psi(challenger_train_pd, challenger_pd)
    gates.append(Gate("score_psi_train_vs_oot", stability, f"< {policy.max_score_psi}", stability < policy.max_score_psi))
    ratios = [adverse_impact_ratio(approved, sensitive[c], policy.min_group_size)[0] for c in sensitive.columns]
    ratios = [r for r in ratios if r is not None]
    air = min(ratios) if ratios else None
    gates.append(Gate("adverse_impact_ratio", air, f">= {policy.min_adverse_impact_ratio}", air is not None and air >= policy.min_adverse_impact_ratio))
    gates.append(Gate("signature_matches_feature_store", 1.0 if signature_ok else 0.0, "== 1", signature_ok))
    return gates
