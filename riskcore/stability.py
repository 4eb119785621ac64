"""The stability pack a credit validator reads every month, in four tables:

- **Characteristic analysis**, per feature on the bins drift monitoring compares it on (the
  reference profile's own bins, riskcore.drift): reference and current share per bin, the bin's
  score points (the feature's part of the score, -factor x its logit contribution, as the decision
  policy scales points), CSI = sum (a - e) ln(a / e) (the drift PSI of the feature, term by term),
  and the score shift in points, sum (a - e) x reference points: how many points the average
  applicant gained (+) or lost (-) through the change of this feature's population alone.
- **Score-band stability**: the month's share per frozen score band (monitoring policy) against
  the training window's, and their PSI.
- **Gains table** of the cohort whose labels matured, by the same bands from the riskiest: rows,
  bads, bad rate, cumulative bad and good shares, KS at every band boundary (the largest is the
  KS the bands can show: riskcore.metrics.ks_statistic at the band granularity).
- **Per-grade calibration**: observed against expected default rate per frozen band (the grades),
  Jeffreys test and traffic lights (riskcore.gates.calibration_table). Frozen bands, not this
  month's PD deciles, so a grade is the same population every month and a validator can follow
  it; a band expecting fewer defaults than the policy's minimum is pooled with its smaller
  neighbour, as drift bins are.

The reference (bins, points, band shares) is computed once at training and logged with the model
version (`STABILITY_REFERENCE`); the month is compared with it only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from riskcore.drift import ReferenceProfile, build_profile, column_bins, psi_band, psi_terms
from riskcore.gates import calibration_table
from riskcore.monitoring_policy import MonitoringPolicy

STABILITY_REFERENCE = "stability_reference.json"
CHARACTERISTIC_COLUMNS = ["feature", "bin", "reference_share", "current_share", "current_rows", "reference_points", "current_points", "csi", "shift_points"]


@dataclass
class StabilityReference:
    rows: int
    profile: ReferenceProfile  # the features' bins on the training window (riskcore.drift)
    points: dict[str, list[float | None]]  # feature -> mean score points per bin (None: no reference row)
    score_bands: list[float]  # the frozen bands the shares were computed on
    score_shares: list[float]  # the training window's share per band

    def to_json(self) -> str:
        """Deterministic: same reference, same bytes (logged with the model version)."""
        return json.dumps({**asdict(self), "profile": json.loads(self.profile.to_json())}, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "StabilityReference":
        doc = json.loads(text)
        return cls(doc["rows"], ReferenceProfile.from_json(json.dumps(doc["profile"])), doc["points"], doc["score_bands"], doc["score_shares"])


def feature_points(contributions: pd.DataFrame, factor: float) -> pd.DataFrame:
    """Each feature's part of the score in points: a higher logit (riskier) is fewer points, at the
    policy's `factor` (PDO / ln 2) points per unit of log-odds."""
    return -factor * contributions


def distinct_value_contributions(model, X: pd.DataFrame) -> pd.DataFrame:
    """`model.logit_contributions(X)`, the same numbers, from one row per distinct value of each
    feature: in the additive scorecard a feature's contribution depends on its own value only, and a
    month of a million applications holds a few hundred distinct values of most features (its most
    varied, a ratio, about a quarter of a million), so the model's feature transform (the stability
    pack's costliest step) runs on a quarter of the rows or fewer."""
    codes, firsts = {}, {}
    for name in model.feature_names:
        code = pd.factorize(X[name], use_na_sentinel=False)[0]
        first = np.flatnonzero(~pd.Series(code).duplicated().to_numpy())  # the first row of each value
        codes[name], firsts[name] = code, first[np.argsort(code[first])]
    rows = max((len(first) for first in firsts.values()), default=0)
    # each column its distinct values, repeated to the longest column's length (rows of X: dtypes kept)
    distinct = pd.DataFrame({name: X[name].iloc[np.resize(first, rows)].to_numpy() for name, first in firsts.items()})
    contributions = model.logit_contributions(distinct)
    return pd.DataFrame({name: contributions[name].to_numpy()[codes[name]] for name in model.feature_names}, index=X.index)


def band_labels(edges) -> list[str]:
    return [f"[{lo:g}, {hi:g})" for lo, hi in zip(edges[:-1], edges[1:])]


def band_codes(score_points: np.ndarray, edges) -> np.ndarray:
    """The frozen band of each score, 0 = the lowest points (riskiest)."""
    points, edges = np.asarray(score_points, dtype="float64"), np.asarray(edges, dtype="float64")
    outside = (points < edges[0]) | (points >= edges[-1]) | np.isnan(points)
    if outside.any():
        raise ValueError(
            f"{int(outside.sum())} scores outside the score bands [{edges[0]:g}, {edges[-1]:g}) (e.g. {points[outside][0]}): widen stability.score_bands"
        )
    return np.searchsorted(edges, points, side="right") - 1


def _bin_means(values: np.ndarray, codes: np.ndarray, bins: int) -> np.ndarray:
    rows = np.bincount(codes, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rows > 0, np.bincount(codes, weights=values, minlength=bins) / np.maximum(rows, 1), np.nan)


def build_stability_reference(features: pd.DataFrame, points: pd.DataFrame, score_points: np.ndarray, numeric, categorical, score_bands) -> StabilityReference:
    """The training window's reference: `features` and their `points` (feature_points) row-aligned,
    and the scores in points the decision policy gave those rows."""
    profile = build_profile(features, list(numeric), list(categorical))
    means = {}
    for name in [*numeric, *categorical]:
        labels, _, codes = column_bins(profile, name, features[name])
        means[name] = [None if np.isnan(v) else float(v) for v in _bin_means(points[name].to_numpy(dtype="float64"), codes, len(labels))]
    bands = band_codes(score_points, score_bands)
    shares = np.bincount(bands, minlength=len(score_bands) - 1) / max(len(bands), 1)
    return StabilityReference(len(features), profile, means, [float(b) for b in score_bands], [float(s) for s in shares])


def characteristic_analysis(reference: StabilityReference, features: pd.DataFrame, points: pd.DataFrame) -> pd.DataFrame:
    """One row per feature and bin (CHARACTERISTIC_COLUMNS); a feature's CSI and score shift are the
    sums of its rows. A bin the reference never held (new categories) is valued at its current points."""
    out = []
    for name, reference_points in reference.points.items():
        labels, reference_shares, codes = column_bins(reference.profile, name, features[name])
        bins = len(labels)
        counts = np.bincount(codes, minlength=bins).astype("float64")
        current = counts / max(len(features), 1)
        ref_shares = np.r_[reference_shares, np.zeros(bins - len(reference_shares))]
        ref_points = np.array([np.nan if p is None else p for p in reference_points] + [np.nan] * (bins - len(reference_points)), dtype="float64")
        current_points = _bin_means(points[name].to_numpy(dtype="float64"), codes, bins)
        valued = np.where(np.isnan(ref_points), current_points, ref_points)
        shift = np.where(np.isnan(valued), 0.0, (current - ref_shares) * np.nan_to_num(valued))
        csi = psi_terms(ref_shares * reference.rows, counts)
        out += [(name, labels[i], ref_shares[i], current[i], int(counts[i]), ref_points[i], current_points[i], csi[i], shift[i]) for i in range(bins)]
    return pd.DataFrame(out, columns=CHARACTERISTIC_COLUMNS)


def characteristic_summary(table: pd.DataFrame, policy: MonitoringPolicy) -> pd.DataFrame:
    """Per feature: CSI, its band in the monitoring policy, and the score shift in points."""
    summary = table.groupby("feature", sort=False).agg(csi=("csi", "sum"), shift_points=("shift_points", "sum")).reset_index()
    return summary.assign(csi_band=[psi_band(v, policy) for v in summary["csi"]])


def score_band_stability(reference: StabilityReference, score_points: np.ndarray) -> pd.DataFrame:
    """Per frozen band: the training window's share, the month's share and rows, and the PSI term."""
    bands = len(reference.score_bands) - 1
    counts = np.bincount(band_codes(score_points, reference.score_bands), minlength=bands).astype("float64")
    ref = np.asarray(reference.score_shares, dtype="float64")
    return pd.DataFrame(
        {
            "band": band_labels(reference.score_bands),
            "reference_share": ref,
            "current_share": counts / max(counts.sum(), 1),
            "current_rows": counts.astype("int64"),
            "psi": psi_terms(ref * reference.rows, counts),
        }
    )


def gains_table(score_points: np.ndarray, defaulted: np.ndarray, score_bands) -> pd.DataFrame:
    """Per frozen band from the riskiest (lowest points): rows, bads, bad rate, the cumulative shares
    of bads and goods down to this band, and their gap (KS at that cut-off)."""
    bands = len(score_bands) - 1
    codes, y = band_codes(score_points, score_bands), np.asarray(defaulted, dtype="float64")
    rows, bads = np.bincount(codes, minlength=bands), np.bincount(codes, weights=y, minlength=bands)
    cum_bad, cum_good = np.cumsum(bads) / max(bads.sum(), 1), np.cumsum(rows - bads) / max((rows - bads).sum(), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(rows > 0, bads / np.maximum(rows, 1), np.nan)
    return pd.DataFrame(
        {
            "band": band_labels(score_bands),
            "rows": rows.astype("int64"),
            "bads": bads.astype("int64"),
            "bad_rate": rate,
            "cum_bad_share": cum_bad,
            "cum_good_share": cum_good,
            "ks": cum_bad - cum_good,
        }
    )


def _pooled_bands(expected: np.ndarray, min_expected: float) -> list[list[int]]:
    """Non-empty bands (indices, by points) pooled until each pool expects `min_expected` defaults:
    the pool expecting fewest goes into its neighbour expecting fewer, until none is short (or one is left)."""
    pools = [[i] for i, e in enumerate(expected) if e > 0]
    while len(pools) > 1:
        totals = [expected[p].sum() for p in pools]
        short = min(range(len(pools)), key=lambda i: totals[i])
        if totals[short] >= min_expected:
            break
        other = min((j for j in (short - 1, short + 1) if 0 <= j < len(pools)), key=lambda j: totals[j])
        a, b = sorted((short, other))
        pools[a : b + 1] = [pools[a] + pools[b]]
    return pools


def grade_calibration(pd_: np.ndarray, defaulted: np.ndarray, score_points: np.ndarray, score_bands, policy: MonitoringPolicy) -> pd.DataFrame:
    """riskcore.gates.calibration_table with the frozen bands as grades (pooled where they expect
    too few defaults), from the riskiest; the last row is the portfolio ("all")."""
    pd_ = np.asarray(pd_, dtype="float64")
    codes = band_codes(score_points, score_bands)
    expected = np.bincount(codes, weights=pd_, minlength=len(score_bands) - 1)
    expected[np.bincount(codes, minlength=len(score_bands) - 1) == 0] = 0.0
    pools = _pooled_bands(expected, policy.calibration_min_expected_defaults)
    pool_of = np.zeros(len(score_bands) - 1, dtype="int64")
    for k, pool in enumerate(pools):
        pool_of[pool] = k
    table = calibration_table(
        defaulted, pd_, policy.calibration_confidence, policy.calibration_tolerance, policy.calibration_min_expected_defaults, grades=pool_of[codes]
    )
    labels = [f"[{score_bands[p[0]]:g}, {score_bands[p[-1] + 1]:g})" for p in pools]
    return table.assign(grade=[*(labels[int(g)] for g in table["grade"].iloc[:-1]), "all"])
