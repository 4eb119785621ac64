"""Drift statistics from a reference profile computed once at training time.

The profile keeps, per column, what every later comparison needs, so monitoring a month never
reloads the training data: for a numeric column its own bins (edges and reference shares, the
missing share last), a quantile grid and the spread; for a categorical one the category shares.

One statistic for every column: the PSI on the reference's own bins, read against two bars from
the monitoring policy, so a threshold means the same thing whatever the column's shape.

- Bins (numeric, profile version 2): a value held by at least `POINT_MASS_SHARE` of the rows (5%,
  half a bin: the zeros of a zero-inflated column, the values of a discrete column), or the lowest
  or highest value held by at least `MIN_BIN_SHARE` (2%: a sentinel such as 999 or -1), is a bin
  of its own; the rest is cut at its quantiles into bins of about `1 / TARGET_BINS` of the rows;
  a bin under `MIN_BIN_SHARE` of the reference is merged with its smaller neighbour; missing is a
  bin. Bins are ranks of the reference, so any monotone transform of a column (a Pareto tail, a
  log-normal) gives the same bins and the same PSI: no extreme value can decide it. Categorical:
  categories under `MIN_BIN_SHARE` are pooled; categories the reference never saw are one bin.
- Drifted when the PSI is **material** (at least `psi_floor`) and **beyond sampling noise**: PSI x
  n_eff above the chi-square(bins - 1) quantile at 1 - `false_alarm_rate`, n_eff = n N / (n + N)
  for a month of n rows against a reference of N (PSI x n is asymptotically chi-square(bins - 1)
  under no change). A bin empty on one side counts half a row there; a bin empty on both is left out.
- The PSI bands of the policy (shipped: < 0.10 stable, 0.10-0.25 investigate, > 0.25 shift) are
  read on the same PSI.

Profiles of version 1 (decile edges) are read as they are: their deciles are their bins.
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
PROFILE_VERSION = 2
TARGET_BINS = 10  # a continuous stretch is cut into bins of about a tenth of the rows
POINT_MASS_SHARE = 0.05  # a value held by at least this share of the rows (half a bin) gets a bin of its own...
MIN_BIN_SHARE = 0.02  # ...and so does the lowest or highest value from this share (a sentinel such as 999 or -1, zeros); smaller bins are merged
REFERENCE_PROFILE_ARTIFACT = "reference_profile.json"  # kept with the model version (MLflow run artifacts)...
REFERENCE_SAMPLE_ARTIFACT = "reference_sample.parquet"  # ...and, since issue 14, real training rows for the Evidently report
REFERENCE_SAMPLE_SEED = 14
DRIFT_COLUMNS = ["column", "kind", "psi", "psi_band", "bins", "psi_noise", "drifted", "new_categories"]


@dataclass
class NumericProfile:
    edges: list[float]  # lower bounds of the bins after the first (value v falls in bin searchsorted(edges, v, "right")); a point mass v is [v, next float)
    shares: list[float]  # reference share per bin, then the missing share last
    quantiles: list[float]  # the reference's quantile function on QUANTILE_GRID (non-missing)
    std: float
    point_masses: list[float] = field(default_factory=list)  # values with a bin of their own (version 2)


@dataclass
class CategoricalProfile:
    shares: dict[str, float]  # category -> share, MISSING included


@dataclass
class ReferenceProfile:
    rows: int
    numeric: dict[str, NumericProfile] = field(default_factory=dict)
    categorical: dict[str, CategoricalProfile] = field(default_factory=dict)
    version: int = 1  # 1: decile bins; 2: bins with point masses of their own (build_profile writes 2)

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
            version=int(doc.get("version", 1)),
        )


def _numeric_profile(values: pd.Series) -> NumericProfile:
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    present = x[~np.isnan(x)]
    masses, edges = _bins(present, len(x))
    profile = NumericProfile(
        edges=[float(e) for e in edges],
        shares=[],
        quantiles=[float(q) for q in np.quantile(present, QUANTILE_GRID)] if len(present) else [],
        std=float(present.std()) if len(present) else 0.0,
        point_masses=[float(v) for v in masses],
    )
    profile.shares = _numeric_shares(profile, x).tolist()
    return profile


def _bins(present: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(point masses that kept a bin of their own, bin edges) of a column's non-missing values out of `rows` rows."""
    if not len(present):
        return np.array([]), np.array([])
    values, counts = np.unique(present, return_counts=True)
    heavy = counts >= POINT_MASS_SHARE * rows
    heavy[[0, -1]] |= counts[[0, -1]] >= MIN_BIN_SHARE * rows
    masses, rest, rest_counts = values[heavy], values[~heavy], counts[~heavy]
    cuts = []
    if len(rest):
        pieces = max(1, int(round(rest_counts.sum() * TARGET_BINS / rows)))
        cumulative = np.cumsum(rest_counts)
        for j in range(1, pieces):
            i = int(np.searchsorted(cumulative, j * cumulative[-1] / pieces, side="left")) + 1
            if i < len(rest):
                cuts.append(rest[i])
    edges = np.unique(np.concatenate([np.asarray(cuts, dtype="float64"), masses, np.nextafter(masses, np.inf)]))
    counts_per_bin = np.bincount(np.searchsorted(edges, present, side="right"), minlength=len(edges) + 1)
    edges, counts_per_bin = list(edges), list(counts_per_bin)
    while True:  # merge the smallest non-empty bin under the minimum share into its smaller non-empty neighbour
        small = [i for i, c in enumerate(counts_per_bin) if 0 < c < MIN_BIN_SHARE * rows]
        options = []
        for i in sorted(small, key=lambda i: counts_per_bin[i]):
            neighbours = [j for j in (i - 1, i + 1) if 0 <= j < len(counts_per_bin) and counts_per_bin[j] > 0]
            if neighbours:
                options = [i, min(neighbours, key=lambda j: counts_per_bin[j])]
                break
        if not options:
            break
        i, j = sorted(options)
        counts_per_bin[i : j + 1] = [counts_per_bin[i] + counts_per_bin[j]]
        del edges[i]  # the edge between bin i and bin i + 1
    kept = set(edges)
    return np.array([m for m in masses if m in kept and np.nextafter(m, np.inf) in kept]), np.asarray(edges, dtype="float64")


def _numeric_shares(profile: NumericProfile, x: np.ndarray) -> np.ndarray:
    return _numeric_counts(profile, x) / max(len(x), 1)


def _numeric_counts(profile: NumericProfile, x: np.ndarray) -> np.ndarray:
    return np.bincount(_numeric_codes(profile, x), minlength=len(profile.edges) + 2).astype("float64")


def _numeric_codes(profile: NumericProfile, x: np.ndarray) -> np.ndarray:
    """The bin of each value: searchsorted on the edges, missing the last bin."""
    missing = np.isnan(x)
    codes = np.full(len(x), len(profile.edges) + 1, dtype="int64")
    codes[~missing] = np.searchsorted(np.asarray(profile.edges), x[~missing], side="right")
    return codes


def _category_text(values: pd.Series) -> pd.Series:
    return values.astype("object").where(values.notna(), MISSING).astype(str)


def _category_shares(values: pd.Series) -> dict[str, float]:
    return {str(k): float(v) for k, v in _category_text(values).value_counts(normalize=True).sort_index().items()}


def retraining_decision(drift_shares: dict[str, float], last_launch: str | None, policy: MonitoringPolicy) -> tuple[str | None, str]:
    """(month to launch retraining for, or None; why). Drift must persist for `persistence`
    consecutive months up to the latest reported one, and the cooldown since the last launch
    must have passed: a noisy month, or a second shock inside the cooldown, launches nothing."""
    from riskcore.months import month_index

    if not drift_shares:
        return None, "no drift reports yet"
    latest = max(drift_shares, key=month_index)
    window = persistence_window(latest, policy)
    missing = [m for m in window if m not in drift_shares]
    if missing:
        return None, f"no drift report for {', '.join(missing)}: persistence cannot be judged"
    calm = [m for m in window if drift_shares[m] < policy.drifted_month_min_share]
    if calm:
        return None, f"drift did not persist: {', '.join(calm)} below {policy.drifted_month_min_share:.0%} of features drifted"
    if last_launch is not None and month_index(latest) - month_index(last_launch) < policy.cooldown_months:
        return None, f"cooldown: last retraining launched for {last_launch}, {policy.cooldown_months} months must pass"
    return latest, f"drift persisted {policy.persistence} months ({', '.join(sorted(window))})"


def persistence_window(latest: str, policy: MonitoringPolicy) -> list[str]:
    """The months whose drift a retraining decision for `latest` weighs: it and the `persistence - 1` before it."""
    from riskcore.months import add_months

    return [month_label(add_months(latest, -k)) for k in range(policy.persistence)]


def monitored_columns(numeric_features: list[str], categorical_features: list[str], sensitive: list[str]) -> tuple[list[str], list[str]]:
    """(numeric, categorical) columns drift monitoring compares: the model's features, its PD and
    the decision it leads to, and the sensitive attributes (a shift in who applies is a fairness
    question before it is a model one). Training's profile and every month's report use this."""
    return [*numeric_features, "pd"], [*categorical_features, "decision", *sensitive]


def monitored_frame(matrix: pd.DataFrame, pd_: np.ndarray, decision_policy, sensitive: pd.DataFrame) -> pd.DataFrame:
    """The rows drift monitoring compares (see monitored_columns), row-aligned with `matrix`."""
    return matrix.reset_index(drop=True).assign(pd=pd_, decision=decision_policy.decide(decision_policy.points(pd_))).join(sensitive.reset_index(drop=True))


def reference_sample(reference: pd.DataFrame, ids: pd.Series, columns: list[str], rows: int, forbidden: set[str]) -> pd.DataFrame:
    """Real training rows for the Evidently report (issue 14: rows resampled from quantiles smooth a
    discrete column such as a count): `rows` of them, the monitored `columns` only. The same
    training rows give the same sample whatever their order (ordered by id, then a fixed seed).
    Raises rather than keep a `forbidden` column (id, PII, token) or a text value that is a token
    or looks like PII: the sample is kept with the model version, beside no access control of its own."""
    from riskcore.pii import TOKEN_PATTERN, find_pii

    kept = sorted(set(columns) & set(forbidden))
    if kept:
        raise ValueError(f"the reference sample would keep identifying columns {kept}")
    order = np.argsort(ids.astype(str).to_numpy(), kind="stable")
    picked = np.sort(np.random.default_rng(REFERENCE_SAMPLE_SEED).choice(len(order), size=min(rows, len(order)), replace=False))
    sample = reference.iloc[order[picked]][columns].reset_index(drop=True)
    text = [c for c in columns if not pd.api.types.is_numeric_dtype(sample[c])]
    tokens = [c for c in text if sample[c].astype("string").str.match(TOKEN_PATTERN).fillna(False).any()]
    found = find_pii(sample[text], set())
    if tokens or found:
        raise ValueError(f"the reference sample would keep tokens in {tokens} or PII-like values in {sorted(found)}")
    return sample


def build_profile(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> ReferenceProfile:
    """The reference of a training window: features and the score column(s) named as numeric."""
    return ReferenceProfile(
        rows=len(frame),
        numeric={c: _numeric_profile(frame[c]) for c in numeric},
        categorical={c: CategoricalProfile(_category_shares(frame[c])) for c in categorical},
        version=PROFILE_VERSION,
    )


def psi_band(value: float, policy: MonitoringPolicy) -> str:
    """The policy's PSI band of a value: the one place the bands are read from."""
    return "stable" if value < policy.investigate else "investigate" if value < policy.shift else "shift"


def psi_terms(reference_counts: np.ndarray, current_counts: np.ndarray) -> np.ndarray:
    """Each bin's (a - e) ln(a / e), a reference of N rows and a month of n rows given as counts per
    bin: the PSI is their sum. A bin empty on one side counts half a row there; a bin empty on both is 0."""
    ref, cur = np.asarray(reference_counts, float), np.asarray(current_counts, float)
    keep = (ref > 0) | (cur > 0)
    big_n, n = ref.sum(), cur.sum()
    terms = np.zeros(len(ref))
    if keep.any() and big_n > 0 and n > 0:
        e, a = np.maximum(ref[keep], 0.5) / big_n, np.maximum(cur[keep], 0.5) / n
        terms[keep] = (a - e) * np.log(a / e)
    return terms


def _psi_counts(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, int]:
    """(PSI, bins compared) of counts per bin (see psi_terms); a bin empty on both sides is left out."""
    keep = (np.asarray(reference_counts, float) > 0) | (np.asarray(current_counts, float) > 0)
    return float(np.sum(psi_terms(reference_counts, current_counts)[keep])), int(keep.sum())


def psi_noise(bins: int, rows: int, reference_rows: int, false_alarm_rate: float) -> float:
    """The PSI that sampling noise alone stays under with probability 1 - false_alarm_rate, for a
    month of `rows` against a reference of `reference_rows` compared on `bins` bins."""
    from scipy.special import chdtri  # the chi-square quantile at 1 - p (scipy.stats costs a second to import)

    if bins < 2 or rows <= 0 or reference_rows <= 0:
        return float("inf")
    effective = rows * reference_rows / (rows + reference_rows)
    return float(chdtri(bins - 1, false_alarm_rate) / effective)


def _category_counts(reference: dict[str, float], current: dict[str, float], reference_rows: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts per categorical bin: each category holding MIN_BIN_SHARE of the reference, the rarer
    ones pooled (into the smallest category when the pool is still under it), and the categories
    the reference never saw as one last bin."""
    groups = _category_groups(reference, current)
    ref = np.array([sum(reference.get(c, 0.0) for c in g) for g in groups]) * reference_rows
    cur = np.array([sum(current.get(c, 0.0) for c in g) for g in groups]) * rows
    return ref, cur


def _category_groups(reference: dict[str, float], current) -> list[list[str]]:
    """The categorical bins (see _category_counts): lists of categories, the unseen ones last."""
    kept = sorted((c for c, s in reference.items() if s >= MIN_BIN_SHARE), key=lambda c: (-reference[c], c))
    rare = [c for c in reference if c not in kept]
    groups = [[c] for c in kept]
    if rare:
        if sum(reference[c] for c in rare) >= MIN_BIN_SHARE or not groups:
            groups.append(rare)
        else:
            groups[-1] = groups[-1] + rare
    groups.append([c for c in current if c not in reference])
    return groups


def column_bins(profile: ReferenceProfile, name: str, values: pd.Series) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(label of each bin, reference share of each bin, bin of each value) of a profiled column, on
    the bins drift_statistics compares it on: what it counts, row by row (the stability pack's
    characteristic analysis). Categorical: the last bin holds the categories the reference never saw."""
    if name in profile.numeric:
        ref = profile.numeric[name]
        x = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
        bounds = [-np.inf, *ref.edges, np.inf]
        labels = [
            f"= {lo:.6g}" if lo in ref.point_masses and hi == np.nextafter(lo, np.inf) else f"[{lo:.6g}, {hi:.6g})" for lo, hi in zip(bounds[:-1], bounds[1:])
        ]
        return [*labels, "missing"], np.asarray(ref.shares, float), _numeric_codes(ref, x)
    shares, text = profile.categorical[name].shares, _category_text(values)
    groups = _category_groups(shares, sorted(text.unique()))
    labels = [*(", ".join(g) for g in groups[:-1]), "not in reference" + (f": {', '.join(groups[-1])}" if groups[-1] else "")]
    code = {c: i for i, g in enumerate(groups) for c in g}
    return labels, np.array([sum(shares.get(c, 0.0) for c in g) for g in groups]), text.map(code).to_numpy(dtype="int64")


def drift_statistics(profile: ReferenceProfile, current: pd.DataFrame, policy: MonitoringPolicy) -> pd.DataFrame:
    """One row per profiled column: PSI on the reference's own bins and its band, how many bins were
    compared, the PSI sampling noise reaches at this month's size (`psi_noise`), drifted or not
    (PSI at least the policy's floor and above the noise), and for categoricals the categories the
    reference never saw. Thresholds from the policy; the same rule for every column."""
    rows, reference_rows = len(current), profile.rows
    out = []

    def row(name, kind, reference_counts, current_counts, new=""):
        value, bins = _psi_counts(reference_counts, current_counts)
        noise = psi_noise(bins, rows, reference_rows, policy.false_alarm_rate)
        drifted = bool(value >= policy.psi_floor and value > noise)
        out.append((name, kind, value, psi_band(value, policy), bins, noise, drifted, new))

    for name, ref in profile.numeric.items():
        x = pd.to_numeric(current[name], errors="coerce").to_numpy(dtype="float64")
        row(name, "numeric", np.asarray(ref.shares, float) * reference_rows, _numeric_counts(ref, x))
    for name, ref in profile.categorical.items():
        shares = _category_shares(current[name])
        new = ",".join(c for c in sorted(shares) if c not in ref.shares)
        row(name, "categorical", *_category_counts(ref.shares, shares, reference_rows, rows), new)
    return pd.DataFrame(out, columns=DRIFT_COLUMNS)
