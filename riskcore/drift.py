"""Drift statistics from a reference profile computed once at training time.

The profile keeps, per feature, what every later comparison needs (decile edges and shares with
a missing bin, a quantile grid, the spread; category shares for categoricals), so monitoring a
month never reloads the training data. Statistics follow what practitioners read:

- PSI on the reference's decile bins (plus missing), banded by the monitoring policy (shipped: < 0.10 stable, 0.10-0.25 investigate, > 0.25 shift);
- numeric: Wasserstein-1 distance normed by the reference's standard deviation (Evidently's
  default for large samples, threshold 0.1), from the quantile functions;
- categorical: Jensen-Shannon distance of the category shares (Evidently's default, threshold 0.1).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from riskcore.monitoring_policy import MonitoringPolicy
from riskcore.months import month_label

MISSING = "__missing__"
QUANTILE_GRID = np.linspace(0.0, 1.0, 201)


@dataclass
class NumericProfile:
    edges: list[float]  # inner decile edges of the reference
    shares: list[float]  # per bin, then the missing share last
    quantiles: list[float]  # the reference's quantile function on QUANTILE_GRID (non-missing)
    std: float


@dataclass
class CategoricalProfile:
    shares: dict[str, float]  # category -> share, MISSING included


@dataclass
class ReferenceProfile:
    rows: int
    numeric: dict[str, NumericProfile] = field(default_factory=dict)
    categorical: dict[str, CategoricalProfile] = field(default_factory=dict)

    def to_json(self) -> str:
        """Deterministic: same reference, same bytes (logged with the model version)."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "ReferenceProfile":
        doc = json.loads(text)
        return cls(
            rows=doc["rows"],
            numeric={k: NumericProfile(**v) for k, v in doc["numeric"].items()},
            categorical={k: CategoricalProfile(**v) for k, v in doc["categorical"].items()},
        )


def _numeric_profile(values: pd.Series, bins: int = 10) -> NumericProfile:
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    present = x[~np.isnan(x)]
    edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1))[1:-1]) if len(present) else np.array([])
    profile = NumericProfile(edges=[float(e) for e in edges], shares=[], quantiles=[], std=float(present.std()) if len(present) else 0.0)
    profile.shares = _numeric_shares(profile, x).tolist()
    profile.quantiles = [float(q) for q in np.quantile(present, QUANTILE_GRID)] if len(present) else []
    return profile


def _numeric_shares(profile: NumericProfile, x: np.ndarray) -> np.ndarray:
    missing = np.isnan(x)
    counts = np.bincount(np.searchsorted(np.asarray(profile.edges), x[~missing], side="right"), minlength=len(profile.edges) + 1)
    return np.append(counts, missing.sum()) / max(len(x), 1)


def _category_shares(values: pd.Series) -> dict[str, float]:
    text = values.astype("object").where(values.notna(), MISSING).astype(str)
    return {str(k): float(v) for k, v in text.value_counts(normalize=True).sort_index().items()}


def retraining_decision(drift_shares: dict[str, float], last_launch: str | None, policy: MonitoringPolicy) -> tuple[str | None, str]:
    """(month to launch retraining for, or None; why). Drift must persist for `persistence`
    consecutive months up to the latest reported one, and the cooldown since the last launch
    must have passed: a noisy month, or a second shock inside the cooldown, launches nothing."""
    from riskcore.months import add_months, month_index

    if not drift_shares:
        return None, "no drift reports yet"
    latest = max(drift_shares, key=month_index)
    window = [month_label(add_months(latest, -k)) for k in range(policy.persistence)]
    missing = [m for m in window if m not in drift_shares]
    if missing:
        return None, f"no drift report for {', '.join(missing)}: persistence cannot be judged"
    calm = [m for m in window if drift_shares[m] < policy.drifted_month_min_share]
    if calm:
        return None, f"drift did not persist: {', '.join(calm)} below {policy.drifted_month_min_share:.0%} of features drifted"
    if last_launch is not None and month_index(latest) - month_index(last_launch) < policy.cooldown_months:
        return None, f"cooldown: last retraining launched for {last_launch}, {policy.cooldown_months} months must pass"
    return latest, f"drift persisted {policy.persistence} months ({', '.join(sorted(window))})"


def monitored_columns(numeric_features: list[str], categorical_features: list[str], sensitive: list[str]) -> tuple[list[str], list[str]]:
    """(numeric, categorical) columns drift monitoring compares: the model's features, its PD and
    the decision it leads to, and the sensitive attributes (a shift in who applies is a fairness
    question before it is a model one). Training's profile and every month's report use this."""
    return [*numeric_features, "pd"], [*categorical_features, "decision", *sensitive]


def monitored_frame(matrix: pd.DataFrame, pd_: np.ndarray, decision_policy, sensitive: pd.DataFrame) -> pd.DataFrame:
    """The rows drift monitoring compares (see monitored_columns), row-aligned with `matrix`."""
    return matrix.reset_index(drop=True).assign(pd=pd_, decision=decision_policy.decide(decision_policy.points(pd_))).join(sensitive.reset_index(drop=True))


def build_profile(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> ReferenceProfile:
    """The reference of a training window: features and the score column(s) named as numeric."""
    return ReferenceProfile(
        rows=len(frame),
        numeric={c: _numeric_profile(frame[c]) for c in numeric},
        categorical={c: CategoricalProfile(_category_shares(frame[c])) for c in categorical},
    )


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    e, a = np.clip(np.asarray(reference, float), 1e-6, None), np.clip(np.asarray(current, float), 1e-6, None)
    return float(np.sum((a - e) * np.log(a / e)))


def psi_band(value: float, policy: MonitoringPolicy) -> str:
    """The policy's PSI band of a value: the one place the bands are read from."""
    return "stable" if value < policy.investigate else "investigate" if value < policy.shift else "shift"


def _normed_wasserstein(profile: NumericProfile, x: np.ndarray) -> float:
    present = x[~np.isnan(x)]
    if not len(present) or not profile.quantiles:
        return float("nan")
    distance = np.trapezoid(np.abs(np.quantile(present, QUANTILE_GRID) - np.asarray(profile.quantiles)), QUANTILE_GRID)
    return float(distance / profile.std) if profile.std > 0 else float(distance > 0)


def _jensen_shannon(reference: dict[str, float], current: dict[str, float]) -> float:
    categories = sorted(set(reference) | set(current))
    p = np.array([reference.get(c, 0.0) for c in categories])
    q = np.array([current.get(c, 0.0) for c in categories])
    m = (p + q) / 2

    def kl(a, b):
        mask = a > 0
        return float(np.sum(a[mask] * np.log(a[mask] / b[mask])))

    return float(np.sqrt(max((kl(p, m) + kl(q, m)) / 2, 0.0)))


def drift_statistics(profile: ReferenceProfile, current: pd.DataFrame, policy: MonitoringPolicy) -> pd.DataFrame:
    """One row per profiled column: PSI and its band, the distance Evidently would use, drifted or not,
    and for categoricals the categories the reference never saw; bands and threshold from the policy."""
    distance_threshold = policy.distance_threshold
    rows = []
    for name, ref in profile.numeric.items():
        x = pd.to_numeric(current[name], errors="coerce").to_numpy(dtype="float64")
        value = _normed_wasserstein(ref, x)
        stat = psi(ref.shares, _numeric_shares(ref, x))
        rows.append((name, "numeric", stat, psi_band(stat, policy), "wasserstein_normed", value, bool(value >= distance_threshold), ""))
    for name, ref in profile.categorical.items():
        shares = _category_shares(current[name])
        categories = sorted(set(ref.shares) | set(shares))
        stat = psi([ref.shares.get(c, 0.0) for c in categories], [shares.get(c, 0.0) for c in categories])
        value = _jensen_shannon(ref.shares, shares)
        new = ",".join(c for c in sorted(shares) if c not in ref.shares)
        rows.append((name, "categorical", stat, psi_band(stat, policy), "jensen_shannon", value, bool(value >= distance_threshold), new))
    return pd.DataFrame(rows, columns=["column", "kind", "psi", "psi_band", "distance_method", "distance", "drifted", "new_categories"])
